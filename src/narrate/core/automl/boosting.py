"""Gradient-boosting wrappers: label encoding, class weights and early stopping inside fit.

LightGBM and XGBoost stop adding trees when a validation set stops improving, so
``n_estimators`` is an upper bound, not a hyper-parameter to tune. During the search the
validation set is the cross-validation fold itself (``eval_set``), as AutoGluon does: the
model trains on every training row and the fold's many rows judge when to stop. The
search then fixes the tree count at the folds' mean best round (``early_stopping_rounds``
0), so the final model trains on all rows with a known number of trees. Without
``eval_set`` and with early stopping on, a small inner split of the training rows decides.

Both libraries refuse some column names (LightGBM any JSON character such as ``[ ] { } " ,
:``, XGBoost ``[ ] <``), which ordinary data has (``bill length [mm]``). The wrappers are
the model boundary: the booster sees positional safe names (:func:`safe_feature_names`)
while the wrapper keeps the user's in ``feature_names_in_``, so importances, evaluation
and the serving copy (which reads trees by feature position) speak the user's names.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight

from narrate.core.serving import expm1_capped

__all__ = ["BoostedClassifier", "BoostedRegressor", "best_rounds", "safe_feature_names"]

_MIN_ROWS_FOR_EARLY_STOPPING = 60
# Anything but ASCII letters, digits and "_" may trip one of the boosters' name checks.
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^0-9A-Za-z_]+")
_NAME_HINT_CHARS = 40


def safe_feature_names(names: Any) -> list[str]:
    """Map column names to names every booster accepts, one to one and in order.

    The position prefix ``f<i>_`` makes the mapping collision-free (``a:b`` and ``a,b``
    become ``f0_a_b`` and ``f1_a_b``) and deterministic; the cleaned name after it only
    helps a person reading a booster dump.

    Args:
        names: The column names, in column order.

    Returns:
        One safe name per column.
    """
    return [
        f"f{i}_{_UNSAFE_NAME_CHARACTERS.sub('_', str(name))[:_NAME_HINT_CHARS]}"
        for i, name in enumerate(names)
    ]


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
    eval_set: tuple[Any, np.ndarray] | None = None,
) -> Any:
    """Fit ``model`` with early stopping on ``eval_set``, or else on ``fraction`` of the
    rows held out when there are enough of them."""
    n_rows = len(y)
    weights = np.ones(n_rows) if weights is None else weights
    with warnings.catch_warnings():
        # LightGBM warns about feature names and tiny leaves on small data; harmless here.
        warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
        if rounds > 0 and eval_set is not None and len(eval_set[1]):
            X_val, y_val = eval_set
            return _fit_stopping(model, X, y, weights, X_val, y_val, np.ones(len(y_val)), rounds)
        can_stop = n_rows >= _MIN_ROWS_FOR_EARLY_STOPPING and rounds > 0
        if stratify and can_stop:
            can_stop = bool(np.bincount(y).min() >= 4)
        if not can_stop:
            return model.fit(X, y, sample_weight=weights)
        idx_fit, idx_val = train_test_split(
            np.arange(n_rows),
            test_size=fraction,
            random_state=random_state,
            stratify=y if stratify else None,
        )
        return _fit_stopping(
            model,
            _rows(X, idx_fit),
            y[idx_fit],
            weights[idx_fit],
            _rows(X, idx_val),
            y[idx_val],
            weights[idx_val],
            rounds,
        )


def _fit_stopping(
    model: Any,
    X: Any,
    y: np.ndarray,
    weights: np.ndarray,
    X_val: Any,
    y_val: np.ndarray,
    weights_val: np.ndarray,
    rounds: int,
) -> Any:
    import lightgbm as lgb

    if isinstance(model, lgb.LGBMModel):
        return model.fit(
            X,
            y,
            sample_weight=weights,
            eval_X=(X_val,),
            eval_y=(y_val,),
            eval_sample_weight=[weights_val],
            callbacks=[lgb.early_stopping(rounds, verbose=False)],
        )
    model.set_params(early_stopping_rounds=rounds)
    return model.fit(
        X,
        y,
        sample_weight=weights,
        eval_set=[(X_val, y_val)],
        sample_weight_eval_set=[weights_val],
        verbose=False,
    )


def best_rounds(model: Any) -> int | None:
    """Boosting rounds a fitted booster kept (its best round when early stopping ran)."""
    import lightgbm as lgb

    if isinstance(model, lgb.LGBMModel):
        best = int(getattr(model, "best_iteration_", 0) or 0)
        return best or int(model.booster_.current_iteration())
    best_xgb = getattr(model, "best_iteration", None)
    if best_xgb is not None:
        return int(best_xgb) + 1
    return int(model.get_booster().num_boosted_rounds())


def _as_array(X: Any) -> Any:
    """Sparse matrices and DataFrames (which carry categorical columns) pass as they are,
    DataFrames under safe column names."""
    if isinstance(X, pd.DataFrame):
        return X.set_axis(safe_feature_names(X.columns), axis=1)
    if hasattr(X, "tocsr"):
        return X
    return np.asarray(X, dtype=float)


def _input_names(X: Any) -> np.ndarray | None:
    """The user's column names of a DataFrame input (None for arrays)."""
    if isinstance(X, pd.DataFrame):
        return np.asarray([str(c) for c in X.columns], dtype=object)
    return None


