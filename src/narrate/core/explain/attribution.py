"""Per-feature contributions of one fitted estimator on its prepared columns.

Each function returns an :class:`Attribution`: for every row and class, contributions per
prepared feature and a base value, on the estimator's own scale, such that
``base + contributions.sum() == output`` on that scale. Binary classifiers with a logit
link get two "classes", the second the negation of the first (the log-odds of class 0 is
minus that of class 1), so any class can be read the same way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Attribution", "NotNative", "attribute"]


class NotNative(Exception):
    """The estimator has no exact fast attribution; use the sampling explainer."""


@dataclass
class Attribution:
    """Contributions per (row, class, feature) and base values per (row, class).

    Attributes:
        values: ``(n_rows, n_outputs, n_features)``.
        base: ``(n_rows, n_outputs)``.
        scale: ``log_odds``, ``margin`` (multiclass softmax logit), ``probability``,
            ``value`` or ``log1p_value`` (a regressor that learned log(1 + y)).
        method: What computed it (``lightgbm_pred_contrib``, ``shap_tree``, ...).
    """

    values: np.ndarray
    base: np.ndarray
    scale: str
    method: str


def _binary(values: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Margins of class 1 -> both classes' log-odds."""
    return np.stack([-values, values], axis=1), np.stack([-base, base], axis=1)


def _safe_frame(X: Any) -> Any:
    from narrate.core.automl.boosting import safe_feature_names

    if isinstance(X, pd.DataFrame):
        return X.set_axis(safe_feature_names(X.columns), axis=1)
    return np.asarray(X, dtype=float)


def _lightgbm(booster: Any, X: Any, classify: bool, n_classes: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
        raw = np.asarray(booster.predict(_safe_frame(X), pred_contrib=True), dtype=float)
    if classify and n_classes > 2:
        return raw.reshape(len(raw), n_classes, -1)
    return raw


def _xgboost(booster: Any, X: Any) -> np.ndarray:
    import xgboost as xgb

    matrix = xgb.DMatrix(_safe_frame(X), enable_categorical=True)
    # The model predicts with the trees up to its best round (early stopping); so must this.
    best = getattr(booster, "best_iteration", None)
    rounds = (0, int(best) + 1) if best is not None else (0, 0)
    raw = booster.get_booster().predict(matrix, pred_contribs=True, iteration_range=rounds)
    return np.asarray(raw, dtype=float)


def _boosted(model: Any, X: Any) -> Attribution:
    import lightgbm as lgb

    inner = model.estimator_
    classify = hasattr(model, "classes_")
    n_classes = len(model.classes_) if classify else 1
    if isinstance(inner, lgb.LGBMModel):
        raw, method = _lightgbm(inner, X, classify, n_classes), "lightgbm_pred_contrib"
    else:
        raw, method = _xgboost(inner, X), "xgboost_pred_contribs"
    if raw.ndim == 3:  # multiclass: (rows, classes, features + bias)
        return Attribution(raw[:, :, :-1], raw[:, :, -1], "margin", method)
    values, base = raw[:, :-1], raw[:, -1]
    if classify:
        both, bases = _binary(values, base)
        return Attribution(both, bases, "log_odds", method)
    scale = "log1p_value" if getattr(model, "target_transform", "none") == "log" else "value"
    return Attribution(values[:, None, :], base[:, None], scale, method)


def _linear(model: Any, X: Any, background: Any) -> Attribution:
    """coef x (x - background mean) on the link scale; the base is the model at the mean."""
    from sklearn.compose import TransformedTargetRegressor

    scale = "value"
    if isinstance(model, TransformedTargetRegressor):
        model, scale = model.regressor_, "log1p_value"
    matrix = np.asarray(X, dtype=float)
    mean = np.nanmean(np.asarray(background, dtype=float), axis=0)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=float))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    values = (matrix - mean)[:, None, :] * coef[None, :, :]
    base = np.tile(intercept + coef @ mean, (len(matrix), 1))
    if hasattr(model, "classes_"):
        if len(model.classes_) == 2:
            both, bases = _binary(values[:, 0, :], base[:, 0])
            return Attribution(both, bases, "log_odds", "linear_coefficients")
        return Attribution(values, base, "margin", "linear_coefficients")
    return Attribution(values, base, scale, "linear_coefficients")


