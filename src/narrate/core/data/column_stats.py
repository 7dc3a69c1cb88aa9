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


def _is_numeric(df: pl.DataFrame, name: str, kind: ColumnKind) -> bool:
    dtype = df.schema[name]
    return kind in _NUMERIC_KINDS | {ColumnKind.IDENTIFIER} and dtype.is_numeric()


def _finite(name: str) -> pl.Expr:
    """The column as Float64 with NaN and infinities read as missing."""
    number = pl.col(name).cast(pl.Float64)
    return pl.when(number.is_finite()).then(number)


def _base_exprs(df: pl.DataFrame, name: str) -> list[pl.Expr]:
    column, dtype = pl.col(name), df.schema[name]
    exprs = [column.null_count().alias("missing"), column.n_unique().alias("distinct_all")]
    if dtype.is_numeric():
        number = _finite(name)
        exprs += [
            number.count().alias("finite"),
            number.min().alias("min"),
            number.max().alias("max"),
            number.mean().alias("mean"),
            number.std().alias("std"),
            number.skew().alias("skew"),
            (number == 0).sum().alias("zeros"),
        ]
    elif dtype == pl.String:
        length = column.str.len_chars()
        exprs += [length.min().alias("len_min"), length.mean().alias("len_mean")]
        exprs += [length.max().alias("len_max")]
    elif dtype.is_temporal():
        exprs += [column.min().alias("min"), column.max().alias("max")]
    elif dtype == pl.Boolean:
        exprs += [column.mean().alias("true_share")]
    return exprs


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
    base = df.select(pl.struct(_base_exprs(df, name)).alias(name) for name in df.columns).row(
        0, named=True
    )
    profiles = {name: _start_profile(df, name, kinds[name], base[name]) for name in df.columns}
    numeric = [name for name in df.columns if _is_numeric(df, name, kinds[name])]
    _add_distributions(df, numeric, profiles)
    temporal = [name for name in df.columns if kinds[name] in _TEMPORAL_KINDS]
    _add_temporal_histograms(df, temporal, profiles)
    _add_top_values(df, sample, profiles)
    _add_numeric_text(df, kinds, profiles)
    return profiles


def _start_profile(
    df: pl.DataFrame, name: str, kind: ColumnKind, stats: dict[str, Any]
) -> dict[str, Any]:
    rows = df.height
    missing = int(stats.pop("missing"))
    distinct = int(stats.pop("distinct_all")) - (1 if missing else 0)
    present = rows - missing
    profile: dict[str, Any] = {
        "name": name,
        "kind": str(kind),
        "dtype": str(df.schema[name]),
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
    df: pl.DataFrame, names: list[str], profiles: dict[str, dict[str, Any]]
) -> None:
    """Quantiles (one sort per column), then histogram and IQR outliers in one more pass."""
    if not names:
        return
    positions = {
        name: [round((_finite_count(profiles[name]) - 1) * q) for q in QUANTILES]
        for name in names
        if _finite_count(profiles[name])
    }
    found = df.select(
        _finite(name).sort(nulls_last=True).gather(index).implode().alias(name)
        for name, index in positions.items()
    )
    exprs: list[pl.Expr] = []
    for name in positions:
        values = found.get_column(name)[0].to_list()
        profile = profiles[name]
        profile["quantiles"] = {
            str(round(q * 100)): v for q, v in zip(QUANTILES, values, strict=True)
        }
        low, high = _iqr_bounds(values[1], values[3])
        profile["outlier_bounds"] = [low, high]
        edges = _edges(profile["min"], profile["max"], df.schema[name].is_integer())
        profile["histogram"] = {"edges": edges, "counts": []}
        number = _finite(name)
        exprs.append(((number < low) | (number > high)).sum().alias(f"{name}\x00outliers"))
        exprs.append(number.hist(bins=edges).implode().alias(f"{name}\x00hist"))
    counts = df.select(exprs).row(0, named=True)
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
    df: pl.DataFrame, names: list[str], profiles: dict[str, dict[str, Any]]
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
        as_dates = pl.Series(edge).cast(pl.Int64).cast(df.schema[name])
        profiles[name]["histogram"] = {
            "edges": [json_value(value) for value in as_dates.to_list()],
            "counts": [int(c) for c in counts.get_column(name)[0].to_list()],
        }


def _add_top_values(
    df: pl.DataFrame, sample: pl.DataFrame, profiles: dict[str, dict[str, Any]]
) -> None:
    """Top values counted on the whole table, or on the sample for very varied columns."""
    full = [n for n in df.columns if profiles[n]["distinct"] <= _FULL_TOP_MAX_DISTINCT]
    sampled = [n for n in df.columns if n not in full]
    for frame, names, is_sampled in ((df, full, False), (sample, sampled, True)):
        if not names:
            continue
        tops = frame.select(
            pl.col(n).drop_nulls().value_counts(sort=True, name=_COUNT).head(_TOP).implode()
            for n in names
        )
        for name in names:
            present = max(1, frame.get_column(name).count())
            profiles[name]["top_values"] = [
                {
                    "value": json_value(item[name]),
                    "count": item[_COUNT],
                    "share": round(item[_COUNT] / present, 6),
                }
                for item in tops.get_column(name)[0].to_list()
            ]
            profiles[name]["top_values_sampled"] = is_sampled and frame.height < df.height


def _add_numeric_text(
    df: pl.DataFrame, kinds: dict[str, Any], profiles: dict[str, dict[str, Any]]
) -> None:
    """For text columns that are mostly numbers: how many values are not, and examples."""
    for name, dtype in df.schema.items():
        if dtype != pl.String or kinds[name] in _TEMPORAL_KINDS:
            continue
        probe = df.get_column(name).drop_nulls().head(_NUMERIC_PROBE).to_frame()
        parsed = probe.select(cleaned(pl.col(name)).cast(pl.Float64, strict=False).count())
        if probe.height == 0 or parsed.item() < _NUMERIC_TEXT_MIN_SHARE * probe.height:
            continue
        text = cleaned(pl.col(name))
        is_number = text.cast(pl.Float64, strict=False).is_not_null()
        is_other = text.is_not_null() & (text != "") & ~is_number
        stats = df.select(
            is_number.sum().alias("numbers"),
            (text == "").sum().alias("blanks"),
            is_other.sum().alias("others"),
            pl.col(name).filter(is_other).unique().head(5).implode().alias("ex"),
        ).row(0, named=True)
        present = profiles[name]["count"]
        profiles[name]["numeric_text"] = {
            "numeric_share": round(stats["numbers"] / present, 6) if present else 0.0,
            "numeric_count": int(stats["numbers"]),
            "blank_count": int(stats["blanks"]),
            "non_numeric_count": int(stats["others"]),
            "examples": sorted(stats["ex"])[:5],
        }
