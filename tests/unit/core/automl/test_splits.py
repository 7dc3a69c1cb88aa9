"""Validation schemes: the holdout used for large data, chosen automatically or on request."""

from __future__ import annotations

import numpy as np
import pandas as pd

from narrate.core.automl import TrainConfig, train
from narrate.core.automl.imbalance import LARGE_DATA_ROWS
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import cross_validate_pipeline
from narrate.core.automl.splits import (
    SMALL_DATA_ROWS,
    cv_repeats,
    validation_scheme,
    validation_splits,
)


def test_auto_scheme_switches_to_a_holdout_above_the_large_data_size() -> None:
    config = TrainConfig(target="y")
    assert validation_scheme(config, LARGE_DATA_ROWS) == "kfold"
    assert validation_scheme(config, LARGE_DATA_ROWS + 1) == "holdout"
    assert validation_scheme(TrainConfig(target="y", cv="kfold"), 10 * LARGE_DATA_ROWS) == "kfold"


def test_holdout_split_is_one_stratified_disjoint_fifth() -> None:
    y = pd.Series(["rare"] * 50 + ["common"] * 950)
    frame = pd.DataFrame({"x": np.arange(1000)})
    splits = validation_splits(frame, y, TrainConfig(target="y", cv="holdout"), classify=True)
    assert len(splits) == 1
    fit, val = splits[0]
    assert len(val) == 200 and len(fit) == 800
    assert set(fit).isdisjoint(val) and set(fit) | set(val) == set(range(1000))
    assert (y.iloc[val] == "rare").sum() == 10  # the class shares are kept


def test_training_with_a_holdout_scheme_scores_one_validation_fold(
    credit: pd.DataFrame,
) -> None:
    config = TrainConfig(
        target="Status",
        cv="holdout",
        families=["baseline", "lightgbm"],
        max_trials=3,
        n_jobs=1,
        ensembles=False,
        time_budget_s=60,
    )
    result = train(credit.iloc[:1500], config)
    assert result.validation == "holdout"
    best = result.leaderboard[0]
    assert best["family"] == "lightgbm"
    assert best["cv_score_std"] == 0.0  # a single validation fold has no spread
    assert len(result.holdout_indices) == 300


def test_small_data_repeats_kfold_with_new_shuffles() -> None:
    frame = pd.DataFrame({"x": np.arange(300)})
    y = pd.Series(["a", "b", "c"] * 100)
    splits = validation_splits(frame, y, TrainConfig(target="y", n_folds=5), classify=True)
    assert len(splits) == 15
    for start in (0, 5, 10):  # every pass validates every row exactly once
        rows = np.concatenate([val for _, val in splits[start : start + 5]])
        assert sorted(rows) == list(range(300))
    first_pass = {tuple(val) for _, val in splits[:5]}
    assert first_pass != {tuple(val) for _, val in splits[5:10]}


def test_repeats_follow_the_data_size_the_scheme_and_the_setting() -> None:
    auto = TrainConfig(target="y")
    assert cv_repeats(auto, SMALL_DATA_ROWS - 1) == 3
    assert cv_repeats(auto, SMALL_DATA_ROWS) == 1
    assert cv_repeats(TrainConfig(target="y", cv_repeats=1), 100) == 1
    assert cv_repeats(TrainConfig(target="y", cv_repeats=5), 50_000) == 5
    assert cv_repeats(TrainConfig(target="y", cv="holdout", cv_repeats=5), 100) == 1


def test_out_of_fold_predictions_average_the_repeats() -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60)})
    y = frame["x"].to_numpy() * 2 + rng.normal(size=60)
    config = TrainConfig(target="y", n_folds=3, cv_repeats=2)
    splits = validation_splits(frame, pd.Series(y), config, classify=False)
    metric = get_metric("regression", None)
    result = cross_validate_pipeline(
        LinearRegression(), frame, y, splits, task="regression", classes=[], metric=metric
    )
    expected = np.zeros(60)
    for fit_rows, val_rows in splits:
        model = LinearRegression().fit(frame.iloc[fit_rows], y[fit_rows])
        expected[val_rows] += model.predict(frame.iloc[val_rows]) / 2
    assert len(result.scores) == 6
    np.testing.assert_allclose(result.oof, expected)
