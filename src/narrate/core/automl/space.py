"""Hyper-parameter search spaces and default (first-trial) parameters per family."""

from __future__ import annotations

from typing import Any

import optuna

__all__ = [
    "DEFAULT_PARAMS",
    "LOG_TARGET_FAMILIES",
    "PORTFOLIO",
    "default_key",
    "fix_rounds",
    "starting_points",
    "suggest_params",
]

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "linear": {"C": 1.0},
    "linear_regression": {"alpha": 1.0},
    "random_forest": {
        "n_estimators": 200,
        "max_depth": None,
        "min_samples_leaf": 1,
        "max_features": "sqrt",
    },
    "extra_trees": {
        "n_estimators": 200,
        "max_depth": None,
        "min_samples_leaf": 1,
        "max_features": "sqrt",
    },
    "hist_gradient_boosting": {
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 1e-6,
    },
    "lightgbm": {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1e-3,
        "max_bin": 255,
    },
    "xgboost": {
        "learning_rate": 0.05,
        "max_depth": 6,
        "min_child_weight": 1.0,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
        "max_bin": 256,
    },
}
#: Further hand-picked starting points, tried right after a family's defaults: small trees
#: on finely binned numbers (1,023 bins find thresholds in long-tailed columns such as
#: weights and amounts that 255 bins blur), and shallow, slowly learning XGBoost trees.
PORTFOLIO: dict[str, list[dict[str, Any]]] = {
    "lightgbm": [
        {
            "learning_rate": 0.1,
            "num_leaves": 12,
            "min_child_samples": 10,
            "subsample": 1.0,
            "colsample_bytree": 0.6,
            "reg_lambda": 0.2,
            "max_bin": 1023,
        }
    ],
    "xgboost": [
        {
            "learning_rate": 0.03,
            "max_depth": 3,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.7,
            "reg_lambda": 0.1,
            "max_bin": 256,
        }
    ],
}
_FIXED: dict[str, dict[str, Any]] = {
    "lightgbm": {"n_estimators": 600, "deterministic": True, "force_col_wise": True},
    "xgboost": {"n_estimators": 600},
    "hist_gradient_boosting": {"max_iter": 400},
}


def default_key(family: str, task: str) -> str:
    """Return the key of :data:`DEFAULT_PARAMS` for a family and task."""
    return "linear_regression" if family == "linear" and task == "regression" else family


#: Families that may learn log(1 + y) for a non-negative, right-skewed regression target.
LOG_TARGET_FAMILIES = ("linear", "lightgbm", "xgboost")


def suggest_params(
    trial: optuna.Trial, family: str, task: str, log_target: bool = False
) -> dict[str, Any]:
    """Ask an Optuna trial for one point of a family's search space.

    Args:
        trial: The trial (asks are recorded for TPE).
        family: Model family.
        task: ``binary``, ``multiclass`` or ``regression``.
        log_target: The target suits a log transform (searched as ``target_transform``).

    Returns:
        Estimator parameters, including fixed ones such as the boosting round cap.
    """
    params: dict[str, Any]
    if family == "baseline":
        params = {}
    elif family == "linear" and task == "regression":
        params = {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    elif family == "linear":
        params = {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    elif family in ("random_forest", "extra_trees"):
        params = {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=50),
            "max_depth": trial.suggest_categorical("max_depth", [None, 4, 8, 16]),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", 0.5, 1.0]),
        }
    elif family == "hist_gradient_boosting":
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 64, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 80, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 1.0, log=True),
        }
    elif family == "lightgbm":
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            # Small trees (4-8 leaves) win on tables with mostly additive effects.
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-6, 10.0, log=True),
            "max_bin": trial.suggest_categorical("max_bin", [63, 255, 1023]),
        }
    elif family == "xgboost":
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-6, 10.0, log=True),
            "max_bin": trial.suggest_categorical("max_bin", [64, 256, 1024]),
        }
    else:
        raise ValueError(f"unknown model family {family!r}")
    if log_target and task == "regression" and family in LOG_TARGET_FAMILIES:
        params["target_transform"] = trial.suggest_categorical("target_transform", ["none", "log"])
    return {**params, **_FIXED.get(family, {})}


def starting_points(family: str, task: str, log_target: bool = False) -> list[dict[str, Any]]:
    """The parameters of a family's first trials: its defaults, then the portfolio; with a
    log-suited target, each of those on y first and the defaults on log(1 + y) after."""
    defaults = DEFAULT_PARAMS[default_key(family, task)]
    points = [defaults, *PORTFOLIO.get(family, [])] if defaults else []
    if log_target and task == "regression" and family in LOG_TARGET_FAMILIES:
        points = [{**p, "target_transform": "none"} for p in points]
        points.insert(1, {**points[0], "target_transform": "log"})
    return points


#: A final fit sees all development rows, a fold's fit only part of them: a few more trees.
_ROUNDS_GROWTH = 1.1


def fix_rounds(family: str, params: dict[str, Any], rounds: list[int]) -> dict[str, Any]:
    """Return ``params`` with the boosting rounds fixed at the folds' mean best round and
    early stopping off, so a final fit on all rows needs no validation split.

    Args:
        family: A boosted-tree family.
        params: The trial's parameters.
        rounds: Rounds each fold's early stopping kept.

    Returns:
        The parameters to rebuild the model with.
    """
    count = max(1, round(float(sum(rounds)) / len(rounds) * _ROUNDS_GROWTH))
    if family == "hist_gradient_boosting":
        return {**params, "max_iter": count, "early_stopping": False}
    return {**params, "n_estimators": count, "early_stopping": False}
