"""Point metrics with bootstrap 95% confidence intervals."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

__all__ = ["MetricFn", "binary_metrics", "bootstrap", "multiclass_metrics", "regression_metrics"]

MetricFn = Callable[[np.ndarray], float]


def _safe(fn: Callable[[], float]) -> float:
    with warnings.catch_warnings():
        # A resample without one class makes some metrics undefined; that sample is skipped.
        warnings.simplefilter("ignore")
        try:
            return float(fn())
        except ValueError:
            return float("nan")


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, MetricFn]:
    """Return metric functions over row indices for a binary problem.

    Args:
        y: 1 for the positive class, 0 otherwise.
        p: Probability of the positive class.
        threshold: Probability at or above which a row is predicted positive.

    Returns:
        Name → function of an index array.
    """
    pred = (p >= threshold).astype(int)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    # Vectorised formulas: the bootstrap calls each of these hundreds of times.
    return {
        "roc_auc": lambda i: _roc_auc(y[i], p[i]),
        "pr_auc": lambda i: _safe(lambda: skm.average_precision_score(y[i], p[i])),
        "log_loss": lambda i: float(
            -np.mean(y[i] * np.log(clipped[i]) + (1 - y[i]) * np.log(1 - clipped[i]))
        ),
        "accuracy": lambda i: float(np.mean(y[i] == pred[i])),
        "f1": lambda i: _ratio(2 * _tp(y[i], pred[i]), np.sum(y[i]) + np.sum(pred[i])),
        "precision": lambda i: _ratio(_tp(y[i], pred[i]), np.sum(pred[i])),
        "recall": lambda i: _ratio(_tp(y[i], pred[i]), np.sum(y[i])),
        "brier": lambda i: float(np.mean((p[i] - y[i]) ** 2)),
    }


def _tp(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sum((y == 1) & (pred == 1)))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count one half)."""
    n_pos = int(np.sum(y))
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((np.sum(ranks[y == 1]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, MetricFn]:
    """Return metric functions over row indices for a multiclass problem.

    Args:
        y: True labels.
        proba: Probability matrix, columns in ``classes`` order.
        classes: Class labels.

    Returns:
        Name → function of an index array.
    """
    pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    return {
        "accuracy": lambda i: float(np.mean(y[i] == pred[i])),
        "balanced_accuracy": lambda i: _safe(lambda: skm.balanced_accuracy_score(y[i], pred[i])),
        "macro_f1": lambda i: _safe(
            lambda: skm.f1_score(y[i], pred[i], average="macro", labels=classes, zero_division=0)
        ),
        "log_loss": lambda i: _safe(lambda: skm.log_loss(y[i], proba[i], labels=classes)),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, MetricFn]:
    """Return metric functions over row indices for a regression problem.

    Args:
        y: True values.
        pred: Predictions.

    Returns:
        Name → function of an index array.
    """
    return {
        "rmse": lambda i: float(np.sqrt(np.mean((y[i] - pred[i]) ** 2))),
        "mae": lambda i: float(np.mean(np.abs(y[i] - pred[i]))),
        "r2": lambda i: _safe(lambda: skm.r2_score(y[i], pred[i])),
        "mape": lambda i: _safe(lambda: skm.mean_absolute_percentage_error(y[i], pred[i])),
    }


def bootstrap(
    functions: dict[str, MetricFn], n_rows: int, *, n_bootstrap: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Compute each metric and its percentile bootstrap 95% interval.

    Args:
        functions: Name → function of an index array.
        n_rows: Rows evaluated.
        n_bootstrap: Resamples (0 = no intervals).
        seed: Random state.

    Returns:
        Name → ``{"value", "ci_low", "ci_high"}`` (None where undefined).
    """
    rng = np.random.default_rng(seed)
    everything = np.arange(n_rows)
    samples = [rng.integers(0, n_rows, n_rows) for _ in range(n_bootstrap)]
    out: dict[str, dict[str, Any]] = {}
    for name, fn in functions.items():
        value = fn(everything)
        draws = np.array([fn(s) for s in samples]) if samples else np.array([])
        draws = draws[np.isfinite(draws)]
        low, high = np.percentile(draws, [2.5, 97.5]) if draws.size else (np.nan, np.nan)
        out[name] = {"value": _clean(value), "ci_low": _clean(low), "ci_high": _clean(high)}
    return out


def _clean(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None
