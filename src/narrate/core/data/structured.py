"""Read Parquet and JSON (array of records, or JSON Lines) files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from narrate.core.data.limits import (
    ReadLimits,
    check_cells,
    check_decompressed,
    check_json_depth,
)
from narrate.errors import DataProblem

__all__ = ["flatten_nested", "read_json", "read_jsonl", "read_parquet"]

_NESTED = (pl.Struct, pl.List, pl.Array)


def read_parquet(path: Path, *, filename: str, limits: ReadLimits | None = None) -> pl.DataFrame:
    """Read a Parquet file, after checking its metadata against the limits.

    Args:
        path: The uploaded file.
        filename: The name the user gave it (for messages).
        limits: Columns, cells and decompressed size allowed (default ``ReadLimits()``).

    Returns:
        The table.

    Raises:
        DataProblem: The file is not valid Parquet.
        TooLarge: Its metadata declares more columns, cells or uncompressed bytes than
            the limits allow (a few KB of Parquet can hold 100 million rows).
    """
    _check_parquet_metadata(path, filename=filename, limits=limits or ReadLimits())
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise DataProblem(
            f"'{filename}' could not be read as Parquet: {_first_line(exc)}",
            hint="Write the file again with a Parquet library, or upload a CSV.",
            details={"file": filename, "problem": "bad_parquet"},
        ) from exc


def _check_parquet_metadata(path: Path, *, filename: str, limits: ReadLimits) -> None:
    try:
        metadata = pq.read_metadata(path)
        columns = len(metadata.schema.to_arrow_schema())
    except (pa.ArrowException, OSError) as exc:
        raise DataProblem(
            f"'{filename}' could not be read as Parquet: {_first_line(exc)}",
            hint="Write the file again with a Parquet library, or upload a CSV.",
            details={"file": filename, "problem": "bad_parquet"},
        ) from exc
    check_cells(metadata.num_rows, columns, filename=filename, limits=limits)
    uncompressed = sum(
        metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups)
    )
    check_decompressed(uncompressed, filename=filename, limits=limits)


def read_json(path: Path, *, filename: str, limits: ReadLimits | None = None) -> pl.DataFrame:
    """Read a JSON array of records (or JSON Lines saved as .json).

    Args:
        path: The uploaded file.
        filename: The name the user gave it (for messages).
        limits: The nesting depth allowed (default ``ReadLimits()``).

    Returns:
        The table.

    Raises:
        DataProblem: The file is not valid JSON, not an array of records, or nested
            deeper than ``limits.max_json_depth``.
    """
    limits = limits or ReadLimits()
    check_json_depth(path, filename=filename, limits=limits)
    with path.open("rb") as handle:
        start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"{"):
        return read_jsonl(path, filename=filename, limits=limits)
    try:
        return pl.read_json(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        line = _json_error_line(path)
        where = f" (line {line})" if line else ""
        raise DataProblem(
            f"'{filename}' is not a JSON array of records{where}: {_first_line(exc)}",
            hint='Send a list of objects like [{"a": 1}, {"a": 2}], or one object per line.',
            details={"file": filename, "line": line, "problem": "bad_json"},
        ) from exc


def read_jsonl(path: Path, *, filename: str, limits: ReadLimits | None = None) -> pl.DataFrame:
    """Read JSON Lines: one JSON object per line.

    Args:
        path: The uploaded file.
        filename: The name the user gave it (for messages).
        limits: The nesting depth allowed (default ``ReadLimits()``).

    Returns:
        The table.

    Raises:
        DataProblem: A line is not a JSON object, or the nesting is deeper than
            ``limits.max_json_depth``.
    """
    check_json_depth(path, filename=filename, limits=limits or ReadLimits())
    try:
        return pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        line = _first_bad_json_line(path)
        raise DataProblem(
            f"'{filename}' is not valid JSON Lines"
            + (f": line {line} is not a JSON object." if line else f": {_first_line(exc)}"),
            hint="Put exactly one JSON object on each line.",
            details={"file": filename, "line": line, "problem": "bad_json"},
        ) from exc


def flatten_nested(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Turn struct and list columns into JSON text columns.

    Args:
        frame: Any frame.

    Returns:
        The frame with nested columns as strings, and the names of those columns.
    """
    nested = [name for name, dtype in frame.schema.items() if isinstance(dtype, _NESTED)]
    if not nested:
        return frame, []
    return frame.with_columns(_as_json(name) for name in nested), nested


def _as_json(name: str) -> pl.Expr:
    # Wrapping in a one-field struct lets polars encode any nested value; strip the wrapper.
    wrapped = pl.struct(pl.col(name).alias("v")).struct.json_encode()
    text = wrapped.str.strip_prefix('{"v":').str.strip_suffix("}")
    return pl.when(pl.col(name).is_null()).then(None).otherwise(text).alias(name)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _json_error_line(path: Path) -> int | None:
    try:
        json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        return exc.lineno
    except RecursionError:  # the depth check ran first; this only guards the parser
        return None
    return None


def _first_bad_json_line(path: Path) -> int | None:
    with path.open("r", encoding="utf-8", errors="replace") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                return line_no
            if not isinstance(value, dict):
                return line_no
    return None
