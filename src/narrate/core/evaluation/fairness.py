"""Fairness by sensitive group with fairlearn's MetricFrame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error

__all__ = ["GAP_LIMIT", "fairness_report"]

GAP_LIMIT = 0.1


def _frame_dict(frame: MetricFrame) -> dict[str, dict[str, float]]:
    table = frame.by_group
    return {
        str(metric): {str(group): round(float(value), 6) for group, value in table[metric].items()}
        for metric in table.columns
    }


def fairness_report(
    y: np.ndarray, pred: np.ndarray, sensitive: pd.DataFrame, *, task: str
) -> dict[str, Any]:
    """Compare model behaviour across the groups of each sensitive column.

    Args:
        y: True values (1/0 for binary, labels for multiclass, numbers for regression).
        pred: Predictions in the same form.
        sensitive: One column per sensitive attribute, aligned with ``y``.
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        Per column: metrics by group, differences, and plain-language flags for gaps > 0.1.
    """
    report: dict[str, Any] = {}
    for column in sensitive.columns:
        groups = sensitive[column].astype(object).where(sensitive[column].notna(), "missing")
        groups = groups.astype(str).reset_index(drop=True)
        if task == "binary":
            metrics: dict[str, Any] = {
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            }
        elif task == "multiclass":
            metrics = {"accuracy": accuracy_score}
        else:
            metrics = {"mae": mean_absolute_error}
        frame = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=groups)
        differences = {str(k): round(float(v), 6) for k, v in frame.difference().items()}
        entry: dict[str, Any] = {"by_group": _frame_dict(frame), "differences": differences}
        if task == "binary":
            entry["demographic_parity_difference"] = round(
                float(demographic_parity_difference(y, pred, sensitive_features=groups)), 6
            )
            entry["equalized_odds_difference"] = round(
                float(equalized_odds_difference(y, pred, sensitive_features=groups)), 6
            )
        entry["flags"] = _flags(str(column), entry, task)
        report[str(column)] = entry
    return report


def _flags(column: str, entry: dict[str, Any], task: str) -> list[str]:
    flags = []
    checks = (
        {
            "demographic_parity_difference": "the share of rows predicted positive",
            "equalized_odds_difference": "the true- or false-positive rate",
        }
        if task == "binary"
        else {}
    )
    for key, what in checks.items():
        if entry.get(key, 0.0) > GAP_LIMIT:
            flags.append(
                f"Groups of '{column}' differ by {entry[key]:.2f} in {what}; "
                "check whether this is justified before using the model."
            )
    if task == "multiclass" and entry["differences"].get("accuracy", 0.0) > GAP_LIMIT:
        flags.append(
            f"Accuracy differs by {entry['differences']['accuracy']:.2f} between "
            f"groups of '{column}'."
        )
    if task == "regression":
        maes = entry["by_group"].get("mae", {})
        if maes and min(maes.values()) > 0 and max(maes.values()) / min(maes.values()) > 1.1:
            flags.append(
                f"The average error differs by more than 10% between groups of '{column}'."
            )
    return flags
