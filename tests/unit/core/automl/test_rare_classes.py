"""Training on a 1:100 class imbalance, and the validation schemes that keep rows apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import TrainConfig, find_feature_warnings, train
from narrate.core.automl.splits import validation_splits


def _one_in_a_hundred(n: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rare = np.zeros(n, dtype=bool)
    rare[rng.choice(n, n // 100, replace=False)] = True
    return pd.DataFrame(
        {
            "signal": rng.normal(size=n) + 3.0 * rare,
            "noise": rng.normal(size=n),
            "kind": rng.choice(["x", "y", "z"], size=n),
            "label": np.where(rare, "fraud", "ok"),
        }
    )


def _config(**extra: object) -> TrainConfig:
    values: dict[str, object] = {
        "target": "label",
        "max_trials": 3,
        "families": ["baseline", "linear", "lightgbm"],
        "n_jobs": 1,
        "ensembles": False,
        "time_budget_s": 120,
    }
    values.update(extra)
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_auto_trains_a_useful_model_at_1_to_100() -> None:
    df = _one_in_a_hundred()
    result = train(df, _config())
    assert result.problem.positive_class == "fraud"
    assert result.problem.minority_share == pytest.approx(0.01)
    assert result.imbalance_strategy == "none" and "threshold" in result.imbalance_reason
    assert result.leaderboard[0]["family"] != "baseline"
    assert result.leaderboard[0]["cv_score_mean"] > 0.9  # ROC AUC; the signal is strong
    assert result.threshold is not None and 0 < result.threshold["threshold"] < 1
    hold = df.iloc[result.holdout_indices]
    predicted = result.best_pipeline.predict(hold.drop(columns=["label"]))
    caught = np.sum((predicted == "fraud") & (hold["label"] == "fraud").to_numpy())
    assert caught >= 1, "the tuned threshold lets the model flag rare rows"


@pytest.mark.parametrize("strategy", ["smote", "class_weight", "random_under"])
def test_each_explicit_strategy_trains_at_1_to_100(strategy: str) -> None:
    result = train(_one_in_a_hundred(), _config(imbalance=strategy, metric="f1"))
    assert result.imbalance_strategy == strategy
    assert result.leaderboard[0]["family"] != "baseline"


def test_group_kfold_keeps_each_group_in_one_validation_fold() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"store": rng.integers(0, 12, 600).astype(str), "x": rng.normal(size=600)})
    config = TrainConfig(target="y", group_column="store", n_folds=4)
    splits = validation_splits(df, pd.Series(rng.normal(size=600)), config, classify=False)
    assert len(splits) == 4
    seen: set[str] = set()
    for train_idx, val_idx in splits:
        train_groups = set(df["store"].iloc[train_idx])
        val_groups = set(df["store"].iloc[val_idx])
        assert not train_groups & val_groups
        assert not seen & val_groups
        seen |= val_groups
    assert seen == set(df["store"])


def test_time_folds_always_validate_on_later_rows_than_they_train_on() -> None:
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.permutation(500), unit="D")
    df = pd.DataFrame({"when": when, "x": rng.normal(size=500)})
    config = TrainConfig(target="y", time_column="when", n_folds=4)
    splits = validation_splits(df, pd.Series(rng.normal(size=500)), config, classify=False)
    assert len(splits) == 4
    for train_idx, val_idx in splits:
        assert df["when"].iloc[train_idx].max() < df["when"].iloc[val_idx].min()


def test_high_cardinality_text_is_flagged() -> None:
    rng = np.random.default_rng(0)
    words = [f"note {i} about customer {i % 997}" for i in range(2_000)]
    df = pd.DataFrame(
        {
            "comment": [words[i] for i in rng.integers(0, 1_500, 2_000)],
            "x": rng.normal(size=2_000),
            "y": rng.choice(["a", "b"], 2_000),
        }
    )
    kinds = {w.column: w.kind for w in find_feature_warnings(df, "y")}
    assert kinds.get("comment") in {"high_cardinality", "id_like"}


def test_f1_and_pr_auc_score_the_positive_class_even_when_it_sorts_first() -> None:
    from narrate.core.automl.scoring import get_metric

    y = np.array(["fraud", "ok", "ok", "ok"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])  # columns: fraud, ok
    f1 = get_metric("binary", "f1", "fraud").fn(y, proba, ["fraud", "ok"])
    assert f1 == pytest.approx(2 / 3)  # 1 fraud caught, 1 false alarm
    pr_auc = get_metric("binary", "pr_auc", "fraud").fn(y, proba, ["fraud", "ok"])
    assert pr_auc == pytest.approx(1.0)
