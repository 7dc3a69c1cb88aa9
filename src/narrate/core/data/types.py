"""Column types: parse text columns into real dtypes and say what kind each column is."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import Any

import polars as pl

from narrate.core.data.parsing import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    cleaned,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_float,
    parse_integer,
)
from narrate.errors import InvalidInput

__all__ = [
    "ColumnKind",
    "apply_type_overrides",
    "classify_column",
    "classify_kinds",
    "infer_types",
    "is_id_name",
    "parse_as",
]

_SAMPLE = 5_000
_SEED = 0
_CATEGORICAL_MAX = 50
_BATCH_COLUMNS = 4  # columns parsed together: parallel, yet a small memory peak ...
_BATCH_CELLS = 4_000_000  # ... and more of them when they are short (wide files)
_CATEGORICAL_SHARE = 0.05
_ID_TOKENS = {"id", "uuid", "guid", "key", "pk", "identifier"}
_BOOLEAN_WORD_PAIRS = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"})
_WORD_SPLIT = re.compile(r"[^0-9a-zA-Z]+|(?<=[a-z])(?=[A-Z])")


class ColumnKind(StrEnum):
    """What a column means for analysis, beyond its physical dtype."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    CATEGORICAL = "categorical"
    TEXT = "text"
    IDENTIFIER = "identifier"


def is_id_name(name: str) -> bool:
    """Tell whether a column name says it holds identifiers (``customer_id``, ``UUID``...).

    Args:
        name: A column name.

    Returns:
        True when one of its words is id, uuid, guid, key, pk or identifier.
    """
    return any(token.lower() in _ID_TOKENS for token in _WORD_SPLIT.split(name) if token)


def parse_as(kind: ColumnKind, fmt: str | None = None) -> Callable[[pl.Expr], pl.Expr]:
    """Return the parser that turns cleaned text into ``kind`` (with ``fmt`` for dates).

    Args:
        kind: integer, float, boolean, date or datetime.
        fmt: The date/datetime format.

    Returns:
        A function from a cleaned String expression to a parsed expression.
    """
    parsers: dict[ColumnKind, Callable[[pl.Expr], pl.Expr]] = {
        ColumnKind.INTEGER: parse_integer,
        ColumnKind.FLOAT: parse_float,
        ColumnKind.BOOLEAN: parse_boolean,
        ColumnKind.DATE: lambda expr: parse_date(expr, fmt or DATE_FORMATS[0]),
        ColumnKind.DATETIME: lambda expr: parse_datetime(expr, fmt or DATETIME_FORMATS[0]),
    }
    return parsers[kind]


