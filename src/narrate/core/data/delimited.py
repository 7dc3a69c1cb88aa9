"""Read CSV/TSV files: encoding, delimiter, header, number style, ragged rows, quoting."""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import polars as pl

from narrate.core.data.columns import describe_renames, make_unique_names
from narrate.core.data.encoding import (
    SAMPLE_BYTES,
    DetectedEncoding,
    detect_encoding,
    transcode_to_utf8,
)
from narrate.core.data.limits import ReadLimits, check_columns
from narrate.core.data.numbers import NumberStyle, convert_formatted_numbers, detect_number_style
from narrate.core.data.records import find_quote_error, first_odd_quote_line, scan_records
from narrate.core.data.sniffing import looks_like_data_row, sniff_delimiter, split_sample
from narrate.errors import DataProblem

__all__ = ["DelimitedRead", "read_delimited"]

_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_TOO_MANY_FIELDS = "more fields than defined"
_BAD_UTF8 = "invalid utf-8"
_HEADER_CHUNK = 1 << 16


class _InvalidUtf8(Exception):
    """Polars met bytes that are not UTF-8 after the sample said the file was."""


@dataclass
class DelimitedRead:
    """A delimited file read into a frame of strings (and separator-formatted numbers)."""

    frame: pl.DataFrame
    encoding: str
    delimiter: str
    skipped_lines: int = 0
    renamed_columns: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_delimited(
    path: Path,
    *,
    filename: str,
    is_tsv: bool,
    delimiter: str | None = None,
    encoding: str | None = None,
    skip_bad_lines: bool = False,
    limits: ReadLimits | None = None,
) -> DelimitedRead:
    """Read a CSV or TSV file into a polars frame of strings.

    Args:
        path: The uploaded file.
        filename: The name the user gave it (for messages).
        is_tsv: Whether the name says tab-separated (the default delimiter is then tab).
        delimiter: Use this delimiter instead of sniffing one.
        encoding: Use this codec instead of detecting one.
        skip_bad_lines: Drop rows with the wrong number of fields instead of failing.
        limits: The column limit, checked on the first row before the body is read
            (default ``ReadLimits()``).

    Returns:
        The frame and what was found out while reading it.

    Raises:
        DataProblem: The file is empty, has no data rows, ragged rows or broken quoting.
        UnsupportedMediaType: The file is binary or not valid in its encoding.
        TooLarge: The first row has more fields than ``limits.max_columns``.
    """
    limits = limits or ReadLimits()
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    is_truncated = path.stat().st_size > len(head)
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise DataProblem(
            f"'{filename}' is empty.",
            hint="Upload a file with a header row and at least one data row.",
            details={"file": filename, "problem": "empty"},
        )
    detected = (
        DetectedEncoding(encoding, is_utf8=encoding.lower().replace("_", "-") in {"utf-8", "utf8"})
        if encoding
        else detect_encoding(head, filename=filename, is_truncated=is_truncated)
    )
    with tempfile.TemporaryDirectory(prefix="narrate-read-") as scratch:
        source = path
        if not detected.is_utf8:
            source = Path(scratch) / "utf8.csv"
            transcode_to_utf8(path, source, detected.name, filename=filename)
        try:
            result = _read_utf8(
                source,
                filename=filename,
                is_tsv=is_tsv,
                delimiter=delimiter,
                skip=skip_bad_lines,
                limits=limits,
            )
        except _InvalidUtf8:
            # The sample was UTF-8 but a later byte is not: such files are almost always CP1252.
            detected = DetectedEncoding("cp1252", is_utf8=False)
            source = Path(scratch) / "utf8.csv"
            transcode_to_utf8(path, source, detected.name, filename=filename)
            result = _read_utf8(
                source,
                filename=filename,
                is_tsv=is_tsv,
                delimiter=delimiter,
                skip=skip_bad_lines,
                limits=limits,
            )
    result.encoding = detected.name
    if detected.name not in {"utf-8", "utf-8-sig"}:
        result.warnings.insert(0, f"The file was read as {detected.name} text, not UTF-8.")
    return result


def _read_utf8(
    path: Path,
    *,
    filename: str,
    is_tsv: bool,
    delimiter: str | None,
    skip: bool,
    limits: ReadLimits,
) -> DelimitedRead:
    with path.open("rb") as handle:
        raw = handle.read(SAMPLE_BYTES)
    is_truncated = path.stat().st_size > len(raw)
    sample = split_sample(
        raw.decode("utf-8", errors="replace").lstrip("\ufeff"), is_truncated=is_truncated
    )
    sep = delimiter or ("\t" if is_tsv else sniff_delimiter(sample))
    check_columns(_first_row_width(path, sep), filename=filename, limits=limits)
    has_header = not looks_like_data_row(sample, sep)
    frame, skipped = _read_frame(path, filename=filename, sep=sep, has_header=has_header, skip=skip)
    result = DelimitedRead(frame=frame, encoding="utf-8", delimiter=sep, skipped_lines=skipped)
    names = list(frame.columns)
    if has_header:
        header = _header_names(sample, sep)
        names = header if len(header) == frame.width else names
    else:
        names = [f"column_{i}" for i in range(1, frame.width + 1)]
        result.warnings.append(
            "The first row looks like data, not column names, so the columns were named "
            f"column_1 to column_{frame.width}."
        )
    _finish(
        result, names, filename=filename, sample_delimiter_known=delimiter is not None or is_tsv
    )
    return result


