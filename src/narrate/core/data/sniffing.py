"""Guess what a file is and how its text is laid out, from its first bytes."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

__all__ = [
    "DELIMITERS",
    "looks_like_data_row",
    "sniff_binary_format",
    "sniff_delimiter",
    "split_sample",
]

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_ROWS = 50
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)*|\d*[.,]\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?")


def sniff_binary_format(head: bytes) -> str | None:
    """Name the binary format whose magic bytes start ``head``, if any.

    Args:
        head: The first bytes of the file.

    Returns:
        ``"parquet"``, ``"xlsx"`` (any zip container), ``"xls"`` (old OLE2 Excel), or None.
    """
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"
    return None


def split_sample(text: str, *, is_truncated: bool) -> str:
    """Cut a decoded sample at its last line break so no record is cut in half.

    Args:
        text: The decoded start of the file.
        is_truncated: Whether the file continues after ``text``.

    Returns:
        The sample, ending at a line break when the file continues.
    """
    if not is_truncated:
        return text
    cut = text.rfind("\n")
    return text[: cut + 1] if cut > 0 else text


def _rows(sample: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if row:
                rows.append(row)
            if len(rows) >= _SAMPLE_ROWS:
                break
    except csv.Error:
        pass  # a malformed sample just scores lower; the real reader reports the line
    return rows


def sniff_delimiter(sample: str, *, default: str = ",") -> str:
    """Pick the delimiter that splits the sample's rows into the most consistent fields.

    Args:
        sample: Decoded text from the start of the file, cut at a line break.
        default: Returned when no candidate gives more than one field.

    Returns:
        One of ``, ; \\t |``.
    """
    best, best_score = default, (0.0, 0)
    for delimiter in DELIMITERS:
        rows = _rows(sample, delimiter)
        if not rows:
            continue
        widths = Counter(len(row) for row in rows)
        width, count = widths.most_common(1)[0]
        if width < 2:
            continue
        score = (count / len(rows), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _is_value_like(cell: str) -> bool:
    text = cell.strip()
    return bool(_NUMBER.match(text) or _DATE.match(text))


def looks_like_data_row(sample: str, delimiter: str) -> bool:
    """Tell whether the first row of the sample is data rather than column names.

    It is data when some column holds numbers or dates in the rows below *and* in the
    first row, and no column that holds numbers below starts with a word.

    Args:
        sample: Decoded text from the start of the file.
        delimiter: The delimiter of the file.

    Returns:
        True when the first row should be read as data.
    """
    rows = _rows(sample, delimiter)
    if len(rows) < 2:
        return False
    first, body = rows[0], rows[1:]
    value_like_first = 0
    for index, cell in enumerate(first):
        column = [row[index] for row in body if index < len(row) and row[index].strip()]
        if not column or sum(map(_is_value_like, column)) < 0.9 * len(column):
            continue
        if not _is_value_like(cell):
            return False
        value_like_first += 1
    return value_like_first > 0