def _shap_tree(model: Any, X: Any, cache: dict[str, Any]) -> Attribution:
    try:
        import shap
    except ImportError as exc:  # pragma: no cover - shap is a dependency
        raise NotNative("shap is not installed") from exc
    if isinstance(X, pd.DataFrame) and any(isinstance(d, pd.CategoricalDtype) for d in X.dtypes):
        # shap reads numeric thresholds only; native category splits would be misread.
        raise NotNative("native categorical splits")
    matrix = np.asarray(X, dtype=float)
    try:
        explainer = cache.get("shap")
        if explainer is None:
            explainer = cache["shap"] = shap.TreeExplainer(model)
        values = np.asarray(explainer.shap_values(matrix, check_additivity=False), dtype=float)
    except Exception as exc:  # shap supports a fixed list of tree models
        raise NotNative(f"shap TreeExplainer: {exc}") from exc
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    n = len(matrix)
    classify = hasattr(model, "classes_")
    scale = "probability" if classify and _outputs_probability(model) else "value"
    if values.ndim == 2:  # one output: a regressor, or a binary booster's class-1 margin
        base = np.full(n, expected[-1])
        if classify:
            both, bases = _binary(values, base)
            return Attribution(both, bases, "log_odds", "shap_tree")
        return Attribution(values[:, None, :], base[:, None], scale, "shap_tree")
    per_class = np.transpose(values, (0, 2, 1))  # (rows, classes, features)
    if classify and scale != "probability":
        scale = "margin"
    return Attribution(per_class, np.tile(expected, (n, 1)), scale, "shap_tree")


def _outputs_probability(model: Any) -> bool:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    return isinstance(model, RandomForestClassifier | ExtraTreesClassifier | DecisionTreeClassifier)


def _dummy(model: Any, X: Any) -> Attribution:
    n, n_features = np.shape(X)[0], np.shape(X)[1]
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X), dtype=float)
        return Attribution(
            np.zeros((n, proba.shape[1], n_features)), proba, "probability", "constant"
        )
    value = np.asarray(model.predict(X), dtype=float)
    return Attribution(np.zeros((n, 1, n_features)), value[:, None], "value", "constant")


def attribute(model: Any, X: Any, background: Any, cache: dict[str, Any]) -> Attribution:
    """Exact contributions of one fitted estimator on its prepared input ``X``.

    Args:
        model: The final estimator of a pipeline.
        X: Rows as the estimator receives them.
        background: Prepared background rows (a linear model's reference point).
        cache: Per-estimator state kept between calls (shap's tree explainer).

    Returns:
        The attribution on the estimator's own scale.

    Raises:
        NotNative: No exact fast method fits this estimator.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    from narrate.core.automl.boosting import BoostedClassifier, BoostedRegressor

    if isinstance(model, BoostedClassifier | BoostedRegressor):
        return _boosted(model, X)
    if isinstance(
        model, LogisticRegression | Ridge | LinearRegression | TransformedTargetRegressor
    ):
        if isinstance(model, TransformedTargetRegressor) and not isinstance(
            model.regressor_, Ridge | LinearRegression
        ):
            raise NotNative("target transform over a non-linear regressor")
        return _linear(model, X, background)
    if isinstance(model, DummyClassifier | DummyRegressor):
        return _dummy(model, X)
    forests = (
        RandomForestClassifier,
        RandomForestRegressor,
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    if isinstance(model, forests):
        return _shap_tree(model, X, cache)
    raise NotNative(type(model).__name__)
