"""Chart data (plain lists) for classification and regression evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

__all__ = ["binary_curves", "downsample", "regression_curves"]

MAX_CURVE_POINTS = 200
MAX_SCATTER_POINTS = 2000


def _r(values: Any) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(values, dtype=float)]


def downsample(n: int, limit: int) -> np.ndarray:
    """Return at most ``limit`` evenly spaced indices of ``n`` (first and last kept)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def binary_curves(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC, precision-recall, calibration and cumulative gain/lift data.

    Args:
        y: 1 for the positive class, 0 otherwise.
        p: Probability of the positive class.

    Returns:
        ``{"roc", "pr", "calibration", "gain"}`` with ≤ 200 points each.
    """
    fpr, tpr, _ = roc_curve(y, p)
    keep = downsample(len(fpr), MAX_CURVE_POINTS)
    precision, recall, _ = precision_recall_curve(y, p)
    keep_pr = downsample(len(precision), MAX_CURVE_POINTS)
    n_bins = max(2, min(10, len(y) // 20))
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
    return {
        "roc": {"fpr": _r(fpr[keep]), "tpr": _r(tpr[keep])},
        "pr": {"recall": _r(recall[keep_pr]), "precision": _r(precision[keep_pr])},
        "calibration": {"predicted": _r(predicted), "observed": _r(observed)},
        "gain": _gain(y, p),
    }


def _gain(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    order = np.argsort(-p, kind="stable")
    hits = np.cumsum(y[order])
    total = max(int(y.sum()), 1)
    fractions = np.linspace(0.1, 1.0, 10)
    cut = np.maximum((fractions * len(y)).round().astype(int) - 1, 0)
    gain = hits[cut] / total
    return {"fraction": _r(fractions), "gain": _r(gain), "lift": _r(gain / fractions)}


def regression_curves(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Predicted vs actual, residuals, residual histogram and error by actual-value bin.

    Args:
        y: True values.
        pred: Predictions.

    Returns:
        Chart data with ≤ 2000 scatter points.
    """
    residuals = y - pred
    rng = np.random.default_rng(0)
    sample = (
        np.sort(rng.choice(len(y), MAX_SCATTER_POINTS, replace=False))
        if len(y) > MAX_SCATTER_POINTS
        else np.arange(len(y))
    )
    counts, edges = np.histogram(residuals, bins=min(30, max(5, len(y) // 10)))
    bins = pd.qcut(pd.Series(y), q=min(5, len(np.unique(y))), duplicates="drop")
    segments = (
        pd.DataFrame({"bin": bins.astype(str), "error": np.abs(residuals)})
        .groupby("bin", sort=False, observed=True)["error"]
        .agg(["mean", "count"])
        .reset_index()
    )
    return {
        "predicted_vs_actual": {"actual": _r(y[sample]), "predicted": _r(pred[sample])},
        "residuals": {"predicted": _r(pred[sample]), "residual": _r(residuals[sample])},
        "residual_histogram": {"counts": [int(c) for c in counts], "edges": _r(edges)},
        "error_by_segment": [
            {
                "segment": str(row["bin"]),
                "mae": round(float(row["mean"]), 6),
                "n": int(row["count"]),
            }
            for _, row in segments.iterrows()
        ],
    }
