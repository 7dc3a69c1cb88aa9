"""Training works on the column names people actually use, and reports them back as given.

LightGBM refuses JSON characters in feature names and XGBoost ``[``, ``]`` and ``<``; the
boosters see safe names internally while the raw-row pipeline, importances, evaluation
and the serving copy keep the user's names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from narrate.core.automl import CandidateSpec, TrainConfig, build_pipeline, train
from narrate.core.automl.boosting import safe_feature_names
from narrate.core.automl.export import export_serving
from narrate.core.evaluation import evaluate
from narrate.core.serving import load_serving, save_serving

ODD_NAMES = {
    "island": "île {where}",
    "bill_length_mm": "bill length [mm]",
    "bill_depth_mm": 'bill "depth"',
    "flipper_length_mm": "a:b",
    "body_mass_g": "a,b",
    "sex": "<sex>",
    "year": "année < 2009",
}


@pytest.fixture(scope="module")
def odd_penguins(penguins: pd.DataFrame) -> pd.DataFrame:
    return penguins.rename(columns=ODD_NAMES)


def _config(target: str, family: str) -> TrainConfig:
    return TrainConfig(
        target=target,
        families=[family],
        max_trials=2,
        n_folds=3,
        n_jobs=1,
        time_budget_s=120,
        ensembles=False,
    )


def _model_step(model: Any) -> Any:
    """The estimator at the end of the candidate pipeline inside ``model``."""
    while not isinstance(model, Pipeline):
        model = model.estimator
    return model.steps[-1][1]


def _roundtrip(model: Any, rows: pd.DataFrame, task: str, folder: Path) -> Any:
    manifest, arrays = export_serving(model, rows, task=task)
    return load_serving(save_serving(manifest, arrays, folder / "model.serving"))


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "hist_gradient_boosting"])
def test_training_on_special_column_names_keeps_the_users_names(
    family: str, odd_penguins: pd.DataFrame, tmp_path: Path
) -> None:
    result = train(odd_penguins, _config("species", family))

    best = result.leaderboard[0]
    assert best["family"] == family
    assert not best.get("error")
    model = result.deployable
    known = odd_penguins.dropna(subset=["species"]).reset_index(drop=True)
    raw_rows = known.drop(columns=["species"])
    assert set(model.predict(raw_rows)) <= {"Adelie", "Chinstrap", "Gentoo"}

    # Importances are reported against the user's names, one per prepared column
    # (HistGradientBoosting has no built-in importances).
    estimator = _model_step(model)
    assert set(ODD_NAMES.values()) <= set(estimator.feature_names_in_)
    if family != "hist_gradient_boosting":
        assert len(estimator.feature_importances_) == len(estimator.feature_names_in_)

    holdout = known.iloc[result.holdout_indices]
    report = evaluate(model, holdout.drop(columns=["species"]), holdout["species"], result.problem)
    assert {s["column"] for s in report["slices"]} <= set(raw_rows.columns)

    copy = _roundtrip(model, raw_rows.head(300), result.problem.task, tmp_path)
    assert copy.columns == list(raw_rows.columns)
    np.testing.assert_allclose(
        copy.predict_proba(raw_rows.head(300)), model.predict_proba(raw_rows.head(300)), atol=1e-5
    )


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_boosted_regression_on_special_column_names_serves_the_same(
    family: str, odd_penguins: pd.DataFrame, tmp_path: Path
) -> None:
    frame = odd_penguins.dropna(subset=["a,b"]).reset_index(drop=True)
    X, y = frame.drop(columns=["a,b"]), frame["a,b"]
    spec = CandidateSpec(family, {"n_estimators": 30})
    pipe = build_pipeline(spec, "regression", seed=0).fit(X, y)
    copy = _roundtrip(pipe, X, "regression", tmp_path)
    np.testing.assert_allclose(copy.predict(X), pipe.predict(X), rtol=1e-4)
    assert "bill length [mm]" in pipe.named_steps["model"].feature_names_in_


@pytest.mark.parametrize(
    "names",
    [
        ["a:b", "a,b", "a b", "a_b"],
        ["bill length [mm]", 'say "hi"', "{x}", "<y>", "é", "日本"],
        ["f1_x", "x", "f0_x"],
        ["", " ", "\n"],
    ],
    ids=["same-after-cleaning", "json-and-unicode", "look-like-safe-names", "blank"],
)
def test_safe_feature_names_are_unique_stable_and_plain(names: list[str]) -> None:
    safe = safe_feature_names(names)
    assert len(set(safe)) == len(names)
    assert safe == safe_feature_names(list(names))
    assert all(name.isascii() and name.replace("_", "a").isalnum() for name in safe)


@pytest.mark.parametrize("family", ["lightgbm", "hist_gradient_boosting", "xgboost"])
def test_a_date_column_beside_a_column_named_like_its_parts_trains_and_serves(
    family: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
            "when_year": rng.normal(size=n),
            "shop": rng.choice(["north", "south"], n),
        }
    )
    y = pd.Series(np.where(X["when"].dt.month > 6, "late", "early"))
    pipe = build_pipeline(CandidateSpec(family, {}), "binary", seed=0).fit(X, y)
    copy = _roundtrip(pipe, X, "binary", tmp_path)
    np.testing.assert_allclose(copy.predict_proba(X), pipe.predict_proba(X), atol=1e-5)
    names = list(pipe.named_steps["model"].feature_names_in_)
    assert names[:3] == ["when_year", "shop", "datetime__when_year"]
