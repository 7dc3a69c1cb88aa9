"""Row splits: the untouched final holdout, then validation folds on the remaining rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from narrate.core.automl.config import TrainConfig
from narrate.core.automl.imbalance import LARGE_DATA_ROWS

__all__ = [
    "Split",
    "cv_repeats",
    "fold_count",
    "holdout_split",
    "validation_scheme",
    "validation_splits",
]

Split = tuple[np.ndarray, np.ndarray]

SMALL_DATA_ROWS = 1_000
_SMALL_DATA_REPEATS = 3
#: From this many development rows k-fold uses 3 folds instead of 5: each fold's
#: estimate is already steady, and the search gets nearly twice the trials.
MEDIUM_DATA_ROWS = 10_000


def fold_count(config: TrainConfig, n_rows: int) -> int:
    """The k of k-fold: the configured one, else 5 (3 from ``MEDIUM_DATA_ROWS`` rows)."""
    if config.n_folds is not None:
        return config.n_folds
    return 3 if n_rows >= MEDIUM_DATA_ROWS else 5


def holdout_split(df: pd.DataFrame, y: pd.Series, config: TrainConfig, *, classify: bool) -> Split:
    """Split row positions into (development, final holdout).

    Time-ordered when a time column is set (newest rows held out), group-aware with a
    group column, stratified for classification otherwise.

    Args:
        df: Rows with a known target.
        y: The target of those rows.
        config: Training configuration.
        classify: Whether the task is classification.

    Returns:
        Row positions for development and for the final holdout.
    """
    positions = np.arange(len(df))
    fraction = config.holdout_fraction
    if config.time_column:
        order = np.argsort(df[config.time_column].to_numpy(), kind="stable")
        cut = len(order) - max(1, round(len(order) * fraction))
        return np.sort(order[:cut]), np.sort(order[cut:])
    if config.group_column:
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=config.seed)
        dev, test = next(splitter.split(positions, groups=df[config.group_column].astype(str)))
        return dev, test
    dev, test = train_test_split(
        positions, test_size=fraction, random_state=config.seed, stratify=y if classify else None
    )
    return np.sort(dev), np.sort(test)


def validation_scheme(config: TrainConfig, n_rows: int) -> str:
    """Return the resolved validation scheme (``kfold``, ``holdout``, ``group``, ``time``)."""
    if config.cv != "auto":
        return config.cv
    if config.group_column:
        return "group"
    if config.time_column:
        return "time"
    return "holdout" if n_rows > LARGE_DATA_ROWS else "kfold"


def cv_repeats(config: TrainConfig, n_rows: int) -> int:
    """How many shuffles of k-fold to run: more on small data, where one is noisy."""
    if validation_scheme(config, n_rows) != "kfold":
        return 1
    if config.cv_repeats is not None:
        return config.cv_repeats
    return _SMALL_DATA_REPEATS if n_rows < SMALL_DATA_ROWS else 1


def validation_splits(
    df: pd.DataFrame, y: pd.Series, config: TrainConfig, *, classify: bool
) -> list[Split]:
    """Return (train, validation) row positions within the development rows.

    Args:
        df: Development rows.
        y: Their target.
        config: Training configuration.
        classify: Whether the task is classification.

    Returns:
        The folds.
    """
    scheme = validation_scheme(config, len(df))
    positions = np.arange(len(df))
    n_folds = fold_count(config, len(df))
    if classify:
        n_folds = max(2, min(n_folds, int(y.value_counts().min())))
    if scheme == "holdout":
        train, val = train_test_split(
            positions, test_size=0.2, random_state=config.seed, stratify=y if classify else None
        )
        return [(np.sort(train), np.sort(val))]
    if scheme == "group":
        groups = df[str(config.group_column)].astype(str)
        n_groups = int(groups.nunique())
        return list(
            GroupKFold(n_splits=max(2, min(n_folds, n_groups))).split(positions, groups=groups)
        )
    if scheme == "time":
        order = np.argsort(df[str(config.time_column)].to_numpy(), kind="stable")
        return [(order[tr], order[va]) for tr, va in TimeSeriesSplit(n_folds).split(order)]
    repeats = cv_repeats(config, len(df))
    if classify:
        if repeats > 1:
            return list(
                RepeatedStratifiedKFold(
                    n_splits=n_folds, n_repeats=repeats, random_state=config.seed
                ).split(positions, y)
            )
        return list(
            StratifiedKFold(n_folds, shuffle=True, random_state=config.seed).split(positions, y)
        )
    if repeats > 1:
        return list(
            RepeatedKFold(n_splits=n_folds, n_repeats=repeats, random_state=config.seed).split(
                positions
            )
        )
    return list(KFold(n_folds, shuffle=True, random_state=config.seed).split(positions))