def _first_row_width(path: Path, sep: str) -> int:
    """Fields in the first record, read a chunk at a time (the body is never read).

    Delimiters inside quotes do not count; the scan stops at the first line break
    outside quotes.
    """
    fields, is_quoted = 1, False
    with path.open("r", encoding="utf-8", errors="replace", newline="") as text:
        while chunk := text.read(_HEADER_CHUNK):
            if not is_quoted and '"' not in chunk:
                # Fast path for the usual header without quotes.
                end = min((i for i in (chunk.find("\n"), chunk.find("\r")) if i >= 0), default=-1)
                fields += chunk.count(sep, 0, end if end >= 0 else len(chunk))
                if end >= 0:
                    return fields
                continue
            for char in chunk:
                if char == '"':
                    is_quoted = not is_quoted
                elif not is_quoted and char == sep:
                    fields += 1
                elif not is_quoted and char in "\r\n":
                    return fields
    return fields


def _header_names(sample: str, sep: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(sample), delimiter=sep), [])
    except csv.Error:
        return []


def _finish(
    result: DelimitedRead, names: list[str], *, filename: str, sample_delimiter_known: bool
) -> None:
    frame = result.frame
    unique, renamed = make_unique_names(names)
    frame.columns = unique
    result.renamed_columns = renamed
    if message := describe_renames(renamed):
        result.warnings.append(message)
    if result.skipped_lines:
        result.warnings.append(
            f"{result.skipped_lines:,} row(s) with the wrong number of fields were skipped."
        )
    empty_rows = frame.select(pl.all_horizontal(pl.all().is_null()).sum()).item()
    if empty_rows:
        frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))
        result.warnings.append(f"{empty_rows:,} empty row(s) were ignored.")
    if frame.height == 0:
        raise DataProblem(
            f"'{filename}' has a header but no data rows.",
            hint="Upload a file with at least one row of data below the header.",
            details={"file": filename, "problem": "no_data_rows"},
        )
    style = detect_number_style(frame, result.delimiter)
    frame, converted = convert_formatted_numbers(frame, style)
    if converted:
        how = "decimal commas" if style == NumberStyle.COMMA else "thousands separators"
        result.warnings.append(
            f"{len(converted)} column(s) use {how} and were read as numbers: "
            + ", ".join(f"'{name}'" for name in converted[:10])
            + "."
        )
    if not sample_delimiter_known and result.delimiter != ",":
        result.warnings.append(f"The file is {_DELIMITER_NAMES[result.delimiter]}-separated.")
    result.frame = frame


def _read_frame(
    path: Path, *, filename: str, sep: str, has_header: bool, skip: bool
) -> tuple[pl.DataFrame, int]:
    """Read with polars; look for bad records only when polars fails or short rows may hide."""
    frame: pl.DataFrame | None = None
    try:
        frame = _polars_read(path, sep=sep, has_header=has_header, truncate=False)
        expected = frame.width
        if frame.height == 0 or frame.get_column(frame.columns[-1]).null_count() == 0:
            return frame, 0
    except pl.exceptions.ComputeError as exc:
        if _BAD_UTF8 in str(exc).lower():
            raise _InvalidUtf8 from exc
        if _TOO_MANY_FIELDS not in str(exc):
            _raise_quoting(path, filename=filename, sep=sep, cause=exc)
        expected = _header_width(path, sep=sep, has_header=has_header)
    scan = scan_records(path, delimiter=sep, expected=expected, has_header=has_header)
    if scan.quote_error_line is not None:
        _raise_quoting(path, filename=filename, sep=sep, cause=None)
    if not scan.bad:
        if frame is None:  # polars saw too many fields where the csv module sees none
            _raise_quoting(path, filename=filename, sep=sep, cause=None)
        return frame, 0
    if not skip:
        first = scan.bad[0]
        raise DataProblem(
            f"'{filename}' has rows with the wrong number of fields: line {first.line} has "
            f"{first.found} field(s) but the header has {expected} "
            f"({len(scan.bad):,} such row(s) in all).",
            hint="Fix those lines, or upload again with 'skip bad lines' switched on.",
            details={
                "file": filename,
                "line": first.line,
                "expected": expected,
                "found": first.found,
                "bad_rows": len(scan.bad),
                "problem": "ragged_rows",
            },
        )
    frame = _polars_read(path, sep=sep, has_header=has_header, truncate=True)
    bad = pl.Series("bad", [record.index for record in scan.bad], dtype=pl.UInt32)
    frame = frame.with_row_index("__row__").filter(~pl.col("__row__").is_in(bad)).drop("__row__")
    return frame, len(scan.bad)


def _polars_read(
    path: Path, *, sep: str, has_header: bool, truncate: bool, n_rows: int | None = None
) -> pl.DataFrame:
    return pl.read_csv(
        path,
        separator=sep,
        has_header=has_header,
        infer_schema=False,
        truncate_ragged_lines=truncate,
        raise_if_empty=False,
        n_rows=n_rows,
    )


def _header_width(path: Path, *, sep: str, has_header: bool) -> int:
    return _polars_read(path, sep=sep, has_header=has_header, truncate=True, n_rows=1).width


def _raise_quoting(path: Path, *, filename: str, sep: str, cause: Exception | None) -> NoReturn:
    line = find_quote_error(path, delimiter=sep) or first_odd_quote_line(path)
    where = f" near line {line}" if line is not None else ""
    raise DataProblem(
        f"'{filename}' has broken quoting{where}: a quoted field is not closed, or a quote "
        "character appears inside an unquoted field.",
        hint='Close the quote, or double any " that belongs inside a quoted field ("").',
        details={"file": filename, "line": line, "problem": "malformed_quoting"},
    ) from cause
