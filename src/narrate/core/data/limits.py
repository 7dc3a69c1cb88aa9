"""Size limits of an uploaded table, checked before the file is read or expanded.

Each check raises ``TooLarge`` (413) or ``DataProblem`` naming the file, what was found,
the limit and the setting that holds it, so an administrator knows what to raise.
"""

from __future__ import annotations

import gzip
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from narrate.errors import DataProblem, TooLarge, UnsupportedMediaType

__all__ = [
    "ReadLimits",
    "check_cells",
    "check_columns",
    "check_decompressed",
    "check_json_depth",
    "check_zip_entries",
    "gunzip_capped",
    "json_depth",
]

_MB = 1024 * 1024
_CHUNK = 1 << 20
# A JSON string, escapes included; written "unrolled" so that the regex engine does not
# backtrack through long strings.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)


@dataclass(frozen=True)
class ReadLimits:
    """The limits an upload must stay within (``Settings`` holds the configured values).

    Attributes:
        max_columns: Most columns (``NARRATE_MAX_COLUMNS``).
        max_cells: Most rows x columns (``NARRATE_MAX_CELLS``).
        max_decompressed_bytes: Most bytes a compressed file may expand to
            (``NARRATE_MAX_DECOMPRESSED_MB``).
        max_json_depth: Deepest nesting of a JSON file (``NARRATE_MAX_JSON_DEPTH``).
    """

    max_columns: int = 5000
    max_cells: int = 50_000_000
    max_decompressed_bytes: int = 1024 * _MB
    max_json_depth: int = 64


def check_columns(count: int, *, filename: str, limits: ReadLimits) -> None:
    """Refuse a table with more columns than ``max_columns``.

    Args:
        count: The columns found (from the header or the file's metadata).
        filename: The name the user gave the file.
        limits: The limits in force.

    Raises:
        TooLarge: ``count`` is above the limit.
    """
    if count > limits.max_columns:
        raise TooLarge(
            f"'{filename}' has {count:,} columns; at most {limits.max_columns:,} are "
            "accepted (setting NARRATE_MAX_COLUMNS).",
            hint="Drop or split columns before uploading, or ask an administrator to "
            "raise NARRATE_MAX_COLUMNS.",
            details={
                "file": filename,
                "columns": count,
                "limit": limits.max_columns,
                "setting": "max_columns",
                "problem": "too_many_columns",
            },
        )


def check_cells(rows: int, columns: int, *, filename: str, limits: ReadLimits) -> None:
    """Refuse a table of more than ``max_cells`` rows x columns.

    Args:
        rows: Rows in the table (or declared in its metadata).
        columns: Columns in the table.
        filename: The name the user gave the file.
        limits: The limits in force.

    Raises:
        TooLarge: ``rows * columns`` is above the limit.
    """
    check_columns(columns, filename=filename, limits=limits)
    if rows * columns > limits.max_cells:
        raise TooLarge(
            f"'{filename}' has {rows:,} rows x {columns:,} columns = {rows * columns:,} "
            f"cells; at most {limits.max_cells:,} are accepted (setting NARRATE_MAX_CELLS).",
            hint="Upload a sample or a subset of the columns, or ask an administrator to "
            "raise NARRATE_MAX_CELLS.",
            details={
                "file": filename,
                "rows": rows,
                "columns": columns,
                "cells": rows * columns,
                "limit": limits.max_cells,
                "setting": "max_cells",
                "problem": "too_many_cells",
            },
        )


def check_decompressed(size: int, *, filename: str, limits: ReadLimits) -> None:
    """Refuse a compressed file that expands (or says it expands) beyond the limit.

    Args:
        size: Bytes the content expands to (declared, or counted so far).
        filename: The name the user gave the file.
        limits: The limits in force.

    Raises:
        TooLarge: ``size`` is above ``max_decompressed_bytes``.
    """
    if size > limits.max_decompressed_bytes:
        limit_mb = limits.max_decompressed_bytes / _MB
        raise TooLarge(
            f"'{filename}' expands to more than {limit_mb:,.0f} MB when decompressed "
            f"({size / _MB:,.1f} MB or more); the limit is {limit_mb:,.0f} MB "
            "(setting NARRATE_MAX_DECOMPRESSED_MB).",
            hint="Upload a smaller file, or ask an administrator to raise "
            "NARRATE_MAX_DECOMPRESSED_MB.",
            details={
                "file": filename,
                "decompressed_bytes": size,
                "limit": limits.max_decompressed_bytes,
                "setting": "max_decompressed_mb",
                "problem": "decompressed_too_large",
            },
        )


