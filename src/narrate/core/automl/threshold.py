"""Decision-threshold tuning for binary classifiers, on out-of-fold probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import FixedThresholdClassifier

from narrate.core.automl.config import ThresholdConfig

__all__ = ["apply_threshold", "tune_threshold"]


def _confusion(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    predicted = p[None, :] >= thresholds[:, None]
    positive = y.astype(bool)[None, :]
    tp = (predicted & positive).sum(axis=1).astype(float)
    fp = (predicted & ~positive).sum(axis=1).astype(float)
    fn = (~predicted & positive).sum(axis=1).astype(float)
    tn = (~predicted & ~positive).sum(axis=1).astype(float)
    return tp, fp, fn, tn


def tune_threshold(y: np.ndarray, p: np.ndarray, config: ThresholdConfig) -> dict[str, Any]:
    """Choose the probability above which a row is predicted positive.

    Args:
        y: 1 for the positive class, 0 otherwise (out-of-fold rows).
        p: Out-of-fold probabilities of the positive class.
        config: The objective (``f1``, ``cost``, ``precision``, ``recall``).

    Returns:
        ``{"threshold", "objective", "reason", "precision", "recall", "f1"}``; the threshold
        is 0.5 with ``objective == "none"``.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    candidates = np.unique(np.round(np.quantile(p, np.linspace(0, 1, 201)), 6))
    candidates = np.unique(np.concatenate([candidates, [0.5]]))
    tp, fp, fn, tn = _confusion(y, p, candidates)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    index, reason = _choose(config, candidates, precision, recall, f1, (tp, fp, fn, tn))
    return {
        "threshold": float(candidates[index]),
        "objective": config.objective,
        "reason": reason,
        "precision": float(precision[index]),
        "recall": float(recall[index]),
        "f1": float(f1[index]),
    }


def _choose(
    config: ThresholdConfig,
    candidates: np.ndarray,
    precision: np.ndarray,
    recall: np.ndarray,
    f1: np.ndarray,
    counts: tuple[np.ndarray, ...],
) -> tuple[int, str]:
    objective = config.objective
    if objective == "none":
        return int(np.flatnonzero(candidates == 0.5)[0]), "the default 0.5 threshold is kept"
    if objective == "f1":
        index = int(np.argmax(f1))
        return index, f"it gives the best F1 ({f1[index]:.3f}) on out-of-fold predictions"
    if objective == "cost":
        tp, fp, fn, tn = counts
        (c_tn, c_fp), (c_fn, c_tp) = config.cost_matrix or [[0, 1], [1, 0]]
        cost = tn * c_tn + fp * c_fp + fn * c_fn + tp * c_tp
        index = int(np.argmin(cost))
        return index, f"it gives the lowest total cost ({cost[index]:,.1f}) on out-of-fold rows"
    target = float(config.target_value or 0.0)
    if objective == "precision":
        ok = np.flatnonzero(precision >= target)
        if ok.size == 0:
            index = int(np.argmax(precision))
            return index, f"no threshold reaches precision {target:.2f}; this one is closest"
        index = int(ok[np.argmax(recall[ok])])
        return index, f"it reaches precision {precision[index]:.3f} with the most recall"
    ok = np.flatnonzero(recall >= target)
    index = int(ok[np.argmax(precision[ok])]) if ok.size else 0
    return index, f"it reaches recall {recall[index]:.3f} with the best precision"


def apply_threshold(
    fitted: Any,
    threshold: float,
    positive_class: str,
    X: Any,
    y: Any,
) -> FixedThresholdClassifier:
    """Wrap a fitted binary classifier so that ``predict`` uses ``threshold``.

    Args:
        fitted: The fitted classifier (kept as is, not refitted).
        threshold: Probability of ``positive_class`` at or above which it is predicted.
        positive_class: The positive label.
        X: A few rows (needed by scikit-learn's ``fit`` contract; no training happens).
        y: Their labels.

    Returns:
        A fitted ``FixedThresholdClassifier``.
    """
    wrapper = FixedThresholdClassifier(
        FrozenEstimator(fitted),
        threshold=threshold,
        pos_label=positive_class,
        response_method="predict_proba",
    )
    return wrapper.fit(X, y)
