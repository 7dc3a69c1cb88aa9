"""Profile a table: per-column statistics, correlations, missingness and target hints.

Everything returned is plain JSON (str/int/float/bool/None/list/dict).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from narrate.core.data.associations import cramers_v_matrix, missing_matrix, numeric_correlations
from narrate.core.data.column_stats import column_profiles, json_value
from narrate.core.data.targets import potential_targets, target_summary
from narrate.core.data.types import ColumnKind
from narrate.errors import InvalidInput

__all__ = ["DEFAULT_SAMPLE_SIZE", "profile_frame"]

DEFAULT_SAMPLE_SIZE = 200_000
_SEED = 42
_MAX_NUMERIC = 30
_MAX_CATEGORICAL = 20
_MAX_LEVELS = 100
_CORRELATED_KINDS = {ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.BOOLEAN}


def profile_frame(
    df: pl.DataFrame,
    kinds: dict[str, ColumnKind],
    *,
    target: str | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> dict[str, Any]:
    """Profile a table for the Clean stage.

    Correlations, Cramér's V and the top values of very varied columns use a fixed-seed
    sample of at most ``sample_size`` rows; ``table.sampled_rows`` says how many (None
    when the whole table was used).

    Args:
        df: The table, after ``infer_types``.
        kinds: Column name -> kind, from ``infer_types``.
        target: The column the user wants to predict, if chosen.
        sample_size: The largest sample for the costly statistics.

    Returns:
        ``{"table", "columns", "correlations", "missing_matrix", "potential_targets",
        "target"}`` - see docs of each part in the module.

    Raises:
        InvalidInput: ``target`` is not a column.
    """
    if target is not None and target not in df.columns:
        raise InvalidInput(
            f"There is no column named '{target}' to use as the target.",
            hint="Pick one of: " + ", ".join(df.columns[:30]),
            details={"column": target},
        )
    is_sampled = df.height > sample_size
    sample = df.sample(sample_size, seed=_SEED) if is_sampled else df
    columns = column_profiles(df, dict(kinds), sample)
    return {
        "table": {
            "rows": df.height,
            "columns": df.width,
            "duplicate_rows": _duplicate_rows(df, columns),
            "memory_bytes": int(df.estimated_size()),
            "sampled_rows": sample.height if is_sampled else None,
        },
        "columns": columns,
        "correlations": _correlations(sample, kinds, columns, target),
        "missing_matrix": missing_matrix(df),
        "potential_targets": potential_targets(columns),
        "target": _target(df, columns, target),
    }


def _duplicate_rows(df: pl.DataFrame, columns: dict[str, dict[str, Any]]) -> int:
    """Rows that repeat an earlier row; free when some column is entirely distinct."""
    if any(p["missing"] == 0 and p["distinct"] == df.height for p in columns.values()):
        return 0
    return df.height - df.n_unique()


def _correlations(
    sample: pl.DataFrame,
    kinds: dict[str, ColumnKind],
    columns: dict[str, dict[str, Any]],
    target: str | None,
) -> dict[str, Any]:
    schema = dict(sample.schema)  # once: each ``.schema`` call walks every column
    numeric = [
        name
        for name, dtype in schema.items()
        if kinds[name] in _CORRELATED_KINDS
        and dtype in _NUMERIC_OR_BOOL
        and columns[name]["distinct"] > 1
    ]
    categorical = [
        name
        for name in schema
        if kinds[name] in {ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN}
        and 1 < columns[name]["distinct"] <= _MAX_LEVELS
    ]
    return {
        **numeric_correlations(sample, _capped(numeric, _MAX_NUMERIC, target)),
        "cramers_v": cramers_v_matrix(sample, _capped(categorical, _MAX_CATEGORICAL, target)),
    }


_NUMERIC_OR_BOOL = {
    pl.Boolean,
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Float32,
    pl.Float64,
}


def _capped(names: list[str], limit: int, target: str | None) -> list[str]:
    """Keep at most ``limit`` names, always keeping the target first when present."""
    if target in names:
        names = [target, *[name for name in names if name != target]]
    return names[:limit]


def _target(
    df: pl.DataFrame, columns: dict[str, dict[str, Any]], target: str | None
) -> dict[str, Any] | None:
    if target is None:
        return None
    counts = (
        df.get_column(target).drop_nulls().value_counts(name="\x00count").head(1_000).iter_rows()
        if columns[target]["distinct"] <= 1_000
        else iter(())
    )
    class_counts = [{"value": json_value(value), "count": int(count)} for value, count in counts]
    return target_summary(columns[target], class_counts)