def infer_types(
    df: pl.DataFrame, *, in_place: bool = False
) -> tuple[pl.DataFrame, dict[str, ColumnKind]]:
    """Parse text columns into the dtype their values support and classify every column.

    A text column is converted only when *every* value parses (after trimming, and with
    written-out missing markers like ``NA`` read as empty), so a column of numbers with a
    few stray words stays text and is flagged by the quality checks instead. Candidate
    parses are picked on a sample, then checked on whole columns, a few columns at a time
    in parallel passes.

    Args:
        df: A frame as read (typically all strings for CSV).
        in_place: Replace each converted column inside ``df`` as soon as it is parsed, so
            its text buffers are freed while the next columns are parsed. Peak memory then
            stays near the size of the text frame instead of text + typed frame. Use it
            when the caller no longer needs the text.

    Returns:
        The converted frame (``df`` itself when ``in_place``) and the kind of each column.
    """
    schema = dict(df.schema)  # once: each ``.schema`` call walks every column
    pending = _candidates(df, [name for name, dtype in schema.items() if dtype == pl.String])
    target = df if in_place else df.clone()
    nulls = df.null_count().row(0, named=True)
    positions = {name: index for index, name in enumerate(schema)}
    names = list(pending)
    step = max(_BATCH_COLUMNS, _BATCH_CELLS // max(1, df.height))
    for start in range(0, len(names), step):
        batch = {name: pending[name] for name in names[start : start + step]}
        # A frame of just the batch's columns: a select on the whole frame costs a walk
        # over all of its columns, which made inference quadratic in the width.
        narrow = pl.DataFrame([target.get_column(name) for name in batch])
        for name, series in _convert_batch(narrow, batch, nulls).items():
            target.replace_column(positions[name], series)
    return target, classify_kinds(target)


def _convert_batch(
    df: pl.DataFrame,
    pending: dict[str, list[tuple[ColumnKind, str | None]]],
    nulls: dict[str, int],
) -> dict[str, pl.Series]:
    """Try each column's candidate parses in turn; keep the first one that loses no value."""
    converted: dict[str, pl.Series] = {}
    cleaned_nulls: dict[str, int] = {}
    # Round 1 parses the raw text (fast); later rounds trim and read missing markers.
    for round_ in range(max((2 * len(found) for found in pending.values()), default=0)):
        is_raw = round_ % 2 == 0
        tries = {
            name: found[round_ // 2]
            for name, found in pending.items()
            if name not in converted and round_ // 2 < len(found)
        }
        if not tries:
            break
        if not is_raw:
            cleaned_nulls.update(_cleaned_nulls(df, [n for n in tries if n not in cleaned_nulls]))
        parsed = df.select(
            _parse_expr(name, kind, fmt, raw=is_raw) for name, (kind, fmt) in tries.items()
        )
        for name, series in zip(tries, parsed.iter_columns(), strict=True):
            expected = nulls[name] if is_raw else cleaned_nulls[name]
            if series.null_count() == expected:
                converted[name] = series
        del parsed
    return converted


def _parse_expr(name: str, kind: ColumnKind, fmt: str | None, *, raw: bool) -> pl.Expr:
    column = pl.col(name)
    if raw and kind in (ColumnKind.INTEGER, ColumnKind.FLOAT):
        return column.cast(pl.Int64 if kind == ColumnKind.INTEGER else pl.Float64, strict=False)
    return parse_as(kind, fmt)(column if raw else cleaned(column)).alias(name)


def _cleaned_nulls(df: pl.DataFrame, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    return df.select(cleaned(pl.col(name)).null_count() for name in names).row(0, named=True)


def _candidates(
    df: pl.DataFrame, names: list[str]
) -> dict[str, list[tuple[ColumnKind, str | None]]]:
    """The parses worth trying on each text column, judged from a sample of rows.

    Every statistic is one multi-column expression over one sample: polars expands it
    cheaply, whereas a list of one expression per column costs a lot per column, which
    dominated on files with thousands of columns.
    """
    if not names:
        return {}
    sample = df.select(names)
    if sample.height > _SAMPLE:
        sample = sample.sample(_SAMPLE, seed=_SEED)
    sample = sample.select(cleaned(pl.col(names)))
    shapes = _shapes(sample)
    shaped = {
        name: shape
        for name, shape in shapes.items()
        if shape["present"] and not shape["zero_led"]  # leading zeros: codes stay text
    }
    words = _boolean_words(sample, [n for n, shape in shaped.items() if shape["lowered"] <= 2])
    groups: dict[tuple[bool, bool, bool], list[str]] = {}
    for name, shape in shaped.items():
        groups.setdefault((shape["numeric"], shape["date"], shape["time"]), []).append(name)
    passing: dict[str, list[tuple[ColumnKind, str | None]]] = {}
    for flags, group in groups.items():
        for key, parse in _parse_checks(*flags).items():
            nulls = sample.select(parse(pl.col(group)).null_count()).row(0, named=True)
            for name in group:
                if nulls[name] == sample.height - shaped[name]["present"]:
                    passing.setdefault(name, []).append(key)
    found: dict[str, list[tuple[ColumnKind, str | None]]] = {}
    for name in shaped:
        tried: list[tuple[ColumnKind, str | None]] = []
        if _is_boolean_words(words.get(name)):
            tried.append((ColumnKind.BOOLEAN, None))
        tried += passing.get(name, [])
        if tried:
            found[name] = tried[:3]
    return found


def _shapes(sample: pl.DataFrame) -> dict[str, dict[str, Any]]:
    every = pl.all()
    exprs = {
        "present": every.count(),
        "zero_led": every.str.contains(r"^[+-]?0\d+$").any(),
        "lowered": every.str.to_lowercase().drop_nulls().n_unique(),
        "numeric": every.str.contains(r"^[+-]?\.?\d").all(),
        "date": every.str.contains(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}").all(),
        "time": every.str.contains(":", literal=True).any(),
    }
    found: dict[str, dict[str, Any]] = {name: {} for name in sample.columns}
    for stat, expr in exprs.items():
        for name, value in sample.select(expr).row(0, named=True).items():
            found[name][stat] = value
    return found


def _boolean_words(sample: pl.DataFrame, names: list[str]) -> dict[str, set[str]]:
    if not names:
        return {}
    found = sample.select(
        pl.col(name).str.to_lowercase().drop_nulls().unique().implode() for name in names
    ).row(0, named=True)
    return {name: set(values) for name, values in found.items()}


def _is_boolean_words(lowered: set[str] | None) -> bool:
    return lowered is not None and any(
        lowered <= pair and (len(lowered) == 2 or len(min(pair)) > 1)
        for pair in _BOOLEAN_WORD_PAIRS
    )


def _parse_checks(
    is_numeric: bool, is_date: bool, has_time: bool
) -> dict[tuple[ColumnKind, str | None], Callable[[pl.Expr], pl.Expr]]:
    checks: dict[tuple[ColumnKind, str | None], Callable[[pl.Expr], pl.Expr]] = {}
    if is_numeric:
        checks[(ColumnKind.INTEGER, None)] = parse_integer
        checks[(ColumnKind.FLOAT, None)] = parse_float
    if is_date:
        formats = DATETIME_FORMATS if has_time else DATE_FORMATS
        kind = ColumnKind.DATETIME if has_time else ColumnKind.DATE
        parse = parse_datetime if has_time else parse_date
        checks.update({(kind, fmt): partial(parse, fmt=fmt) for fmt in formats})
    return checks


def classify_kinds(df: pl.DataFrame) -> dict[str, ColumnKind]:
    """Classify every column of a frame (after type inference).

    Args:
        df: A frame with parsed dtypes.

    Returns:
        The kind of each column.
    """
    stats = df.select(
        pl.struct(
            pl.col(name).drop_nulls().n_unique().alias("distinct"),
            pl.col(name).count().alias("present"),
            *_extra_stats(name, dtype),
        ).alias(name)
        for name, dtype in df.schema.items()
    ).row(0, named=True)
    return {name: classify_column(name, dtype, stats[name]) for name, dtype in df.schema.items()}


def _extra_stats(name: str, dtype: pl.DataType) -> list[pl.Expr]:
    column = pl.col(name)
    if dtype.is_integer():
        return [
            column.min().cast(pl.Float64).alias("low"),
            column.max().cast(pl.Float64).alias("high"),
        ]
    if dtype == pl.String:
        return [
            column.str.len_chars().mean().alias("mean_length"),
            column.str.contains(r"\s").mean().alias("spaced"),
        ]
    return []


def classify_column(
    name: str, dtype: pl.DataType, stats: dict[str, float | int | None]
) -> ColumnKind:
    """Classify one column from its dtype and a few statistics.

    Args:
        name: The column name (names like ``*_id`` hint at identifiers).
        dtype: Its polars dtype.
        stats: ``distinct`` and ``present`` counts; ``low``/``high`` for integers;
            ``mean_length``/``spaced`` (share of values with whitespace) for text.

    Returns:
        The column's kind.
    """
    distinct, present = int(stats["distinct"] or 0), int(stats["present"] or 0)
    unique_share = distinct / present if present else 0.0
    if dtype == pl.Boolean:
        return ColumnKind.BOOLEAN
    if dtype == pl.Date:
        return ColumnKind.DATE
    if isinstance(dtype, pl.Datetime):
        return ColumnKind.DATETIME
    if dtype.is_integer():
        return _classify_integer(name, distinct, present, stats)
    if dtype.is_float() or dtype.is_decimal():
        return ColumnKind.FLOAT
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return ColumnKind.CATEGORICAL
    if dtype != pl.String:
        return ColumnKind.TEXT
    if is_id_name(name) and unique_share >= 0.9:
        return ColumnKind.IDENTIFIER
    if distinct <= _CATEGORICAL_MAX or distinct <= _CATEGORICAL_SHARE * present:
        return ColumnKind.CATEGORICAL
    spaced, mean_length = float(stats.get("spaced") or 0.0), float(stats.get("mean_length") or 0.0)
    if unique_share >= 0.95 and spaced < 0.01 and mean_length <= 40:
        return ColumnKind.IDENTIFIER
    return ColumnKind.TEXT


def _classify_integer(
    name: str, distinct: int, present: int, stats: dict[str, float | int | None]
) -> ColumnKind:
    low, high = stats.get("low"), stats.get("high")
    if distinct == 2 and low == 0 and high == 1:
        return ColumnKind.BOOLEAN
    if present and is_id_name(name) and distinct / present >= 0.95:
        return ColumnKind.IDENTIFIER
    is_dense = low is not None and high is not None and high - low < 10 * present
    if present >= 20 and distinct == present and is_dense:
        return ColumnKind.IDENTIFIER
    return ColumnKind.INTEGER


def apply_type_overrides(
    df: pl.DataFrame, overrides: dict[str, str]
) -> tuple[pl.DataFrame, dict[str, ColumnKind]]:
    """Convert columns to kinds the user chose.

    Args:
        df: A frame (after ``infer_types`` or as read).
        overrides: Column name -> kind name (``integer``, ``float``, ``boolean``, ``date``,
            ``datetime``, ``categorical``, ``text`` or ``identifier``).

    Returns:
        The converted frame, and the kind of every column (the chosen kinds win).

    Raises:
        InvalidInput: A column or kind is unknown, or a value cannot be converted (the
            message names the column, the kind, how many values fail and the first one).
    """
    kinds = {name: _kind_named(name, kind) for name, kind in overrides.items()}
    missing = [name for name in kinds if name not in df.columns]
    if missing:
        raise InvalidInput(
            f"There is no column named {', '.join(repr(n) for n in missing)}.",
            hint="Pick one of: " + ", ".join(df.columns[:30]),
            details={"columns": missing},
        )
    converted = df.with_columns(_convert(df, name, kind) for name, kind in kinds.items())
    result = classify_kinds(converted)
    result.update(kinds)
    return converted, result


def _kind_named(column: str, kind: str) -> ColumnKind:
    try:
        return ColumnKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in ColumnKind)
        raise InvalidInput(
            f"'{kind}' is not a column type; for '{column}' choose one of {allowed}.",
            hint="Use one of the listed types.",
            details={"column": column, "kind": kind, "allowed": [k.value for k in ColumnKind]},
        ) from None


def _convert(df: pl.DataFrame, name: str, kind: ColumnKind) -> pl.Series:
    source = df.get_column(name)
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.TEXT, ColumnKind.IDENTIFIER):
        return source.cast(pl.String)
    text = source.to_frame().select(cleaned(pl.col(name).cast(pl.String))).to_series()
    if kind in (ColumnKind.DATE, ColumnKind.DATETIME) and source.dtype in (pl.Date, pl.Datetime):
        parsed = source.cast(pl.Date if kind == ColumnKind.DATE else pl.Datetime("us"))
    elif kind == ColumnKind.INTEGER and source.dtype.is_float():
        whole = source.to_frame().select(
            pl.when(pl.col(name) == pl.col(name).round()).then(pl.col(name))
        )
        parsed = whole.to_series().cast(pl.Int64, strict=False)
    else:
        fmt = _best_format(text, kind)
        parsed = text.to_frame().select(parse_as(kind, fmt)(pl.col(name))).to_series()
    failed = parsed.is_null() & text.is_not_null()
    count = int(failed.sum())
    if count:
        row = int(failed.arg_true()[0])
        value = source[row]
        raise InvalidInput(
            f"Column '{name}' can't be converted to {kind.value}: {count:,} value(s) don't "
            f"fit, the first is {value!r} in row {row + 1:,}.",
            hint="Fix or clear those values first, or pick another type.",
            details={
                "column": name,
                "kind": kind.value,
                "failed": count,
                "first_value": str(value),
                "row": row + 1,
            },
        )
    return parsed.alias(name)


def _best_format(text: pl.Series, kind: ColumnKind) -> str | None:
    """The date/datetime format that parses most of a sample of ``text``."""
    if kind not in (ColumnKind.DATE, ColumnKind.DATETIME):
        return None
    formats = DATE_FORMATS if kind == ColumnKind.DATE else DATETIME_FORMATS
    sample = text.drop_nulls().head(_SAMPLE).to_frame("v")
    parse = parse_date if kind == ColumnKind.DATE else parse_datetime
    counts = sample.select(
        parse(pl.col("v"), fmt).count().alias(str(index)) for index, fmt in enumerate(formats)
    ).row(0)
    return formats[max(range(len(formats)), key=lambda index: counts[index])]
