"""Validation schemes: the holdout used for large data, chosen automatically or on request."""

from __future__ import annotations

import numpy as np
import pandas as pd

from narrate.core.automl import TrainConfig, train
from narrate.core.automl.imbalance import LARGE_DATA_ROWS
from narrate.core.automl.splits import validation_scheme, validation_splits


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
