"""Chart data (plain lists) for classification and regression evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

__all__ = ["binary_curves", "downsample", "multiclass_curves", "regression_curves"]

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


def _roc_points(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, _ = roc_curve(y, p)
    keep = downsample(len(fpr), MAX_CURVE_POINTS)
    return {"fpr": _r(fpr[keep]), "tpr": _r(tpr[keep])}


def _pr_points(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    precision, recall, _ = precision_recall_curve(y, p)
    keep = downsample(len(precision), MAX_CURVE_POINTS)
    return {"recall": _r(recall[keep]), "precision": _r(precision[keep])}


def _binned_calibration(correct: np.ndarray, confidence: np.ndarray) -> dict[str, list[float]]:
    """Mean confidence and observed share in equal-count bins of increasing confidence."""
    n_bins = max(2, min(10, len(correct) // 20))
    order = np.argsort(confidence, kind="stable")
    chunks = [c for c in np.array_split(order, min(n_bins, len(order))) if len(c)]
    return {
        "predicted": _r([confidence[c].mean() for c in chunks]),
        "observed": _r([correct[c].mean() for c in chunks]),
    }


def multiclass_curves(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """One-vs-rest ROC and precision-recall curves per class, and a confidence calibration.

    Args:
        y: True labels.
        proba: Probability matrix, columns in ``classes`` order.
        classes: Class labels.

    Returns:
        ``{"roc_ovr": {class: {"fpr", "tpr", "auc"}}, "pr_ovr": {class: {"recall",
        "precision", "average_precision", "prevalence"}}, "calibration": {"predicted",
        "observed", "kind"}}`` with ≤ 200 points per curve. A class missing from ``y`` (or
        making up all of it) has no curve. The calibration compares the predicted class's
        probability with how often that prediction is right.
    """
    roc: dict[str, Any] = {}
    pr: dict[str, Any] = {}
    for i, label in enumerate(classes):
        y01 = (y == label).astype(int)
        if y01.sum() == 0 or y01.sum() == len(y01):
            continue
        p = proba[:, i]
        points = _roc_points(y01, p)
        fpr, tpr, _ = roc_curve(y01, p)
        roc[label] = {**points, "auc": round(float(auc(fpr, tpr)), 6)}
        pr[label] = {
            **_pr_points(y01, p),
            "average_precision": round(float(average_precision_score(y01, p)), 6),
            "prevalence": round(float(y01.mean()), 6),
        }
    top = np.argmax(proba, axis=1)
    correct = (np.asarray(classes, dtype=object)[top] == y).astype(float)
    confidence = proba[np.arange(len(y)), top].astype(float)
    calibration = {**_binned_calibration(correct, confidence), "kind": "predicted_class"}
    return {"roc_ovr": roc, "pr_ovr": pr, "calibration": calibration}


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
