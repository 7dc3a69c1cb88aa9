"""Per-column statistics for the profile, computed in a few parallel polars passes."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from narrate.core.data.parsing import cleaned
from narrate.core.data.types import ColumnKind

__all__ = ["QUANTILES", "column_profiles", "json_value"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_BINS = 20
_TOP = 10
_COUNT = "\x00count"  # a name no user column has
_FULL_TOP_MAX_DISTINCT = 10_000
_NUMERIC_PROBE = 5_000
_NUMERIC_TEXT_MIN_SHARE = 0.5
_NUMERIC_KINDS = {ColumnKind.INTEGER, ColumnKind.FLOAT}
_TEMPORAL_KINDS = {ColumnKind.DATE, ColumnKind.DATETIME}


def json_value(value: Any) -> Any:
    """Turn a polars/Python scalar into a JSON-safe value (NaN/inf -> None, dates -> ISO).

    Args:
        value: Any scalar.

    Returns:
        A str, int, float, bool or None.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _is_numeric(dtype: pl.DataType, kind: ColumnKind) -> bool:
    return kind in _NUMERIC_KINDS | {ColumnKind.IDENTIFIER} and dtype.is_numeric()


def _finite_frame(df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The numeric columns as Float64 with NaN and infinities read as missing."""
    if not names:
        return pl.DataFrame()
    number = pl.col(names).cast(pl.Float64)
    return df.select(pl.when(number.is_finite()).then(number))


def _stat_rows(frame: pl.DataFrame, exprs: dict[str, pl.Expr]) -> dict[str, dict[str, Any]]:
    """Evaluate each multi-column expression in one pass; column -> {stat: value}.

    A multi-column expression (``pl.col(names).min()``) is built once and expanded by
    polars; a list of one expression per column costs far more per column, which is
    what dominates on files with thousands of columns.
    """
    found: dict[str, dict[str, Any]] = {name: {} for name in frame.columns}
    for stat, expr in exprs.items():
        for name, value in frame.select(expr).row(0, named=True).items():
            found[name][stat] = value
    return found


def _base_stats(
    df: pl.DataFrame, schema: dict[str, pl.DataType], finite: pl.DataFrame
) -> dict[str, dict[str, Any]]:
    stats = _stat_rows(df, {"missing": pl.all().null_count(), "distinct_all": pl.all().n_unique()})
    every = pl.all()
    parts: list[tuple[pl.DataFrame, dict[str, pl.Expr]]] = [
        (
            finite,
            {
                "finite": every.count(),
                "min": every.min(),
                "max": every.max(),
                "mean": every.mean(),
                "std": every.std(),
                "skew": every.skew(),
                "zeros": (every == 0).sum(),
            },
        )
    ]
    strings = [name for name, dtype in schema.items() if dtype == pl.String]
    if strings:
        lengths = df.select(pl.col(strings).str.len_chars())
        parts.append(
            (lengths, {"len_min": every.min(), "len_mean": every.mean(), "len_max": every.max()})
        )
    temporal = [name for name, dtype in schema.items() if dtype.is_temporal()]
    if temporal:
        parts.append((df.select(temporal), {"min": every.min(), "max": every.max()}))
    booleans = [name for name, dtype in schema.items() if dtype == pl.Boolean]
    if booleans:
        parts.append((df.select(booleans), {"true_share": every.mean()}))
    for frame, exprs in parts:
        if frame.width:
            for name, values in _stat_rows(frame, exprs).items():
                stats[name].update(values)
    return stats


def column_profiles(
    df: pl.DataFrame, kinds: dict[str, Any], sample: pl.DataFrame
) -> dict[str, dict[str, Any]]:
    """Profile every column.

    Args:
        df: The whole table, types already inferred.
        kinds: Column name -> ``ColumnKind``.
        sample: A fixed-seed sample of ``df`` for the costly parts of huge columns.

    Returns:
        Column name -> JSON-safe column profile.
    """
    # ``df.schema`` and ``df.columns`` rebuild a list of every column on each call, so
    # they are read once here: a lookup per column made profiling quadratic in the width.
    schema = dict(df.schema)
    finite = _finite_frame(df, [name for name, dtype in schema.items() if dtype.is_numeric()])
    base = _base_stats(df, schema, finite)
    profiles = {
        name: _start_profile(df.height, name, dtype, kinds[name], base[name])
        for name, dtype in schema.items()
    }
    numeric = [name for name, dtype in schema.items() if _is_numeric(dtype, kinds[name])]
    _add_distributions(finite, schema, numeric, profiles)
    temporal = [name for name in schema if kinds[name] in _TEMPORAL_KINDS]
    _add_temporal_histograms(df, schema, temporal, profiles)
    _add_top_values(df, sample, profiles)
    _add_numeric_text(df, schema, kinds, profiles)
    return profiles


def _start_profile(
    rows: int, name: str, dtype: pl.DataType, kind: ColumnKind, stats: dict[str, Any]
) -> dict[str, Any]:
    missing = int(stats.pop("missing"))
    distinct = int(stats.pop("distinct_all")) - (1 if missing else 0)
    present = rows - missing
    profile: dict[str, Any] = {
        "name": name,
        "kind": str(kind),
        "dtype": str(dtype),
        "count": present,
        "missing": missing,
        "missing_share": round(missing / rows, 6) if rows else 0.0,
        "distinct": distinct,
        "distinct_share": round(distinct / present, 6) if present else 0.0,
    }
    if "finite" in stats:
        profile["non_finite"] = present - int(stats.pop("finite"))
    if "len_min" in stats:
        profile["length"] = {
            "min": stats.pop("len_min"),
            "mean": stats.pop("len_mean"),
            "max": stats.pop("len_max"),
        }
    profile.update({key: json_value(value) for key, value in stats.items()})
    if profile.get("skew") is not None:
        profile["skew"] = round(profile["skew"], 4)
    return profile


def _add_distributions(
    finite: pl.DataFrame,
    schema: dict[str, pl.DataType],
    names: list[str],
    profiles: dict[str, dict[str, Any]],
) -> None:
    """Quantiles (one sort per column), then histogram and IQR outliers in one more pass."""
    if not names:
        return
    positions = {
        name: [round((_finite_count(profiles[name]) - 1) * q) for q in QUANTILES]
        for name in names
        if _finite_count(profiles[name])
    }
    if not positions:  # every numeric column is empty, or only inf/NaN
        return
    # Columns with the same number of finite values share quantile positions: one
    # multi-column sort-and-gather per group instead of one expression per column.
    groups: dict[tuple[int, ...], list[str]] = {}
    for name, index in positions.items():
        groups.setdefault(tuple(index), []).append(name)
    quantiles: dict[str, list[Any]] = {}
    for shared, group in groups.items():
        picked = finite.select(pl.col(group).sort(nulls_last=True).gather(list(shared)).implode())
        quantiles.update(picked.row(0, named=True))
    exprs: list[pl.Expr] = []
    for name in positions:
        values = quantiles[name]
        profile = profiles[name]
        profile["quantiles"] = {
            str(round(q * 100)): v for q, v in zip(QUANTILES, values, strict=True)
        }
        low, high = _iqr_bounds(values[1], values[3])
        profile["outlier_bounds"] = [low, high]
        edges = _edges(profile["min"], profile["max"], schema[name].is_integer())
        profile["histogram"] = {"edges": edges, "counts": []}
        number = pl.col(name)
        exprs.append(((number < low) | (number > high)).sum().alias(f"{name}\x00outliers"))
        exprs.append(number.hist(bins=edges).implode().alias(f"{name}\x00hist"))
    counts = finite.select(exprs).row(0, named=True)
    for name in positions:
        profiles[name]["outliers"] = int(counts[f"{name}\x00outliers"])
        profiles[name]["histogram"]["counts"] = [int(c) for c in counts[f"{name}\x00hist"]]


def _finite_count(profile: dict[str, Any]) -> int:
    return int(profile["count"]) - int(profile.get("non_finite", 0))


def _iqr_bounds(q1: float, q3: float) -> tuple[float, float]:
    spread = q3 - q1
    return q1 - 1.5 * spread, q3 + 1.5 * spread


def _edges(low: float, high: float, is_integer: bool) -> list[float]:
    if low == high:
        return [low - 0.5, high + 0.5]
    bins = min(_BINS, int(high - low) + 1) if is_integer else _BINS
    width = (high - low) / bins
    # Twelve significant digits keep the JSON short; rounding to a fixed number of decimals
    # would merge the edges of a column whose values are all tiny (e.g. 1e-123).
    inner = [float(f"{low + width * step:.12g}") for step in range(bins)]
    edges = sorted({*inner, high})
    return edges if len(edges) > 1 else [low - 0.5, high + 0.5]


def _add_temporal_histograms(
    df: pl.DataFrame,
    schema: dict[str, pl.DataType],
    names: list[str],
    profiles: dict[str, dict[str, Any]],
) -> None:
    if not names:
        return
    physical = df.select(pl.col(name).to_physical().cast(pl.Float64) for name in names)
    bounds = physical.select(
        pl.struct(pl.col(name).min().alias("lo"), pl.col(name).max().alias("hi")).alias(name)
        for name in names
    ).row(0, named=True)
    edges = {
        name: _edges(bounds[name]["lo"], bounds[name]["hi"], is_integer=False)
        for name in names
        if bounds[name]["lo"] is not None
    }
    counts = physical.select(
        pl.col(name).hist(bins=edge).implode().alias(name) for name, edge in edges.items()
    )
    for name, edge in edges.items():
        as_dates = pl.Series(edge).cast(pl.Int64).cast(schema[name])
        profiles[name]["histogram"] = {
            "edges": [json_value(value) for value in as_dates.to_list()],
            "counts": [int(c) for c in counts.get_column(name)[0].to_list()],
        }


def _add_top_values(
    df: pl.DataFrame, sample: pl.DataFrame, profiles: dict[str, dict[str, Any]]
) -> None:
    """Top values counted on the whole table, or on the sample for very varied columns."""
    full = [n for n in profiles if profiles[n]["distinct"] <= _FULL_TOP_MAX_DISTINCT]
    sampled = [n for n in profiles if profiles[n]["distinct"] > _FULL_TOP_MAX_DISTINCT]
    for frame, names, is_sampled in ((df, full, False), (sample, sampled, True)):
        if not names:
            continue
        columns = pl.col(names)
        tops = frame.select(
            columns.drop_nulls().value_counts(sort=True, name=_COUNT).head(_TOP).implode()
        ).row(0, named=True)
        counts = frame.select(columns.count()).row(0, named=True)
        for name in names:
            present = max(1, counts[name])
            profiles[name]["top_values"] = [
                {
                    "value": json_value(item[name]),
                    "count": item[_COUNT],
                    "share": round(item[_COUNT] / present, 6),
                }
                for item in tops[name]
            ]
            profiles[name]["top_values_sampled"] = is_sampled and frame.height < df.height


def _add_numeric_text(
    df: pl.DataFrame,
    schema: dict[str, pl.DataType],
    kinds: dict[str, Any],
    profiles: dict[str, dict[str, Any]],
) -> None:
    """For text columns that are mostly numbers: how many values are not, and examples."""
    names = [
        name
        for name, dtype in schema.items()
        if dtype == pl.String and kinds[name] not in _TEMPORAL_KINDS
    ]
    if not names:
        return
    # One pass over a probe of every text column picks the mostly-numeric ones; the full
    # counts then run in one more pass over just those (never one select per column on the
    # wide frame, which costs a walk over all columns each time).
    probe = pl.col(names).drop_nulls().head(_NUMERIC_PROBE)
    present = df.select(probe.count()).row(0, named=True)
    parsed = df.select(cleaned(probe).cast(pl.Float64, strict=False).count()).row(0, named=True)
    mostly = [
        name
        for name in names
        if present[name] and parsed[name] >= _NUMERIC_TEXT_MIN_SHARE * present[name]
    ]
    if not mostly:
        return
    stats = df.select(_numeric_text_stats(name) for name in mostly).row(0, named=True)
    for name in mostly:
        found, present = stats[name], profiles[name]["count"]
        profiles[name]["numeric_text"] = {
            "numeric_share": round(found["numbers"] / present, 6) if present else 0.0,
            "numeric_count": int(found["numbers"]),
            "blank_count": int(found["blanks"]),
            "non_numeric_count": int(found["others"]),
            "examples": sorted(found["ex"])[:5],
        }


def _numeric_text_stats(name: str) -> pl.Expr:
    text = cleaned(pl.col(name))
    is_number = text.cast(pl.Float64, strict=False).is_not_null()
    is_other = text.is_not_null() & (text != "") & ~is_number
    return pl.struct(
        is_number.sum().alias("numbers"),
        (text == "").sum().alias("blanks"),
        is_other.sum().alias("others"),
        pl.col(name).filter(is_other).unique().head(5).implode().alias("ex"),
    ).alias(name)
