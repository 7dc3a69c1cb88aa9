"""How columns move together: Pearson/Spearman correlations, Cramér's V, missingness map."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

__all__ = ["cramers_v_matrix", "missing_matrix", "numeric_correlations"]

_MISSING_CHUNKS = 50


def numeric_correlations(sample: pl.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Pearson and Spearman correlation matrices (pairwise complete observations).

    Spearman is Pearson on ranks; each column is ranked once over its present values.

    Args:
        sample: Rows to use (booleans are read as 0/1).
        columns: Numeric columns, already capped by the caller.

    Returns:
        ``{"columns": [...], "pearson": [[...]], "spearman": [[...]]}``; None where a
        coefficient is undefined (a constant column, too few shared rows).
    """
    if len(columns) < 2:
        return {"columns": [], "pearson": [], "spearman": []}
    values = sample.select(pl.col(name).cast(pl.Float64) for name in columns)
    ranks = values.select(pl.col(name).rank("average") for name in columns)
    return {
        "columns": columns,
        "pearson": _pairwise(values, columns),
        "spearman": _pairwise(ranks, columns),
    }


def _pairwise(frame: pl.DataFrame, columns: list[str]) -> list[list[float | None]]:
    pairs = [(i, j) for i in range(len(columns)) for j in range(i + 1, len(columns))]
    found = frame.select(pl.corr(columns[i], columns[j]).alias(f"{i}_{j}") for i, j in pairs).row(0)
    matrix: list[list[float | None]] = [
        [1.0 if i == j else None for j in range(len(columns))] for i in range(len(columns))
    ]
    for (i, j), value in zip(pairs, found, strict=True):
        number = None if value is None or not math.isfinite(value) else round(float(value), 4)
        matrix[i][j] = matrix[j][i] = number
    return matrix


def cramers_v_matrix(sample: pl.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Cramér's V between categorical columns (missing counts as its own level).

    Args:
        sample: Rows to use.
        columns: Categorical columns with few levels, already capped by the caller.

    Returns:
        ``{"columns": [...], "matrix": [[...]]}`` with values in [0, 1].
    """
    if len(columns) < 2:
        return {"columns": [], "matrix": []}
    codes = sample.select(
        pl.col(name).cast(pl.String).fill_null("\x00missing").rank("dense").cast(pl.Int64) - 1
        for name in columns
    )
    arrays = [codes.get_column(name).to_numpy() for name in columns]
    matrix: list[list[float | None]] = [[1.0] * len(columns) for _ in columns]
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            value = _cramers_v(arrays[i], arrays[j])
            matrix[i][j] = matrix[j][i] = value
    return {"columns": columns, "matrix": matrix}


def _cramers_v(left: np.ndarray[Any, Any], right: np.ndarray[Any, Any]) -> float | None:
    rows, cols = int(left.max()) + 1, int(right.max()) + 1
    if rows < 2 or cols < 2:
        return None
    table = np.bincount(left * cols + right, minlength=rows * cols).reshape(rows, cols)
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return round(math.sqrt(chi2 / (total * (min(rows, cols) - 1))), 4)


def missing_matrix(df: pl.DataFrame, *, chunks: int = _MISSING_CHUNKS) -> dict[str, Any]:
    """Share of missing values per column in consecutive row chunks, for a heatmap.

    Args:
        df: The whole table.
        chunks: How many row chunks (fewer when the table is short).

    Returns:
        ``{"columns": [...], "chunk_rows": k, "shares": [[share per column] per chunk]}``.
    """
    chunk_rows = max(1, math.ceil(df.height / chunks))
    nulls = df.null_count().row(0, named=True)
    gappy = [name for name in df.columns if nulls[name]]
    if not gappy:
        count = math.ceil(df.height / chunk_rows)
        return {
            "columns": df.columns,
            "chunk_rows": chunk_rows,
            "shares": [[0.0] * df.width] * count,
        }
    shares = (
        df.select(pl.col(gappy).is_null().cast(pl.Float64))
        .with_row_index("__chunk__")
        .group_by(pl.col("__chunk__") // chunk_rows, maintain_order=True)
        .agg(pl.all().mean())
        .drop("__chunk__")
    )
    by_name = [dict(zip(gappy, row, strict=True)) for row in shares.iter_rows()]
    rows = [[round(row.get(name, 0.0), 4) for name in df.columns] for row in by_name]
    return {"columns": df.columns, "chunk_rows": chunk_rows, "shares": rows}
