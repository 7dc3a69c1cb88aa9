"""Read an uploaded file of any supported format into a polars frame.

``read_table`` is the one entry point of the Upload stage's core: it checks the file
type by name *and* by content, then hands over to the reader for that format.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import polars as pl

from narrate.core.data.delimited import read_delimited
from narrate.core.data.excel import read_excel
from narrate.core.data.limits import ReadLimits, check_cells, gunzip_capped
from narrate.core.data.sniffing import sniff_binary_format
from narrate.core.data.structured import flatten_nested, read_json, read_jsonl, read_parquet
from narrate.errors import DataProblem, UnsupportedMediaType

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "FORMATS_BY_EXTENSION",
    "ReadLimits",
    "ReadOptions",
    "ReadResult",
    "check_media_type",
    "read_table",
]

FORMATS_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_TEXT_FORMATS = {"csv", "tsv", "json", "jsonl"}
#: Declared content types an upload may carry. Browsers and tools label tables loosely
#: (Windows calls CSV "application/vnd.ms-excel", curl sends form-urlencoded), so the
#: content is still sniffed; this only turns away what is plainly not a table.
ACCEPTED_MEDIA_TYPES = (
    "text/*",
    "application/octet-stream",
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/csv",
    "application/x-csv",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.apache.parquet",
    "application/x-parquet",
    "application/parquet",
    "application/x-www-form-urlencoded",
)
_FORMAT_NAMES = {"parquet": "Parquet", "xlsx": "Excel (.xlsx)", "xls": "old Excel (.xls)"}
_GZIP = b"\x1f\x8b"
# Other compressors whose streams polars would expand in memory without any limit.
_OTHER_COMPRESSION = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}


@dataclass(frozen=True)
class ReadOptions:
    """Choices the user can make when a file is read.

    Attributes:
        sheet: The Excel sheet to read (default: the first).
        skip_bad_lines: Skip rows with the wrong number of fields instead of failing.
        delimiter: Force a delimiter for CSV/TSV instead of sniffing it.
        encoding: Force a text encoding (a Python codec name) instead of detecting it.
    """

    sheet: str | None = None
    skip_bad_lines: bool = False
    delimiter: str | None = None
    encoding: str | None = None


@dataclass
class ReadResult:
    """A file read into a frame, with everything learnt on the way.

    Attributes:
        frame: The table. CSV/TSV columns are strings (except separator-formatted
            numbers); run ``infer_types`` next.
        format: One of csv, tsv, xlsx, parquet, json, jsonl.
        encoding: The text encoding (text formats only).
        delimiter: The field delimiter (CSV/TSV only).
        sheet: The sheet read (Excel only).
        sheets: All sheet names (Excel only).
        skipped_lines: Rows skipped because they had the wrong number of fields.
        renamed_columns: New column name -> name in the file, for every renamed column.
        warnings: Plain-language notes for the user.
    """

    frame: pl.DataFrame
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    skipped_lines: int = 0
    renamed_columns: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_table(
    path: Path,
    *,
    filename: str,
    options: ReadOptions | None = None,
    limits: ReadLimits | None = None,
) -> ReadResult:
    """Read an uploaded file into a polars frame.

    Args:
        path: Where the uploaded bytes are.
        filename: The name the user gave the file; its extension picks the format.
        options: Sheet, delimiter, encoding and bad-line choices.
        limits: Columns, cells, decompressed size and JSON depth allowed (defaults:
            ``ReadLimits()``); each is checked before the data is materialised.

    Returns:
        The frame and what was found out while reading it.

    Raises:
        UnsupportedMediaType: The extension is not supported, or the content is not
            what the extension says and not another format we read.
        InvalidInput: The requested sheet does not exist.
        DataProblem: The file is empty, has no data rows, or is malformed (the error
            names the file and, where known, the line).
        TooLarge: The file is over one of ``limits``.
    """
    options = options or ReadOptions()
    limits = limits or ReadLimits()
    declared = _declared_format(filename)
    with tempfile.TemporaryDirectory(prefix="narrate-unzip-") as scratch:
        path, gz_warnings = _decompressed(path, Path(scratch), filename=filename, limits=limits)
        with path.open("rb") as handle:
            head = handle.read(8)
        actual, warnings = _actual_format(declared, head, filename=filename)
        result = _read_format(actual, path, filename=filename, options=options, limits=limits)
    result.warnings[:0] = gz_warnings + warnings
    # Every reader checks what it can before reading; this catches the rest (e.g. the
    # row count of a CSV is only known once it is read).
    check_cells(result.frame.height, result.frame.width, filename=filename, limits=limits)
    frame, nested = flatten_nested(result.frame)
    if nested:
        result.warnings.append(
            f"{len(nested)} column(s) hold nested values and were kept as JSON text: "
            + ", ".join(f"'{name}'" for name in nested)
            + "."
        )
    result.frame = frame
    _check_not_empty(result, filename=filename)
    return result


def check_media_type(content_type: str | None, *, filename: str) -> None:
    """Refuse an upload whose declared content type is not a table, e.g. ``image/png``.

    Args:
        content_type: The declared type (a header value, parameters allowed); None or
            empty when the client sent none.
        filename: The file's name (for the message).

    Raises:
        UnsupportedMediaType: The file's extension is not one Narrate reads (checked
            first: it is the stronger signal), or the type is not one of
            ``ACCEPTED_MEDIA_TYPES``.
    """
    _declared_format(filename)
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if not declared:
        return
    major = declared.split("/", 1)[0]
    if declared in ACCEPTED_MEDIA_TYPES or f"{major}/*" in ACCEPTED_MEDIA_TYPES:
        return
    raise UnsupportedMediaType(
        f"'{filename}' was sent as {declared}; Narrate reads tables: CSV, TSV, Excel (.xlsx), "
        "Parquet, JSON or JSON Lines.",
        hint="Upload a table file, or send it as application/octet-stream.",
        details={
            "file": filename,
            "content_type": declared,
            "allowed": list(ACCEPTED_MEDIA_TYPES),
            "parameter": "file",
        },
    )


def _declared_format(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FORMATS_BY_EXTENSION:
        allowed = ", ".join(FORMATS_BY_EXTENSION)
        shown = f"'{suffix}'" if suffix else "no extension"
        raise UnsupportedMediaType(
            f"'{filename}' has {shown}; Narrate reads {allowed} files.",
            hint="Save the data in one of those formats, or rename the file if it is one.",
            details={"file": filename, "extension": suffix, "allowed": list(FORMATS_BY_EXTENSION)},
        )
    return FORMATS_BY_EXTENSION[suffix]


def _actual_format(declared: str, head: bytes, *, filename: str) -> tuple[str, list[str]]:
    sniffed = sniff_binary_format(head)
    if sniffed == "xls":
        raise UnsupportedMediaType(
            f"'{filename}' is an old Excel (.xls) workbook, which Narrate does not read.",
            hint="Open it in Excel or LibreOffice and save it as .xlsx or CSV.",
            details={"file": filename, "detected": "xls", "problem": "content_mismatch"},
        )
    if (sniffed is None and declared in _TEXT_FORMATS) or sniffed == declared:
        return declared, []
    if sniffed is None:
        raise UnsupportedMediaType(
            f"'{filename}' is named like a {_FORMAT_NAMES[declared]} file, "
            "but its content is not one.",
            hint="Check that you picked the right file, or export it again.",
            details={"file": filename, "expected": declared, "problem": "content_mismatch"},
        )
    return sniffed, [
        f"The file is named like a {declared} file but is a {_FORMAT_NAMES[sniffed]} file; "
        f"it was read as {_FORMAT_NAMES[sniffed]}."
    ]


def _decompressed(
    path: Path, scratch: Path, *, filename: str, limits: ReadLimits
) -> tuple[Path, list[str]]:
    """A gzip upload expanded (with the size cap) into ``scratch``; others as they are.

    Polars would otherwise expand a compressed CSV in memory without any limit.
    """
    with path.open("rb") as handle:
        head = handle.read(8)
    for magic, name in _OTHER_COMPRESSION.items():
        if head.startswith(magic):
            raise UnsupportedMediaType(
                f"'{filename}' is {name}-compressed; Narrate reads uncompressed or "
                "gzip-compressed files.",
                hint="Decompress it, or compress it with gzip, and upload it again.",
                details={"file": filename, "compression": name, "problem": "compressed"},
            )
    if not head.startswith(_GZIP):
        return path, []
    target = scratch / "decompressed"
    gunzip_capped(path, target, filename=filename, limits=limits)
    return target, ["The file was gzip-compressed and was decompressed."]


def _read_format(
    fmt: str, path: Path, *, filename: str, options: ReadOptions, limits: ReadLimits
) -> ReadResult:
    if fmt in {"csv", "tsv"}:
        read = read_delimited(
            path,
            filename=filename,
            is_tsv=fmt == "tsv",
            delimiter=options.delimiter,
            encoding=options.encoding,
            skip_bad_lines=options.skip_bad_lines,
            limits=limits,
        )
        return ReadResult(
            frame=read.frame,
            format="tsv" if read.delimiter == "\t" else "csv",
            encoding=read.encoding,
            delimiter=read.delimiter,
            skipped_lines=read.skipped_lines,
            renamed_columns=read.renamed_columns,
            warnings=read.warnings,
        )
    if fmt == "xlsx":
        sheet = read_excel(path, filename=filename, sheet=options.sheet, limits=limits)
        result = ReadResult(
            frame=sheet.frame,
            format="xlsx",
            sheet=sheet.sheet,
            sheets=sheet.sheets,
            warnings=sheet.warnings,
        )
        result.renamed_columns = sheet.renamed_columns
        return result
    if fmt == "parquet":
        frame = read_parquet(path, filename=filename, limits=limits)
        return ReadResult(frame=frame, format="parquet")
    reader = read_json if fmt == "json" else read_jsonl
    frame = reader(path, filename=filename, limits=limits)
    return ReadResult(frame=frame, format=fmt, encoding="utf-8")


def _check_not_empty(result: ReadResult, *, filename: str) -> None:
    if result.frame.width == 0:
        raise DataProblem(
            f"'{filename}' is empty: it has no columns.",
            hint="Upload a file with a header row and at least one data row.",
            details={"file": filename, "problem": "empty"},
        )
    if result.frame.height == 0:
        raise DataProblem(
            f"'{filename}' has column names but no data rows.",
            hint="Upload a file with at least one row of data.",
            details={"file": filename, "problem": "no_data_rows"},
        )
