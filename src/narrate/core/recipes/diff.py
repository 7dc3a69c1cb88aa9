"""Compare two frames: schema, row counts, column statistics and changed rows."""

from __future__ import annotations

from typing import Any

import polars as pl

from narrate.core.recipes.stats import column_stats, json_value
from narrate.errors import InvalidInput

__all__ = ["diff_frames"]

_B = "__narrate_after__"
_NUMERIC_STATS = ("missing", "mean", "std", "min", "max", "distinct")


def diff_frames(
    a: pl.DataFrame, b: pl.DataFrame, *, key: str | None = None, sample_rows: int = 20
) -> dict[str, Any]:
    """Describe how ``b`` differs from ``a``.

    Args:
        a: The frame before.
        b: The frame after.
        key: Column identifying rows in both; rows are matched by position without it.
        sample_rows: Most changed rows to return.

    Returns:
        JSON-serialisable dict with ``schema`` (added/removed/type_changed), ``rows``
        (counts), ``stats`` (per shared column: before, after and numeric deltas) and
        ``changed_rows`` (count and a sample with before/after values).

    Raises:
        InvalidInput: ``key`` is not a column of both frames.
    """
    if key is not None and (key not in a.columns or key not in b.columns):
        raise InvalidInput(
            f"Key column '{key}' must be in both frames.",
            code="unknown_column",
            details={"column": key, "parameter": "key"},
        )
    common = [c for c in a.columns if c in b.columns]
    before, after = column_stats(a, common), column_stats(b, common)
    return {
        "schema": {
            "added": [c for c in b.columns if c not in a.columns],
            "removed": [c for c in a.columns if c not in b.columns],
            "type_changed": [
                {"column": c, "before": str(a.schema[c]), "after": str(b.schema[c])}
                for c in common
                if a.schema[c] != b.schema[c]
            ],
        },
        "rows": {"before": a.height, "after": b.height, "delta": b.height - a.height},
        "stats": {c: _stat_delta(before[c], after[c]) for c in common},
        "changed_rows": _changed_rows(a, b, [c for c in common if c != key], key, sample_rows),
    }


def _stat_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    delta = {}
    for stat in _NUMERIC_STATS:
        old, new = before[stat], after[stat]
        is_number = isinstance(old, int | float) and isinstance(new, int | float)
        delta[stat] = json_value(new - old) if is_number else None
    return {"before": before, "after": after, "delta": delta}


def _aligned(a: pl.DataFrame, b: pl.DataFrame, columns: list[str], key: str | None) -> pl.DataFrame:
    right = b.select([*([key] if key else []), *columns]).rename({c: c + _B for c in columns})
    if key is not None:
        left = a.select([key, *columns])
        return left.join(right, on=key, how="inner", maintain_order="left", nulls_equal=False)
    n = min(a.height, b.height)
    index = pl.DataFrame({"row": pl.arange(0, n, eager=True)})
    return pl.concat([index, a.head(n).select(columns), right.head(n)], how="horizontal")


def _differs(frame: pl.DataFrame, column: str) -> pl.Expr:
    old, new = pl.col(column), pl.col(column + _B)
    left, right = frame.schema[column], frame.schema[column + _B]
    if left.is_numeric() and right.is_numeric():
        old, new = old.cast(pl.Float64), new.cast(pl.Float64)
    elif left != right:
        old, new = old.cast(pl.String), new.cast(pl.String)
    return old.ne_missing(new).fill_null(False)


def _changed_rows(
    a: pl.DataFrame, b: pl.DataFrame, columns: list[str], key: str | None, limit: int
) -> dict[str, Any]:
    aligned = _aligned(a, b, columns, key)
    flags = aligned.select(
        [_differs(aligned, c).alias(c) for c in columns] if columns else [pl.lit(False)]
    )
    any_changed = flags.select(pl.any_horizontal(pl.all())).to_series()
    changed = aligned.filter(any_changed).head(limit)
    changed_flags = flags.filter(any_changed).head(limit)
    ident = key or "row"
    sample = []
    for row, marks in zip(
        changed.iter_rows(named=True), changed_flags.iter_rows(named=True), strict=True
    ):
        changes = {
            c: {"before": json_value(row[c]), "after": json_value(row[c + _B])}
            for c in columns
            if marks[c]
        }
        sample.append({ident: json_value(row[ident]), "changes": changes})
    return {
        "matched_by": "key" if key else "position",
        "compared": aligned.height,
        "count": int(any_changed.sum()),
        "sample": sample,
    }
