"""Slice analysis: the segments of the data where the model does worst."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["worst_slices"]


def _segments(values: pd.Series) -> pd.Series:
    """Label each row with its segment: category value or numeric quantile bin."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if values.nunique() <= 5:
            return values.astype(str)
        return pd.qcut(values, q=5, duplicates="drop").astype(str).where(values.notna(), "missing")
    return values.astype(object).where(values.notna(), "missing").astype(str)


def worst_slices(
    X: pd.DataFrame,
    loss: np.ndarray,
    *,
    loss_name: str,
    min_support: int | None = None,
    top: int = 10,
) -> list[dict[str, Any]]:
    """Find the segments with the highest mean loss.

    Args:
        X: Feature rows (raw columns).
        loss: Per-row loss (1 - correct for classification, absolute error for regression).
        loss_name: Name of the loss (``error rate``, ``MAE``).
        min_support: Smallest segment size considered (default: max(20, 2% of rows)).
        top: How many segments to return.

    Returns:
        Segments, worst first, each with column, segment, n, loss and gap to overall.
    """
    support = min_support if min_support is not None else max(20, int(0.02 * len(X)))
    overall = float(np.mean(loss))
    found: list[dict[str, Any]] = []
    for column in X.columns:
        if pd.api.types.is_datetime64_any_dtype(X[column]):
            continue
        labels = _segments(X[column].reset_index(drop=True))
        frame = pd.DataFrame({"segment": labels, "loss": loss})
        grouped = frame.groupby("segment", observed=True)["loss"].agg(["mean", "count"])
        if len(grouped) > 50:
            continue
        for segment, row in grouped.iterrows():
            if row["count"] >= support and row["mean"] > overall:
                found.append(
                    {
                        "column": str(column),
                        "segment": str(segment),
                        "n": int(row["count"]),
                        "loss": round(float(row["mean"]), 6),
                        "loss_name": loss_name,
                        "overall": round(overall, 6),
                        "gap": round(float(row["mean"]) - overall, 6),
                    }
                )
    found.sort(key=lambda s: (-s["gap"], s["column"], s["segment"]))
    return found[:top]
