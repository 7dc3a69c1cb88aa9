"""Metrics used to rank candidates, computed from predictions (not from estimators)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from narrate.errors import InvalidInput

__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "get_metric", "predicted_labels"]


@dataclass(frozen=True)
class Metric:
    """A named metric over (true labels/values, probability matrix or predictions).

    Attributes:
        name: Stable name (``roc_auc``, ``rmse`` ...).
        label: Human-readable name.
        greater_is_better: Direction.
        fn: ``fn(y_true, scores, classes)``; ``scores`` is the class-probability matrix for
            classification (columns in ``classes`` order) and predictions for regression.
    """

    name: str
    label: str
    greater_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray, list[str]], float]

    def goal(self, value: float) -> float:
        """Return the value oriented so that larger is better."""
        return value if self.greater_is_better else -value


def predicted_labels(proba: np.ndarray, classes: list[str]) -> np.ndarray:
    """Return the most likely class for each row of a probability matrix."""
    labels: np.ndarray = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    return labels


def _binary(positive: str | None = None) -> dict[str, Metric]:
    """Binary metrics; ``positive`` is the class scored as positive (default: the second
    class in sorted order). PR AUC and F1 depend on it; ROC AUC and the rest do not."""

    def column(c: list[str]) -> int:
        return c.index(positive) if positive in c else 1

    def is_pos(y: np.ndarray, c: list[str]) -> np.ndarray:
        return np.asarray(y == c[column(c)], dtype=int)

    return {
        "roc_auc": Metric(
            "roc_auc",
            "ROC AUC",
            True,
            lambda y, p, c: float(skm.roc_auc_score(is_pos(y, c), p[:, column(c)])),
        ),
        "pr_auc": Metric(
            "pr_auc",
            "PR AUC",
            True,
            lambda y, p, c: float(skm.average_precision_score(is_pos(y, c), p[:, column(c)])),
        ),
        "log_loss": Metric(
            "log_loss", "log loss", False, lambda y, p, c: float(skm.log_loss(y, p, labels=c))
        ),
        "accuracy": Metric(
            "accuracy",
            "accuracy",
            True,
            lambda y, p, c: float(skm.accuracy_score(y, predicted_labels(p, c))),
        ),
        "balanced_accuracy": Metric(
            "balanced_accuracy",
            "balanced accuracy",
            True,
            lambda y, p, c: float(skm.balanced_accuracy_score(y, predicted_labels(p, c))),
        ),
        "f1": Metric(
            "f1",
            "F1",
            True,
            lambda y, p, c: float(
                skm.f1_score(is_pos(y, c), (p[:, column(c)] >= 0.5).astype(int), zero_division=0)
            ),
        ),
    }


def _multiclass() -> dict[str, Metric]:
    return {
        "log_loss": Metric(
            "log_loss", "log loss", False, lambda y, p, c: float(skm.log_loss(y, p, labels=c))
        ),
        "accuracy": Metric(
            "accuracy",
            "accuracy",
            True,
            lambda y, p, c: float(skm.accuracy_score(y, predicted_labels(p, c))),
        ),
        "balanced_accuracy": Metric(
            "balanced_accuracy",
            "balanced accuracy",
            True,
            lambda y, p, c: float(skm.balanced_accuracy_score(y, predicted_labels(p, c))),
        ),
        "macro_f1": Metric(
            "macro_f1",
            "macro F1",
            True,
            lambda y, p, c: float(
                skm.f1_score(y, predicted_labels(p, c), average="macro", zero_division=0)
            ),
        ),
        "roc_auc_ovr": Metric(
            "roc_auc_ovr",
            "ROC AUC (one-vs-rest)",
            True,
            lambda y, p, c: float(skm.roc_auc_score(y, p, multi_class="ovr", labels=c)),
        ),
    }


def _regression() -> dict[str, Metric]:
    return {
        "rmse": Metric(
            "rmse", "RMSE", False, lambda y, p, _c: float(skm.root_mean_squared_error(y, p))
        ),
        "mae": Metric("mae", "MAE", False, lambda y, p, _c: float(skm.mean_absolute_error(y, p))),
        "r2": Metric("r2", "R²", True, lambda y, p, _c: float(skm.r2_score(y, p))),
        "mape": Metric(
            "mape", "MAPE", False, lambda y, p, _c: float(skm.mean_absolute_percentage_error(y, p))
        ),
    }


METRICS: dict[str, dict[str, Metric]] = {
    "binary": _binary(),
    "multiclass": _multiclass(),
    "regression": _regression(),
}
DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def get_metric(task: str, name: str | None, positive_class: str | None = None) -> Metric:
    """Return the metric for a task (the default when ``name`` is None).

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        name: A metric name or None.
        positive_class: Binary only: the class that PR AUC and F1 score as positive
            (default: the second class in sorted order).

    Returns:
        The metric.

    Raises:
        InvalidInput: The metric does not exist for this task.
    """
    chosen = name or DEFAULT_METRICS[task]
    available = METRICS[task]
    if chosen not in available:
        raise InvalidInput(
            f"Metric {chosen!r} is not available for {task} problems; "
            f"use one of {', '.join(sorted(available))}.",
            details={"parameter": "metric", "allowed": sorted(available)},
        )
    if task == "binary" and positive_class is not None:
        return _binary(positive_class)[chosen]
    return available[chosen]