def gunzip_capped(source: Path, target: Path, *, filename: str, limits: ReadLimits) -> None:
    """Decompress a gzip file, stopping as soon as it grows past the limit.

    The size field in a gzip trailer can lie, so the bytes are counted as they come.

    Args:
        source: The gzip file.
        target: Where to write the decompressed bytes.
        filename: The name the user gave the file.
        limits: The limits in force.

    Raises:
        TooLarge: The content expands beyond ``max_decompressed_bytes``.
        DataProblem: The gzip stream is corrupt.
    """
    written = 0
    try:
        with gzip.open(source, "rb") as reader, target.open("wb") as writer:
            while chunk := reader.read(_CHUNK):
                written += len(chunk)
                check_decompressed(written, filename=filename, limits=limits)
                writer.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataProblem(
            f"'{filename}' is gzip-compressed but could not be decompressed: {exc}.",
            hint="Compress the file again, or upload it uncompressed.",
            details={"file": filename, "problem": "bad_gzip"},
        ) from exc


def check_zip_entries(path: Path, *, filename: str, limits: ReadLimits) -> None:
    """Refuse a zip container (an .xlsx workbook) that expands beyond the limit.

    The declared sizes are checked first (cheap); then every entry is inflated once and
    counted with the same cap, because a crafted archive can declare small sizes.

    Args:
        path: The workbook.
        filename: The name the user gave the file.
        limits: The limits in force.

    Raises:
        TooLarge: The entries expand beyond ``max_decompressed_bytes``.
        UnsupportedMediaType: The file is not a readable zip archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            declared = sum(entry.file_size for entry in entries)
            check_decompressed(declared, filename=filename, limits=limits)
            counted = 0
            for entry in entries:
                with archive.open(entry) as member:
                    while chunk := member.read(_CHUNK):
                        counted += len(chunk)
                        check_decompressed(counted, filename=filename, limits=limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as exc:
        raise UnsupportedMediaType(
            f"'{filename}' could not be opened as an Excel workbook: {exc}.",
            hint="Open it in Excel or LibreOffice and save it again as .xlsx.",
            details={"file": filename, "problem": "bad_workbook"},
        ) from exc


def json_depth(data: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, without parsing it.

    Strings are cut out first (brackets in them do not count), then the depth is a
    running sum over the remaining brackets; all of it runs in C (regex,
    ``bytes.translate``, numpy), with no recursion, so any nesting is measured safely.

    Args:
        data: JSON or JSON Lines text, in any encoding that keeps ASCII brackets as is.

    Returns:
        The deepest nesting (0 for a text without arrays or objects).
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where(np.isin(codes, _OPENERS), 1, -1)
    return max(int(np.cumsum(steps).max()), 0)


def check_json_depth(path: Path, *, filename: str, limits: ReadLimits) -> None:
    """Refuse a JSON (or JSON Lines) file nested deeper than ``max_json_depth``.

    Runs before any parser sees the file: deep nesting makes recursive parsers fail
    with a stack overflow instead of an error (see :func:`json_depth`).

    Args:
        path: The uploaded file.
        filename: The name the user gave the file.
        limits: The limits in force.

    Raises:
        DataProblem: The nesting is deeper than the limit.
    """
    depth = json_depth(path.read_bytes())
    if depth > limits.max_json_depth:
        raise DataProblem(
            f"'{filename}' is nested {depth:,} levels deep; at most "
            f"{limits.max_json_depth:,} levels are accepted (setting NARRATE_MAX_JSON_DEPTH).",
            hint="Flatten the records to one object per row with plain values.",
            details={
                "file": filename,
                "depth": depth,
                "limit": limits.max_json_depth,
                "setting": "max_json_depth",
                "problem": "json_too_deep",
            },
        )
