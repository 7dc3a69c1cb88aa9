from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import ProgressUpdate, TrainConfig, load_model, refit, save_model, train
from narrate.core.automl.ensembles import score_ensembles
from narrate.core.automl.scoring import get_metric
from narrate.errors import InvalidInput

FAST = ["baseline", "linear", "lightgbm"]


def _config(target: str, **extra: object) -> TrainConfig:
    values: dict[str, object] = {
        "target": target,
        "max_trials": 4,
        "n_folds": 3,
        "families": FAST,
        "n_jobs": 1,
        "time_budget_s": 120,
    }
    values.update(extra)
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_same_seed_and_trial_count_give_the_same_leaderboard(credit: pd.DataFrame) -> None:
    sample = credit.iloc[:800]
    first = train(sample, _config("Status", ensembles=False))
    second = train(sample, _config("Status", ensembles=False))
    strip = [{k: v for k, v in row.items() if k != "fit_time_s"} for row in first.leaderboard]
    again = [{k: v for k, v in row.items() if k != "fit_time_s"} for row in second.leaderboard]
    assert strip == again
    assert first.trials_done == 4


def test_train_binary_reports_progress_threshold_and_holdout(credit: pd.DataFrame) -> None:
    updates: list[ProgressUpdate] = []
    result = train(credit.iloc[:1000], _config("Status"), progress=updates.append)
    assert result.problem.task == "binary"
    assert result.metric == "roc_auc"
    assert result.leaderboard[0]["rank"] == 1
    assert {"family", "params", "cv_score_mean", "cv_score_std", "n_trials"} <= set(
        result.leaderboard[0]
    )
    assert result.threshold is not None
    assert result.best_pipeline.threshold == pytest.approx(result.threshold["threshold"])
    assert len(result.holdout_indices) == 200
    assert set(result.holdout_indices).isdisjoint(result.train_indices)
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert any(u.leaderboard for u in updates)
    holdout = credit.iloc[:1000].iloc[result.holdout_indices]
    assert set(result.best_pipeline.predict(holdout)) <= {"good", "bad"}


def test_should_stop_cancels_and_keeps_best_so_far(penguins: pd.DataFrame) -> None:
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    result = train(penguins, _config("species", max_trials=None), should_stop=stop_after_two)
    assert result.cancelled
    assert result.trials_done == 2
    assert result.best_pipeline is not None


def test_regression_with_feature_selection_reports_dropped(hitters: pd.DataFrame) -> None:
    result = train(hitters, _config("Salary", feature_selection={"method": "correlation"}))
    assert result.problem.task == "regression"
    assert result.threshold is None
    assert result.dropped_features  # CAtBat, CHits, CRuns ... are > 0.95 correlated
    assert all("correlated" in reason for reason in result.dropped_features.values())


def test_unknown_group_column_is_refused_with_parameter(penguins: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput) as caught:
        train(penguins, _config("species", cv="group", group_column="nope"))
    assert caught.value.details == {"column": "nope", "parameter": "group_column"}


def test_time_column_holds_out_the_newest_rows() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"when": pd.date_range("2020-01-01", periods=300, freq="D"), "x": rng.normal(size=300)}
    )
    frame["y"] = frame["x"] * 3 + rng.normal(size=300)
    result = train(frame, _config("y", cv="time", time_column="when", ensembles=False))
    assert result.validation == "time"
    assert min(result.holdout_indices) > max(result.train_indices)


def test_ensembles_are_kept_only_when_they_beat_the_best_single_model() -> None:
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 200, dtype=object)
    truth = (y == "b").astype(float)
    good = np.clip(truth * 0.2 + rng.uniform(0, 0.8, 400), 0, 1)
    other = np.clip(truth * 0.2 + rng.uniform(0, 0.8, 400), 0, 1)
    as_proba = [np.column_stack([1 - p, p]) for p in (good, other)]
    metric = get_metric("binary", "roc_auc")
    choice = score_ensembles(as_proba, y, task="binary", classes=["a", "b"], metric=metric, seed=0)
    assert choice.winner in {"soft_voting", "stacking"}  # averaging independent noise helps
    assert choice.scores[choice.winner] > choice.best_single_score
    useless = np.column_stack([np.full(400, 0.5), np.full(400, 0.5)])
    choice = score_ensembles(
        [as_proba[0], useless], y, task="binary", classes=["a", "b"], metric=metric, seed=0
    )
    assert choice.scores["soft_voting"] <= choice.best_single_score + 1e-9


def test_refit_rebuilds_a_leaderboard_entry_without_search(hitters: pd.DataFrame) -> None:
    result = train(hitters, _config("Salary", max_trials=3, ensembles=False))
    spec = result.leaderboard[0]["spec"]
    fitted = refit(spec, hitters, _config("Salary"))
    assert fitted.predict(hitters.drop(columns=["Salary"]).iloc[:5]).shape == (5,)


def test_saved_model_loads_and_predicts_in_a_fresh_process(
    penguins: pd.DataFrame, tmp_path: Path
) -> None:
    result = train(penguins, _config("species", max_trials=3))
    path = save_model(result.best_pipeline, tmp_path / "model.joblib")
    rows = penguins.drop(columns=["species"]).iloc[:5]
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = list(result.best_pipeline.predict(rows))
    script = (
        "import sys, pandas as pd; from narrate.core.automl import load_model;"
        f"m = load_model({str(path)!r}); rows = pd.read_csv({str(tmp_path / 'rows.csv')!r});"
        "print(','.join(map(str, m.predict(rows))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().split(",") == expected
    assert list(load_model(path).predict(rows)) == expected
