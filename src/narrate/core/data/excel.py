"""Read Excel workbooks (.xlsx) through fastexcel/calamine."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import polars as pl

from narrate.core.data.columns import make_unique_names
from narrate.core.data.limits import ReadLimits, check_zip_entries
from narrate.errors import DataProblem, InvalidInput, UnsupportedMediaType

__all__ = ["ExcelRead", "find_header_row", "read_excel"]

_UNNAMED = "__UNNAMED__"
_HEADER_SCAN_ROWS = 30
_NUMBER = re.compile(r"^[+-]?(\d+[.,]?\d*|[.,]\d+)([eE][+-]?\d+)?%?$")


@dataclass
class ExcelRead:
    """One sheet of a workbook, and the names of all its sheets."""

    frame: pl.DataFrame
    sheet: str
    sheets: list[str]
    renamed_columns: dict[str, str]
    header_row: int = 0
    warnings: list[str] = field(default_factory=list)


def read_excel(
    path: Path, *, filename: str, sheet: str | None, limits: ReadLimits | None = None
) -> ExcelRead:
    """Read one sheet of an .xlsx workbook.

    Args:
        path: The uploaded file.
        filename: The name the user gave it (for messages).
        sheet: The sheet to read; None reads the first one.
        limits: The decompressed size allowed (default ``ReadLimits()``).

    Returns:
        The sheet as a frame, with empty column names filled in.

    Raises:
        UnsupportedMediaType: The file is not a readable workbook.
        InvalidInput: ``sheet`` is not in the workbook.
        DataProblem: The workbook has no sheets, or the sheet is empty.
        TooLarge: The workbook's XML expands beyond ``limits.max_decompressed_bytes``
            (checked before the workbook is parsed).
    """
    check_zip_entries(path, filename=filename, limits=limits or ReadLimits())
    try:
        sheets = list(fastexcel.read_excel(path).sheet_names)
    except fastexcel.FastExcelError as exc:
        raise UnsupportedMediaType(
            f"'{filename}' could not be opened as an Excel workbook.",
            hint="Open it in Excel or LibreOffice and save it again as .xlsx.",
            details={"file": filename, "problem": "bad_workbook"},
        ) from exc
    if not sheets:
        raise DataProblem(
            f"'{filename}' has no sheets.",
            hint="Add a sheet with a header row and data.",
            details={"file": filename, "problem": "empty"},
        )
    chosen = sheets[0] if sheet is None else sheet
    if chosen not in sheets:
        raise InvalidInput(
            f"'{filename}' has no sheet named '{sheet}'. Available sheets: "
            + ", ".join(f"'{name}'" for name in sheets)
            + ".",
            hint="Pick one of the available sheets.",
            details={"file": filename, "sheet": sheet, "sheets": sheets},
        )
    header_row = find_header_row(path, chosen)
    try:
        frame = pl.read_excel(
            path,
            sheet_name=chosen,
            engine="calamine",
            infer_schema_length=None,
            read_options={"header_row": header_row},
        )
    except pl.exceptions.NoDataError as exc:
        raise DataProblem(
            f"Sheet '{chosen}' of '{filename}' is empty.",
            hint="Pick a sheet with a header row and data, or fill this one.",
            details={"file": filename, "sheet": chosen, "problem": "empty"},
        ) from exc
    except fastexcel.FastExcelError as exc:
        raise DataProblem(
            f"Sheet '{chosen}' of '{filename}' could not be read: {exc}",
            hint="Check the sheet for merged cells or errors and save it again.",
            details={"file": filename, "sheet": chosen, "problem": "bad_sheet"},
        ) from exc
    names, renamed = make_unique_names(
        ["" if name.startswith(_UNNAMED) else name for name in frame.columns]
    )
    frame.columns = names
    warnings = []
    if sheet is None and len(sheets) > 1:
        others = ", ".join(f"'{name}'" for name in sheets[1:6]) + (
            ", ..." if len(sheets) > 6 else ""
        )
        warnings.append(
            f"The workbook has {len(sheets)} sheets; the first, '{chosen}', was read. "
            f"Upload it again with a sheet name to read another ({others})."
        )
    if header_row:
        warnings.append(
            f"The header of sheet '{chosen}' is on row {header_row + 1}; the {header_row} "
            "row(s) above it (titles, notes or blanks) were skipped."
        )
    return ExcelRead(
        frame=frame,
        sheet=chosen,
        sheets=sheets,
        renamed_columns=renamed,
        header_row=header_row,
        warnings=warnings,
    )


def find_header_row(path: Path, sheet: str) -> int:
    """Find the row holding the column names, skipping report titles and notes above it.

    A header row fills most of the table's width with text that is not a number. The
    first row wins whenever it looks like that; otherwise the first such row within the
    top rows that has data below it. Sheets without one keep the first row.

    Args:
        path: The workbook.
        sheet: The sheet's name.

    Returns:
        The 0-based sheet row of the header.
    """
    try:
        top = (
            fastexcel.read_excel(path)
            .load_sheet(sheet, header_row=None, skip_rows=0, n_rows=_HEADER_SCAN_ROWS)
            .to_polars()
        )
    except fastexcel.FastExcelError:
        return 0  # the full read reports what is wrong with the sheet
    rows = [
        [str(value).strip() for value in row if value is not None and str(value).strip()]
        for row in top.cast(pl.String).iter_rows()
    ]
    widest = max((len(cells) for cells in rows), default=0)
    if widest == 0:
        return 0
    needed = widest if widest <= 2 else math.ceil(widest / 2)
    for index, cells in enumerate(rows[:-1]):
        if len(cells) >= needed and not any(_NUMBER.match(cell) for cell in cells):
            return index
        if index == 0 and cells and len(cells) >= needed:
            return 0  # a full first row with numbers: a sheet without names, read as is
    return 0
