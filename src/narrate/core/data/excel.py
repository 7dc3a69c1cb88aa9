"""Read Excel workbooks (.xlsx) through fastexcel/calamine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl

from narrate.core.data.columns import make_unique_names
from narrate.errors import DataProblem, InvalidInput, UnsupportedMediaType

__all__ = ["ExcelRead", "read_excel"]

_UNNAMED = "__UNNAMED__"


@dataclass
class ExcelRead:
    """One sheet of a workbook, and the names of all its sheets."""

    frame: pl.DataFrame
    sheet: str
    sheets: list[str]
    renamed_columns: dict[str, str]


def read_excel(path: Path, *, filename: str, sheet: str | None) -> ExcelRead:
    """Read one sheet of an .xlsx workbook.

    Args:
        path: The uploaded file.
        filename: The name the user gave it (for messages).
        sheet: The sheet to read; None reads the first one.

    Returns:
        The sheet as a frame, with empty column names filled in.

    Raises:
        UnsupportedMediaType: The file is not a readable workbook.
        InvalidInput: ``sheet`` is not in the workbook.
        DataProblem: The workbook has no sheets, or the sheet is empty.
    """
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
    try:
        frame = pl.read_excel(path, sheet_name=chosen, engine="calamine", infer_schema_length=None)
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
    return ExcelRead(frame=frame, sheet=chosen, sheets=sheets, renamed_columns=renamed)
