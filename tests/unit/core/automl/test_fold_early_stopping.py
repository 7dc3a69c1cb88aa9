"""Boosted trees stop early on the CV fold; the spec then fixes their tree count. Skewed,
non-negative regression targets may be learned on a log scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import TrainConfig, train
from narrate.core.automl.boosting import BoostedClassifier, BoostedRegressor
from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.fitting import _suits_log
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import (
    SearchContext,
    _evaluate_spec,
    cross_validate_pipeline,
    fit_with_validation,
)
from narrate.core.automl.space import fix_rounds, starting_points
from narrate.core.automl.splits import validation_splits


def _credit_xy(credit: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    known = credit[credit["Status"].notna()].reset_index(drop=True)
    return known.drop(columns=["Status"]), known["Status"].astype(str).to_numpy(dtype=object)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "hist_gradient_boosting"])
def test_a_booster_stops_on_the_validation_rows_it_is_given(
    credit: pd.DataFrame, family: str
) -> None:
    X, y = _credit_xy(credit)
    cap = "max_iter" if family == "hist_gradient_boosting" else "n_estimators"
    pipeline = build_pipeline(
        CandidateSpec(family, {"learning_rate": 0.3, cap: 2000}), "binary", seed=0
    )
    rounds = fit_with_validation(pipeline, X.iloc[:3000], y[:3000], X.iloc[3000:], y[3000:])
    # A fast learning rate overfits long before 2,000 rounds; the fold's rows notice.
    assert rounds is not None and 1 <= rounds < 2000
    proba = pipeline.predict_proba(X.iloc[3000:])
    assert proba.shape == (len(X) - 3000, 2)


def test_models_without_early_stopping_fit_as_usual(credit: pd.DataFrame) -> None:
    X, y = _credit_xy(credit)
    pipeline = build_pipeline(CandidateSpec("linear"), "binary", seed=0)
    assert fit_with_validation(pipeline, X.iloc[:500], y[:500], X.iloc[500:], y[500:]) is None
    assert pipeline.predict_proba(X.iloc[:3]).shape == (3, 2)


def test_a_resampled_booster_stops_on_original_validation_rows(credit: pd.DataFrame) -> None:
    X, y = _credit_xy(credit)
    pipeline = build_pipeline(
        CandidateSpec("lightgbm", {"learning_rate": 0.3, "n_estimators": 2000}, imbalance="smote"),
        "binary",
        seed=0,
    )
    rounds = fit_with_validation(pipeline, X.iloc[:3000], y[:3000], X.iloc[3000:], y[3000:])
    assert rounds is not None and rounds < 2000
    assert pipeline.predict_proba(X.iloc[3000:]).shape == (len(X) - 3000, 2)


def test_cv_records_rounds_and_the_spec_fixes_them(credit: pd.DataFrame) -> None:
    X, y = _credit_xy(credit)
    config = TrainConfig(target="Status", n_folds=3, cv_repeats=1)
    splits = validation_splits(X, pd.Series(y), config, classify=True)
    ctx = SearchContext(
        X=X,
        y=y,
        task="binary",
        classes=["bad", "good"],
        splits=splits,
        metric=get_metric("binary", None),
        seed=0,
        n_jobs=2,
        min_class_rows=100,
        base_spec=CandidateSpec("baseline"),
    )
    spec = CandidateSpec("lightgbm", {"learning_rate": 0.2, "n_estimators": 1500})
    record = _evaluate_spec(spec, ctx)
    assert record.result is not None and record.result.rounds is not None
    assert len(record.result.rounds) == 3
    expected = round(sum(record.result.rounds) / 3 * 1.1)
    assert record.spec.params["n_estimators"] == expected
    assert record.spec.params["early_stopping"] is False
    # The final pipeline trains exactly that many trees on all rows, with no inner split.
    final = build_pipeline(record.spec, "binary", seed=0)
    model = final.named_steps["model"]
    assert isinstance(model, BoostedClassifier) and model.early_stopping_rounds == 0
    final.fit(X, y)
    assert final.named_steps["model"].n_rounds_ == expected
    # Scoring the fold predictions needs no extra fits: the OOF matrix covers every row.
    again = cross_validate_pipeline(
        build_pipeline(record.spec, "binary", seed=0),
        X,
        y,
        splits,
        task="binary",
        classes=["bad", "good"],
        metric=get_metric("binary", None),
    )
    assert again.rounds is None  # fixed trees: nothing left to stop early
    assert not np.isnan(again.oof).any()


def test_fix_rounds_per_family() -> None:
    assert fix_rounds("lightgbm", {"a": 1}, [10, 30]) == {
        "a": 1,
        "n_estimators": 22,
        "early_stopping": False,
    }
    assert fix_rounds("hist_gradient_boosting", {}, [100]) == {
        "max_iter": 110,
        "early_stopping": False,
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.random.default_rng(0).lognormal(10, 1, 500), True),  # prices: skewed, positive
        (np.random.default_rng(0).normal(0, 1, 500), False),  # negative values
        (np.random.default_rng(0).uniform(1, 2, 500), False),  # not skewed
        (np.array([1.0, 2.0, np.nan] * 20), False),  # missing values
    ],
)
def test_which_targets_suit_a_log_scale(values: np.ndarray, expected: bool) -> None:
    assert _suits_log(values) is expected


def test_log_target_starts_after_the_defaults_and_only_where_it_can() -> None:
    points = starting_points("lightgbm", "regression", log_target=True)
    assert [p["target_transform"] for p in points[:2]] == ["none", "log"]
    assert all("target_transform" not in p for p in starting_points("lightgbm", "regression"))
    assert all(
        "target_transform" not in p for p in starting_points("random_forest", "regression", True)
    )


def test_a_log_target_booster_predicts_on_the_original_scale() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(0, 3, 600)})
    y = np.exp(2 * X["a"].to_numpy() + rng.normal(0, 0.1, 600))
    for transform in ("none", "log"):
        spec = CandidateSpec("lightgbm", {"n_estimators": 200, "target_transform": transform})
        pipeline = build_pipeline(spec, "regression", seed=0)
        assert isinstance(pipeline.named_steps["model"], BoostedRegressor)
        assert pipeline.named_steps["model"].target_transform == transform
        predicted = pipeline.fit(X, y).predict(X)
        assert np.median(np.abs(predicted - y) / y) < 0.15  # y's scale either way


def test_training_on_a_skewed_target_searches_the_log_scale(hitters: pd.DataFrame) -> None:
    config = TrainConfig(
        target="Salary",
        time_budget_s=60,
        max_trials=8,
        families=["baseline", "lightgbm", "linear"],
        ensembles=False,
        refit_full=False,
    )
    result = train(hitters, config)
    tried = {
        row["params"].get("target_transform")
        for row in result.leaderboard
        if row["family"] in ("lightgbm", "linear")
    }
    assert tried <= {"none", "log"} and tried
    predicted = result.best_pipeline.predict(hitters.drop(columns=["Salary"]).head(20))
    assert np.all(np.isfinite(predicted)) and predicted.mean() > 100  # thousands of dollars


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "hist_gradient_boosting"])
def test_a_validation_class_the_training_rows_lack_does_not_break_stopping(
    penguins: pd.DataFrame, family: str
) -> None:
    # Time-ordered folds can validate on a species the earlier rows never showed.
    known = penguins.dropna(subset=["species"]).reset_index(drop=True)
    X, y = known.drop(columns=["species"]), known["species"].astype(str).to_numpy(dtype=object)
    train_rows = np.flatnonzero(y != "Chinstrap")
    pipeline = build_pipeline(CandidateSpec(family), "multiclass", seed=0)
    rounds = fit_with_validation(pipeline, X.iloc[train_rows], y[train_rows], X, y)
    assert rounds is not None and rounds >= 1
    assert set(pipeline.classes_) == {"Adelie", "Gentoo"}
