"""Per-column summary statistics and JSON-safe cell values for previews and diffs."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import polars as pl

from narrate.core.recipes.dtypes import is_numeric, is_stringlike, is_temporal

__all__ = ["STAT_NAMES", "column_stats", "json_rows", "json_value"]

STAT_NAMES = ("missing", "mean", "std", "min", "max", "distinct")


def json_value(value: Any) -> Any:
    """Return ``value`` as something ``json.dumps`` accepts (NaN and infinity → ``None``)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return str(value)


def json_rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of ``df`` as JSON-safe dicts."""
    return [{k: json_value(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


def _exprs(column: str, dtype: pl.DataType) -> list[pl.Expr]:
    col = pl.col(column)
    exprs = [
        col.null_count().alias(f"{column}\x00missing"),
        col.n_unique().alias(f"{column}\x00distinct"),
    ]
    if is_numeric(dtype) or isinstance(dtype, pl.Boolean):
        x = col.cast(pl.Float64)
        exprs += [x.mean().alias(f"{column}\x00mean"), x.std().alias(f"{column}\x00std")]
    if is_numeric(dtype) or is_temporal(dtype) or is_stringlike(dtype):
        ordered = col.cast(pl.String) if isinstance(dtype, pl.Categorical | pl.Enum) else col
        exprs += [ordered.min().alias(f"{column}\x00min"), ordered.max().alias(f"{column}\x00max")]
    return exprs


def column_stats(df: pl.DataFrame, columns: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Summarise columns: missing count, mean, std, min, max and distinct values.

    Args:
        df: The frame.
        columns: Columns to summarise; all when ``None``.

    Returns:
        ``{column: {"dtype", "missing", "mean", "std", "min", "max", "distinct"}}`` with
        JSON-safe values (``None`` where a statistic does not apply).
    """
    names = df.columns if columns is None else columns
    exprs = [e for c in names for e in _exprs(c, df.schema[c])]
    row = df.select(exprs).row(0, named=True) if exprs else {}
    stats: dict[str, dict[str, Any]] = {}
    for column in names:
        entry: dict[str, Any] = {"dtype": str(df.schema[column])}
        for stat in STAT_NAMES:
            entry[stat] = json_value(row.get(f"{column}\x00{stat}"))
        stats[column] = entry
    return stats