class _NamedBooster:
    """What both wrappers share: the user's feature names and their importances."""

    estimator_: Any

    def _record_names(self, X: Any) -> None:
        names = _input_names(X)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):  # refitted on an array: no names now
            del self.feature_names_in_
        self.n_features_in_ = X.shape[1]

    @property
    def feature_importances_(self) -> np.ndarray:
        """The booster's importances, in the order of ``feature_names_in_``."""
        return np.asarray(self.estimator_.feature_importances_, dtype=float)


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


class BoostedClassifier(_NamedBooster, ClassifierMixin, BaseEstimator):  # type: ignore[misc]
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

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> BoostedClassifier:
        """Fit the wrapped booster on encoded labels; returns self.

        ``eval_set`` (rows, labels) judges early stopping instead of an inner split.
        """
        self._record_names(X)
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
            eval_set=self._encoded(eval_set),
        )
        self.n_rounds_ = best_rounds(self.estimator_)
        return self

    def _encoded(self, eval_set: tuple[Any, Any] | None) -> tuple[Any, np.ndarray] | None:
        """The validation rows with encoded labels (all of them classes the training rows
        have: :func:`narrate.core.automl.search.fit_with_validation` sees to that)."""
        if eval_set is None:
            return None
        X_val, y_val = _as_array(eval_set[0]), np.asarray(eval_set[1])
        return X_val, self.label_encoder_.transform(y_val)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities in the order of ``classes_``."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            return np.asarray(self.estimator_.predict_proba(_as_array(X)))

    def predict(self, X: Any) -> np.ndarray:
        """Return the most likely class label."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class BoostedRegressor(_NamedBooster, RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Regressor wrapper for LightGBM/XGBoost with early stopping.

    Args:
        estimator: An unfitted ``LGBMRegressor`` or ``XGBRegressor``.
        validation_fraction: Share of training rows used to decide when to stop.
        early_stopping_rounds: Rounds without improvement before stopping (0 = off).
        random_state: Seed of the inner split.
        target_transform: ``log`` learns log(1 + y) and predicts back on y's scale (for
            non-negative, right-skewed targets such as prices); ``none`` learns y.
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 30,
        random_state: int = 0,
        target_transform: str = "none",
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.target_transform = target_transform

    def _forward(self, y: Any) -> np.ndarray:
        values = np.asarray(y, dtype=float)
        return np.log1p(values) if self.target_transform == "log" else values

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> BoostedRegressor:
        """Fit the wrapped booster; returns self.

        ``eval_set`` (rows, targets) judges early stopping instead of an inner split.
        """
        self._record_names(X)
        X = _as_array(X)
        if eval_set is not None:
            eval_set = (_as_array(eval_set[0]), self._forward(eval_set[1]))
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.estimator_ = _fit_with_early_stopping(
            clone(self.estimator),
            X,
            self._forward(y),
            weights,
            fraction=self.validation_fraction,
            rounds=self.early_stopping_rounds,
            random_state=self.random_state,
            stratify=False,
            eval_set=eval_set,
        )
        self.n_rounds_ = best_rounds(self.estimator_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Return predictions."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            predicted = np.asarray(self.estimator_.predict(_as_array(X)), dtype=float)
        if getattr(self, "target_transform", "none") == "log":
            return expm1_capped(predicted)
        return predicted
