"""Partial dependence and ICE curves for one raw input column.

For a sample of rows and a grid of values of one column, every row is scored once per
grid value with that column set to the value and every other column as it is: the
individual conditional expectation (ICE) curve of the row. Partial dependence is their
mean. All ``n_rows x grid`` rows are built as one set of column arrays and scored in one
call of the score function, so the cost is one model pass, not a Python loop per point.

The grid of a numeric column is its sample's quantiles (values seen in the data, without
repeats, so an integer column stays integral); of a categorical column, its most frequent
categories. The sample's distribution of the column comes back with the curves, to be
drawn under them: a curve is only as trustworthy as the data behind each of its points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from narrate.errors import InvalidInput

__all__ = ["Dependence", "dependence", "grid_of"]

#: Bins of the histogram drawn under a numeric column's curves.
HISTOGRAM_BINS = 20

Score = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Dependence:
    """One column's partial dependence.

    Attributes:
        column: The column varied.
        kind: ``numeric`` or ``categorical``.
        grid: The values the column was set to.
        average: The mean output over the sample at each grid value (partial dependence).
        ice: ``{"row", "values"}`` per shown row: its output at each grid value.
        distribution: Numeric: ``{"edges", "counts", "missing"}`` (a histogram);
            categorical: ``{"categories", "counts", "other", "missing"}``.
    """

    column: str
    kind: str
    grid: list[Any]
    average: list[float]
    ice: list[dict[str, Any]]
    distribution: dict[str, Any]


def _missing(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == "numeric":
        return np.asarray(~np.isfinite(values.astype(float)), dtype=bool)
    return np.array([v is None for v in values], dtype=bool)


def grid_of(values: np.ndarray, kind: str, points: int) -> np.ndarray:
    """The values a column is set to.

    Args:
        values: The column in the sample (floats with NaN for missing, or an object array
            of categories with None for missing).
        kind: ``numeric`` or ``categorical``.
        points: The most grid values.

    Returns:
        Numeric: distinct observed quantiles at ``points`` evenly spaced levels, ascending;
        categorical: the ``points`` most frequent categories, most frequent first (ties in
        first-seen order).

    Raises:
        InvalidInput: The column holds no value in the sample (``code="no_values"``).
    """
    present = values[~_missing(values, kind)]
    if present.size == 0:
        raise InvalidInput(
            "The column has no values in the sampled rows, so there is nothing to vary.",
            code="no_values",
            hint="Pick another column.",
        )
    if kind == "numeric":
        levels = np.linspace(0.0, 1.0, points)
        found = np.quantile(present.astype(float), levels, method="inverted_cdf")
        return np.unique(found)
    categories, first, counts = np.unique(
        present.astype(str), return_index=True, return_counts=True
    )
    order = sorted(range(len(categories)), key=lambda i: (-counts[i], first[i]))[:points]
    # Keep the column's own values (e.g. booleans), not their text.
    return np.array([present[first[i]] for i in order], dtype=object)


def _distribution(values: np.ndarray, kind: str, grid: np.ndarray) -> dict[str, Any]:
    missing = _missing(values, kind)
    present = values[~missing]
    if kind == "numeric":
        numbers = present.astype(float)
        bins = min(HISTOGRAM_BINS, max(1, len(np.unique(numbers))))
        counts, edges = np.histogram(numbers, bins=bins)
        return {
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in counts],
            "missing": int(missing.sum()),
        }
    text = present.astype(str)
    seen = [int((text == str(g)).sum()) for g in grid]
    return {
        "categories": [_plain(g) for g in grid],
        "counts": seen,
        "other": int(len(present) - sum(seen)),
        "missing": int(missing.sum()),
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def dependence(
    columns: Mapping[str, np.ndarray],
    column: str,
    kind: str,
    score: Score,
    *,
    grid_points: int = 20,
    ice_rows: int = 20,
    row_ids: list[int] | None = None,
) -> Dependence:
    """Partial dependence and ICE curves of one column, in one scoring call.

    Args:
        columns: The sample: one array per model column, all of one length ``n``.
        column: The column to vary (one of ``columns``).
        kind: ``numeric`` or ``categorical``.
        score: Takes column arrays of ``n x len(grid)`` rows, returns one output per row.
        grid_points: The most grid values (at least 2).
        ice_rows: How many of the sample's rows to return curves for (the first ones).
        row_ids: What to call each sample row in ``ice`` (default its position).

    Returns:
        The grid, the mean curve, the shown rows' curves and the column's distribution.

    Raises:
        InvalidInput: The column holds no value in the sample, or the score function
            returns the wrong number of outputs.
    """
    values = columns[column]
    n = len(values)
    grid = grid_of(values, kind, grid_points)
    g = len(grid)
    tiled = {name: np.repeat(a, g) for name, a in columns.items() if name != column}
    varied = np.tile(grid.astype(float) if kind == "numeric" else grid, n)
    tiled[column] = varied.astype(values.dtype) if kind == "numeric" else varied
    out = np.asarray(score({name: tiled[name] for name in columns}), dtype=float)
    if out.shape != (n * g,):
        raise InvalidInput(
            f"The score function returned {out.shape} outputs for {n * g} rows.",
            code="invalid_input",
        )
    curves = out.reshape(n, g)
    ids = list(range(n)) if row_ids is None else row_ids
    shown = min(ice_rows, n)
    return Dependence(
        column=column,
        kind=kind,
        grid=[float(v) for v in grid] if kind == "numeric" else [_plain(v) for v in grid],
        average=[float(v) for v in curves.mean(axis=0)],
        ice=[{"row": int(ids[i]), "values": curves[i].tolist()} for i in range(shown)],
        distribution=_distribution(values, kind, grid),
    )
