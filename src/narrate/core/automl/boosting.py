"""Gradient-boosting wrappers: label encoding, class weights and early stopping inside fit.

LightGBM and XGBoost stop adding trees when a small inner validation split (taken from
the training rows only) stops improving, so ``n_estimators`` is an upper bound, not a
hyper-parameter to tune.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight

__all__ = ["BoostedClassifier", "BoostedRegressor"]

_MIN_ROWS_FOR_EARLY_STOPPING = 60


def _fit_with_early_stopping(
    model: Any,
    X: Any,
    y: np.ndarray,
    weights: np.ndarray | None,
    *,
    fraction: float,
    rounds: int,
    random_state: int,
    stratify: bool,
) -> Any:
    """Fit ``model``, holding out ``fraction`` of rows for early stopping when possible."""
    import lightgbm as lgb

    n_rows = len(y)
    can_stop = n_rows >= _MIN_ROWS_FOR_EARLY_STOPPING and rounds > 0
    if stratify and can_stop:
        can_stop = bool(np.bincount(y).min() >= 4)
    weights = np.ones(n_rows) if weights is None else weights
    with warnings.catch_warnings():
        # LightGBM warns about feature names and tiny leaves on small data; harmless here.
        warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
        if not can_stop:
            return model.fit(X, y, sample_weight=weights)
        idx_fit, idx_val = train_test_split(
            np.arange(n_rows),
            test_size=fraction,
            random_state=random_state,
            stratify=y if stratify else None,
        )
        if isinstance(model, lgb.LGBMModel):
            callbacks: list[Any] = [lgb.early_stopping(rounds, verbose=False)]
            return model.fit(
                _rows(X, idx_fit),
                y[idx_fit],
                sample_weight=weights[idx_fit],
                eval_X=(_rows(X, idx_val),),
                eval_y=(y[idx_val],),
                eval_sample_weight=[weights[idx_val]],
                callbacks=callbacks,
            )
        model.set_params(early_stopping_rounds=rounds)
        return model.fit(
            _rows(X, idx_fit),
            y[idx_fit],
            sample_weight=weights[idx_fit],
            eval_set=[(_rows(X, idx_val), y[idx_val])],
            sample_weight_eval_set=[weights[idx_val]],
            verbose=False,
        )


def _as_array(X: Any) -> Any:
    """Sparse matrices and DataFrames (which carry categorical columns) pass as they are."""
    if hasattr(X, "tocsr") or isinstance(X, pd.DataFrame):
        return X
    return np.asarray(X, dtype=float)


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


class BoostedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Classifier wrapper for LightGBM/XGBoost with early stopping and class weights.

    Args:
        estimator: An unfitted ``LGBMClassifier`` or ``XGBClassifier``.
        class_weight: ``"balanced"`` to weight rows inversely to class frequency.
        validation_fraction: Share of training rows used to decide when to stop.
        early_stopping_rounds: Rounds without improvement before stopping (0 = off).
        random_state: Seed of the inner split.
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        class_weight: str | None = None,
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 30,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BoostedClassifier:
        """Fit the wrapped booster on encoded labels; returns self."""
        X = _as_array(X)
        self.label_encoder_ = LabelEncoder().fit(np.asarray(y))
        self.classes_ = self.label_encoder_.classes_
        codes = self.label_encoder_.transform(np.asarray(y))
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.class_weight is not None:
            balanced = compute_sample_weight(self.class_weight, codes)
            weights = balanced if weights is None else weights * balanced
        self.estimator_ = _fit_with_early_stopping(
            clone(self.estimator),
            X,
            codes,
            weights,
            fraction=self.validation_fraction,
            rounds=self.early_stopping_rounds,
            random_state=self.random_state,
            stratify=True,
        )
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities in the order of ``classes_``."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            return np.asarray(self.estimator_.predict_proba(_as_array(X)))

    def predict(self, X: Any) -> np.ndarray:
        """Return the most likely class label."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class BoostedRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Regressor wrapper for LightGBM/XGBoost with early stopping.

    Args:
        estimator: An unfitted ``LGBMRegressor`` or ``XGBRegressor``.
        validation_fraction: Share of training rows used to decide when to stop.
        early_stopping_rounds: Rounds without improvement before stopping (0 = off).
        random_state: Seed of the inner split.
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 30,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BoostedRegressor:
        """Fit the wrapped booster; returns self."""
        X = _as_array(X)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.estimator_ = _fit_with_early_stopping(
            clone(self.estimator),
            X,
            np.asarray(y, dtype=float),
            weights,
            fraction=self.validation_fraction,
            rounds=self.early_stopping_rounds,
            random_state=self.random_state,
            stratify=False,
        )
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Return predictions."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            return np.asarray(self.estimator_.predict(_as_array(X)))
