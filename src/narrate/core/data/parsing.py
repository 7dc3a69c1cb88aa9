"""Polars expressions that parse text into numbers, booleans, dates and datetimes.

Shared by type inference (which tries them) and type overrides (which insists on one).
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "DATETIME_FORMATS",
    "DATE_FORMATS",
    "FALSE_WORDS",
    "MISSING_TOKENS",
    "TRUE_WORDS",
    "cleaned",
    "parse_boolean",
    "parse_date",
    "parse_datetime",
    "parse_float",
    "parse_integer",
]

# Written-out "no value" markers, compared after trimming and lower-casing. Blank strings
# are not among them on purpose: a number column with blanks stays text and gets a warning.
MISSING_TOKENS = ("na", "n/a", "nan", "null", "none", "nil", "-", "--", "?", "#n/a", "missing")
TRUE_WORDS = ("true", "yes", "y", "t", "1")
FALSE_WORDS = ("false", "no", "n", "f", "0")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y", "%d-%m-%Y")
_TIME_PARTS = (" %H:%M:%S", " %H:%M", "T%H:%M:%S", " %H:%M:%S%.f", "T%H:%M:%S%.f", "T%H:%M")
DATETIME_FORMATS = (
    *(date + time for date in DATE_FORMATS for time in _TIME_PARTS),
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
)


def cleaned(expr: pl.Expr) -> pl.Expr:
    """Trim a text expression and turn written-out missing markers into nulls.

    Args:
        expr: A String expression.

    Returns:
        The trimmed text, null where the value is a missing marker.
    """
    text = expr.str.strip_chars()
    return pl.when(~text.str.to_lowercase().is_in(MISSING_TOKENS)).then(text)


def parse_integer(expr: pl.Expr) -> pl.Expr:
    """Parse cleaned text as Int64; values like ``007`` (leading zeros) do not parse.

    Args:
        expr: A cleaned String expression.

    Returns:
        An Int64 expression, null where the text is not a plain integer.
    """
    has_leading_zero = expr.str.contains(r"^[+-]?0\d+$")
    return pl.when(~has_leading_zero).then(expr.cast(pl.Int64, strict=False))


def parse_float(expr: pl.Expr) -> pl.Expr:
    """Parse cleaned text as Float64.

    Args:
        expr: A cleaned String expression.

    Returns:
        A Float64 expression, null where the text is not a number.
    """
    return expr.cast(pl.Float64, strict=False)


def parse_boolean(expr: pl.Expr) -> pl.Expr:
    """Parse cleaned text as Boolean (true/false, yes/no, y/n, t/f, 1/0; any case).

    Args:
        expr: A cleaned String expression.

    Returns:
        A Boolean expression, null where the text is not one of those words.
    """
    lower = expr.str.to_lowercase()
    return (
        pl.when(lower.is_in(TRUE_WORDS))
        .then(pl.lit(value=True))
        .when(lower.is_in(FALSE_WORDS))
        .then(pl.lit(value=False))
        .otherwise(None)
        .name.keep()
    )


def parse_date(expr: pl.Expr, fmt: str) -> pl.Expr:
    """Parse cleaned text as Date with a strftime-style format.

    Args:
        expr: A cleaned String expression.
        fmt: One of ``DATE_FORMATS`` (or any chrono format).

    Returns:
        A Date expression, null where the text does not match.
    """
    return expr.str.to_date(format=fmt, strict=False)


def parse_datetime(expr: pl.Expr, fmt: str) -> pl.Expr:
    """Parse cleaned text as Datetime (microseconds; zoned formats become UTC).

    Args:
        expr: A cleaned String expression.
        fmt: One of ``DATETIME_FORMATS`` (or any chrono format).

    Returns:
        A Datetime expression, null where the text does not match.
    """
    return expr.str.to_datetime(format=fmt, strict=False, time_unit="us")
