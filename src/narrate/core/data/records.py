"""Find the records of a delimited file that break its shape, with their line numbers.

Only called when polars has already reported a problem or a short row may be hiding, so
the happy path of an upload never pays for a Python loop over the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BadRecord",
    "RecordScan",
    "find_quote_error",
    "first_odd_quote_line",
    "scan_records",
]


@dataclass(frozen=True)
class BadRecord:
    """A record whose field count differs from the header's.

    Attributes:
        index: Position among the rows polars returns (0-based, blank lines included).
        line: 1-based line number where the record starts (the header is line 1).
        found: How many fields the record has.
    """

    index: int
    line: int
    found: int


@dataclass
class RecordScan:
    """What a scan of the file found."""

    bad: list[BadRecord] = field(default_factory=list)
    quote_error_line: int | None = None


def scan_records(path: Path, *, delimiter: str, expected: int, has_header: bool) -> RecordScan:
    """List the records whose field count is not ``expected``.

    Files without quote characters are checked line by line on bytes; files with quotes
    go through the ``csv`` module so quoted delimiters and line breaks count correctly.

    Args:
        path: A UTF-8 file.
        delimiter: The field delimiter.
        expected: The number of fields every record should have.
        has_header: Whether line 1 is the header (it is not checked).

    Returns:
        The bad records in file order and, if the quoting is broken, the line it breaks on.
    """
    scan = _scan_unquoted(path, delimiter, expected, has_header)
    return scan if scan is not None else _scan_quoted(path, delimiter, expected, has_header)


def _scan_unquoted(
    path: Path, delimiter: str, expected: int, has_header: bool
) -> RecordScan | None:
    scan = RecordScan()
    separator = delimiter.encode()
    index = 0
    with path.open("rb") as lines:
        for line_no, line in enumerate(lines, start=1):
            if b'"' in line:
                return None
            if has_header and line_no == 1:
                continue
            if line.strip(b"\r\n"):
                found = line.count(separator) + 1
                if found != expected:
                    scan.bad.append(BadRecord(index, line_no, found))
            index += 1
    return scan


def _scan_quoted(
    path: Path, delimiter: str, expected: int, has_header: bool, *, keep_bad: bool = True
) -> RecordScan:
    scan = RecordScan()
    with path.open("r", encoding="utf-8", errors="replace", newline="") as text:
        if text.read(1) != "\ufeff":
            text.seek(0)
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        index = -1 if has_header else 0
        start = 1
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error:
                scan.quote_error_line = start
                break
            if keep_bad and index >= 0 and record and len(record) != expected:
                scan.bad.append(BadRecord(index, start, len(record)))
            index += 1
    return scan


def find_quote_error(path: Path, *, delimiter: str) -> int | None:
    """Return the line where the ``csv`` module finds broken quoting, if it does.

    Args:
        path: A UTF-8 file.
        delimiter: The field delimiter.

    Returns:
        The 1-based line where the broken record starts, or None.
    """
    return _scan_quoted(
        path, delimiter, expected=-1, has_header=False, keep_bad=False
    ).quote_error_line


def first_odd_quote_line(path: Path) -> int | None:
    """Return the first line with an odd number of ``"`` characters, if any.

    Args:
        path: A UTF-8 file.

    Returns:
        A 1-based line number, or None.
    """
    with path.open("rb") as lines:
        for line_no, line in enumerate(lines, start=1):
            if line.count(b'"') % 2:
                return line_no
    return None
