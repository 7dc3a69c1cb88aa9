"""Polars data types as plain strings, and the type families recipe steps check for."""

from __future__ import annotations

import re

import polars as pl

from narrate.errors import InvalidInput

__all__ = [
    "dtype_from_str",
    "dtype_to_str",
    "is_numeric",
    "is_stringlike",
    "is_temporal",
    "kind_of",
]

_SIMPLE: dict[str, pl.DataType] = {
    "Int8": pl.Int8(),
    "Int16": pl.Int16(),
    "Int32": pl.Int32(),
    "Int64": pl.Int64(),
    "Int128": pl.Int128(),
    "UInt8": pl.UInt8(),
    "UInt16": pl.UInt16(),
    "UInt32": pl.UInt32(),
    "UInt64": pl.UInt64(),
    "Float32": pl.Float32(),
    "Float64": pl.Float64(),
    "Boolean": pl.Boolean(),
    "String": pl.String(),
    "Date": pl.Date(),
    "Time": pl.Time(),
    "Categorical": pl.Categorical(),
    "Null": pl.Null(),
}
_DATETIME = re.compile(r"^Datetime\((ns|us|ms)(?:, (.+))?\)$")
_DURATION = re.compile(r"^Duration\((ns|us|ms)\)$")


def dtype_to_str(dtype: pl.DataType) -> str:
    """Return a stable, JSON-friendly name for ``dtype``.

    Args:
        dtype: A polars data type.

    Returns:
        ``"Int64"``, ``"Datetime(us, UTC)"`` ... — readable by :func:`dtype_from_str`.
    """
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"Datetime({dtype.time_unit}{zone})"
    if isinstance(dtype, pl.Duration):
        return f"Duration({dtype.time_unit})"
    if isinstance(dtype, pl.Categorical):
        return "Categorical"
    return str(dtype)


def dtype_from_str(name: str) -> pl.DataType:
    """Parse a name written by :func:`dtype_to_str`.

    Args:
        name: The data type name.

    Returns:
        The polars data type.

    Raises:
        InvalidInput: The name is not a data type Narrate stores.
    """
    if name in _SIMPLE:
        return _SIMPLE[name]
    match = _DATETIME.match(name)
    if match:
        return pl.Datetime(match.group(1), match.group(2))  # type: ignore[arg-type]
    match = _DURATION.match(name)
    if match:
        return pl.Duration(match.group(1))  # type: ignore[arg-type]
    raise InvalidInput(
        f"Unknown data type '{name}'.",
        code="unknown_dtype",
        details={"dtype": name, "allowed": sorted(_SIMPLE)},
    )


def is_numeric(dtype: pl.DataType) -> bool:
    """Return whether ``dtype`` holds numbers (integers or floats, not booleans)."""
    return dtype.is_numeric()


def is_temporal(dtype: pl.DataType) -> bool:
    """Return whether ``dtype`` is a date or a datetime."""
    return isinstance(dtype, pl.Date | pl.Datetime)


def is_stringlike(dtype: pl.DataType) -> bool:
    """Return whether ``dtype`` holds text (string or categorical)."""
    return isinstance(dtype, pl.String | pl.Categorical | pl.Enum)


def kind_of(dtype: pl.DataType) -> str:
    """Return the plain-language family of ``dtype`` for messages."""
    if is_numeric(dtype):
        return "numeric"
    if isinstance(dtype, pl.Boolean):
        return "boolean"
    if is_temporal(dtype):
        return "date/time"
    if is_stringlike(dtype):
        return "text"
    if isinstance(dtype, pl.Null):
        return "empty"
    return dtype_to_str(dtype)
