"""The input contract of a model version, and the check of raw rows against it.

:func:`build_signature` runs once, at training time, on the raw rows the model receives
(the training frame without the target): for each column its type, whether training saw
it empty, its range or its categories and a real example. The result is plain JSON and is
stored with the model version.

:func:`check_rows` runs on every prediction request. It turns JSON rows into one array
per column with the dtypes the model was trained on, refuses what can't be read (naming
the row and the column), and flags what the model can score but may score badly: empty
values, categories training never saw, numbers and dates outside the training range.
It works column by column with plain Python and NumPy; building a pandas DataFrame costs
more than scoring a row, so :attr:`CheckedRows.frame` is only built when asked for, and
:meth:`narrate.core.serving.ServingModel.predict_output` takes :attr:`CheckedRows.columns`
directly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from narrate.core.data.parsing import FALSE_WORDS, TRUE_WORDS
from narrate.errors import InvalidInput

__all__ = ["MAX_CATEGORIES", "TYPES", "CheckedRows", "build_signature", "check_rows"]

VERSION = 1
TYPES = ("number", "integer", "boolean", "category", "datetime", "text")
#: Categories kept per column (the most frequent); past this unseen values are not flagged.
MAX_CATEGORIES = 1_000
#: A text column with at most this many distinct values is a category ...
_CATEGORY_DISTINCT = 50
#: ... and so is one whose distinct values are at most this share of its values.
_CATEGORY_SHARE = 0.5
#: Below this many rows plain Python beats NumPy's per-call cost (and a list finds a
#: category faster than a set built for the purpose).
_FEW_ROWS = 16
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class CheckedRows:
    """Rows that passed :func:`check_rows`.

    Attributes:
        columns: One array per signature column, in signature order: floats for numbers
            and integers (NaN when missing), ``object`` arrays of ``str`` or None for
            categories and text, booleans (``object`` with None when one is missing or
            training had missing values), ``datetime64[us]`` for dates (NaT when missing).
        flags: Per row, sorted: ``missing:<column>``, ``unseen_category:<column>``,
            ``out_of_range:<column>``.
        extra_columns: Keys of the rows that are not model columns (ignored), sorted.
    """

    columns: dict[str, np.ndarray]
    flags: list[list[str]]
    extra_columns: list[str]

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with the signature's columns and the model's dtypes."""
        n = len(self.flags)
        return pd.DataFrame(
            {name: pd.Series(a, dtype=a.dtype, copy=False) for name, a in self.columns.items()},
            index=pd.RangeIndex(n),
        )


# --- building a signature --------------------------------------------------------------


def build_signature(frame: pd.DataFrame, columns: list[str] | None = None) -> dict[str, Any]:
    """Describe the columns a model takes, from the raw rows it was trained on.

    Args:
        frame: The training rows as the model received them (without the target).
        columns: The model's columns, in order (e.g. ``ServingModel.columns``); default
            every column of ``frame``.

    Returns:
        ``{"version", "columns": [{"name", "type", "nullable_seen", ...}], "example_row"}``;
        plain JSON (no NaN, no NumPy values). Numbers, integers and dates carry ``min``
        and ``max`` (dates as ISO text); categories and booleans their ``categories``,
        most frequent first (at most :data:`MAX_CATEGORIES`, with
        ``categories_truncated``); every column an ``example`` from the data.

    Raises:
        InvalidInput: A named column is not in ``frame``.
    """
    names = [str(c) for c in frame.columns] if columns is None else [str(c) for c in columns]
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise InvalidInput(
            f"The training rows lack the column(s) {', '.join(map(repr, absent))}.",
            code="missing_column",
            details={"columns": absent},
        )
    described = [_describe(name, frame[name]) for name in names]
    return {
        "version": VERSION,
        "columns": described,
        "example_row": _example_row(frame, names, described),
    }


def _describe(name: str, column: pd.Series) -> dict[str, Any]:
    kind = _type_of(column)
    if kind == "datetime" and getattr(column.dtype, "tz", None) is not None:
        # Rows are compared (and the model's date parts taken) in local wall-clock time.
        zone = str(column.dtype.tz)  # type: ignore[union-attr]
        column = column.dt.tz_localize(None)
    else:
        zone = None
    present = column.dropna()
    entry: dict[str, Any] = {
        "name": name,
        "type": kind,
        "nullable_seen": bool(len(present) < len(column)),
    }
    if zone:
        entry["timezone"] = zone
    if kind in ("number", "integer"):
        values = present.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            entry["min"], entry["max"] = (int(low), int(high)) if kind == "integer" else (low, high)
    elif kind == "datetime" and len(present):
        # Whole microseconds, outward, as check_rows reads dates.
        low, high = present.min().floor("us"), present.max().ceil("us")
        entry["min"], entry["max"] = low.isoformat(), high.isoformat()
    elif kind in ("category", "boolean"):
        values = present if kind == "boolean" else present.astype(object).map(_model_text)
        counts = values.value_counts(sort=True)
        kept = [_json_value(v) for v in counts.index[:MAX_CATEGORIES]]
        entry["categories"] = [bool(v) for v in kept] if kind == "boolean" else kept
        entry["categories_truncated"] = len(counts) > MAX_CATEGORIES
    entry["example"] = _json_value(present.iloc[0]) if len(present) else None
    return entry


def _type_of(column: pd.Series) -> str:
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    present = column.dropna()
    if len(present) and all(isinstance(v, bool | np.bool_) for v in present.tolist()):
        return "boolean"  # a boolean column with missing values reaches pandas as objects
    distinct = present.astype(object).map(_model_text).nunique()
    if distinct <= _CATEGORY_DISTINCT or distinct <= _CATEGORY_SHARE * len(present):
        return "category"
    return "text"


def _model_text(value: Any) -> str:
    """A category as the model's encoder sees it (``as_text``: ``astype(str)``)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bool | int | str):
        return value
    return _model_text(value)


def _example_row(frame: pd.DataFrame, names: list[str], described: list[dict[str, Any]]) -> Any:
    if not len(frame) or not names:
        return {}
    filled = frame[names].notna().sum(axis=1).to_numpy()
    position = int(np.argmax(filled))  # the first of the most complete rows
    row: dict[str, Any] = {}
    for name, entry in zip(names, described, strict=True):
        value = frame[name].iloc[position]
        if entry.get("timezone") and not pd.isna(value):
            value = value.tz_localize(None)
        row[name] = None if _is_missing(value) else _json_value(value)
    return row


def _is_missing(value: Any) -> bool:
    missing = pd.isna(value)
    return bool(missing) if isinstance(missing, bool | np.bool_) else False


# --- checking rows -----------------------------------------------------------------------


class _Refused(Exception):
    """The first value of a column that can't be read."""

    def __init__(self, row: int, code: str, message: str) -> None:
        super().__init__(message)
        self.row, self.code, self.message = row, code, message


def check_rows(signature: dict[str, Any], rows: list[Any]) -> CheckedRows:
    """Read JSON rows against a model's input signature.

    Args:
        signature: What :func:`build_signature` returned for the model.
        rows: The rows as parsed from JSON: one object of column values each.

    Returns:
        The columns with the model's dtypes, each row's flags and the extra keys.

    Raises:
        InvalidInput: The first problem in row order (``details={"row", "column"}``):
            ``wrong_type`` (a row that is not an object, an object or list as a value,
            true/false for a number, a number for a date ...), ``missing_column`` (a row
            without a model column; send null for an unknown value) or
            ``unparseable_value`` (``"abc"`` for a number, ``"2021-13-45"`` for a date).
    """
    first_bad = None
    if set(map(type, rows)) - {dict}:
        first_bad = next(i for i, row in enumerate(rows) if not isinstance(row, dict))
    checked = rows if first_bad is None else rows[:first_bad]
    refusals: list[tuple[int, int, InvalidInput]] = []
    if first_bad is not None:
        refusals.append((first_bad, -1, _not_an_object(first_bad, rows[first_bad])))
    columns: dict[str, np.ndarray] = {}
    flags: list[list[str]] = [[] for _ in checked]
    for position, spec in enumerate(signature["columns"]):
        name = spec["name"]
        try:
            values = _values(checked, name)
            array, marks = _READERS[spec["type"]](spec, values)
        except _Refused as refused:
            refusals.append((refused.row, position, _error(refused, name)))
            continue
        columns[name] = array
        for kind, indices in marks:
            if indices:
                label = f"{kind}:{name}"
                for i in indices:
                    flags[i].append(label)
    if refusals:
        raise min(refusals, key=lambda found: found[:2])[2]
    for row_flags in flags:
        if len(row_flags) > 1:
            row_flags.sort()
    names = {spec["name"] for spec in signature["columns"]}
    keys: set[str] = set().union(*rows) if rows else set()
    return CheckedRows(columns, flags, sorted(str(k) for k in keys - names))


def _values(rows: list[dict[str, Any]], name: str) -> list[Any]:
    try:
        return [row[name] for row in rows]
    except KeyError:
        row = next(i for i, found in enumerate(rows) if name not in found)
        raise _Refused(
            row,
            "missing_column",
            f"rows[{row}] has no '{name}'. Every row needs every column the model takes; "
            "send null where a value is unknown.",
        ) from None


def _not_an_object(row: int, value: Any) -> InvalidInput:
    return InvalidInput(
        f"rows[{row}] is {_json_kind(value)}, not an object of column values. "
        'Send each row as {"column": value, ...}.',
        code="wrong_type",
        details={"row": row, "column": None},
    )


def _error(refused: _Refused, name: str) -> InvalidInput:
    return InvalidInput(
        refused.message, code=refused.code, details={"row": refused.row, "column": name}
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, numbers.Number):
        return "a number"
    return f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # e.g. an integer too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _refuse(spec: dict[str, Any], row: int, value: Any, wanted: str, *, wrong: bool) -> _Refused:
    example = spec.get("example")
    hint = "" if example is None or isinstance(example, bool) else f" such as {_shown(example)}"
    got = f"{_json_kind(value)} ({_shown(value)})" if wrong else _shown(value)
    problem = f"expected {wanted}, got {got}" if wrong else f"{got} is not {wanted}"
    return _Refused(
        row,
        "wrong_type" if wrong else "unparseable_value",
        f"rows[{row}], column '{spec['name']}': {problem}. Send {wanted}{hint}, or null.",
    )


#: Per flag kind, the rows (indices) it applies to.
_Marks = list[tuple[str, list[int]]]
_PLAIN_NUMBERS = {int, float, type(None)}
_PLAIN_TEXTS = {str, type(None)}


def _rows_where(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)] if mask.any() else []


def _read_numbers(spec: dict[str, Any], values: list[Any]) -> tuple[np.ndarray, _Marks]:
    ranged = "min" in spec
    low, high = (spec["min"], spec["max"]) if ranged else (0, 0)
    if len(values) < _FEW_ROWS or not set(map(type, values)) <= _PLAIN_NUMBERS:
        floats = [_number(spec, i, value) for i, value in enumerate(values)]
        missing = [i for i, x in enumerate(floats) if x != x]
        outside = [i for i, x in enumerate(floats) if x < low or x > high] if ranged else []
        return np.array(floats, dtype=float), [("missing", missing), ("out_of_range", outside)]
    try:
        array = np.array(values, dtype=float)  # None becomes NaN
    except OverflowError:
        array = np.array([_number(spec, i, value) for i, value in enumerate(values)])
    infinite = np.isinf(array)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        _number(spec, first, values[first])  # refuses it
    marks: _Marks = [("missing", _rows_where(np.isnan(array)))]
    if ranged:
        marks.append(("out_of_range", _rows_where((array < low) | (array > high))))
    return array, marks


def _number(spec: dict[str, Any], row: int, value: Any) -> float:
    """One value of a number column: a number or numeric text; NaN when missing."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return math.nan
        try:
            number = float(text)
        except ValueError:
            raise _refuse(spec, row, value, "a number", wrong=False) from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        try:
            number = float(value)
        except OverflowError:  # an integer past float's range
            raise _refuse(spec, row, value, "a finite number", wrong=False) from None
    else:
        raise _refuse(spec, row, value, "a number", wrong=True)
    if math.isfinite(number) or (math.isnan(number) and not isinstance(value, str)):
        return number  # a NaN number (pandas' missing value) is read as null
    raise _refuse(spec, row, value, "a finite number", wrong=False)


def _number_text(value: Any, known: Any) -> str:
    """A number as a category: ``41`` and ``41.0`` are ``"41"``, unless training only
    knew ``"41.0"`` (JSON writers differ on whether a whole float keeps its ``.0``)."""
    if isinstance(value, numbers.Integral):
        whole = str(int(value))
        try:
            decimal = str(float(value))
        except OverflowError:
            return whole
    else:
        number = float(value)
        if not number.is_integer():
            return str(number)
        whole, decimal = str(int(number)), str(number)
    return decimal if whole not in known and decimal in known else whole


def _text(spec: dict[str, Any], row: int, value: Any, known: Any) -> str | None:
    """One value of a category or text column as the model's encoder sees it."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | np.bool_):
        word = str(bool(value))  # as training saw booleans: "True", "False"
        return word.lower() if word not in known and word.lower() in known else word
    if isinstance(value, numbers.Real):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, float) and math.isinf(value):
            raise _refuse(spec, row, value, "text or a finite number", wrong=False)
        return _number_text(value, known)
    raise _refuse(spec, row, value, "text or a number", wrong=True)


def _read_texts(spec: dict[str, Any], values: Any) -> tuple[np.ndarray, _Marks]:
    categories = spec.get("categories")
    known: Any = () if categories is None else categories
    if len(values) >= _FEW_ROWS and categories:
        known = set(categories)
    kinds = set(map(type, values))
    if kinds <= _PLAIN_TEXTS:
        texts = list(values)
    else:
        texts = [
            value if type(value) is str or value is None else _text(spec, i, value, known)
            for i, value in enumerate(values)
        ]
    array = np.empty(len(texts), dtype=object)
    array[:] = texts
    has_gaps = not kinds <= {str}  # null, or a NaN number
    missing = [i for i, text in enumerate(texts) if text is None] if has_gaps else []
    marks: _Marks = [("missing", missing)]
    if categories is not None and not spec.get("categories_truncated"):
        allowed = {*known, None} if len(texts) >= _FEW_ROWS else [*known, None]
        marks.append(("unseen_category", [i for i, t in enumerate(texts) if t not in allowed]))
    return array, marks


# The words the upload reads as booleans (true/false, yes/no, y/n, t/f, 1/0): a row sent
# as it is in the uploaded file must be read as training read it.
_TRUE_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}


def _is_gap(value: Any) -> bool:
    """Null, NaN or blank text: a missing value."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _boolean(spec: dict[str, Any], row: int, value: Any) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if _is_gap(value):
        return None
    if isinstance(value, str):
        word = _TRUE_WORDS.get(value.strip().lower())
        if word is None:
            raise _refuse(spec, row, value, "true or false", wrong=False)
        return word
    if isinstance(value, numbers.Real):
        if value not in (0, 1):
            raise _refuse(spec, row, value, "true or false", wrong=False)
        return bool(value)
    raise _refuse(spec, row, value, "true or false", wrong=True)


def _read_booleans(spec: dict[str, Any], values: list[Any]) -> tuple[np.ndarray, _Marks]:
    if set(map(type, values)) <= {bool, type(None)}:
        flags = values
    else:
        flags = [_boolean(spec, i, value) for i, value in enumerate(values)]
    missing = [i for i, flag in enumerate(flags) if flag is None]
    if missing or spec.get("nullable_seen"):
        array = np.empty(len(flags), dtype=object)  # how pandas holds booleans with gaps
        array[:] = flags
    else:
        array = np.array(flags, dtype=bool)
    marks: _Marks = [("missing", missing)]
    known = spec.get("categories")
    if known is not None:
        unseen = [i for i, flag in enumerate(flags) if flag is not None and flag not in known]
        marks.append(("unseen_category", unseen))
    return array, marks


def _moment(spec: dict[str, Any], row: int, value: Any, zone: dt.tzinfo) -> dt.datetime | None:
    if _is_gap(value):
        return None
    if not isinstance(value, str):
        raise _refuse(spec, row, value, "an ISO 8601 date as text", wrong=True)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise _refuse(spec, row, value, "an ISO 8601 date", wrong=False) from None
    if moment.tzinfo is not None:
        # The offset is honoured: the time moves to the column's zone (UTC for a column
        # without one) and is kept as wall-clock time, as training saw it.
        moment = moment.astimezone(zone).replace(tzinfo=None)
    return moment


def _read_datetimes(spec: dict[str, Any], values: list[Any]) -> tuple[np.ndarray, _Marks]:
    zone = _zone(spec.get("timezone"))
    moments = [_moment(spec, i, value, zone) for i, value in enumerate(values)]
    array = np.array(moments, dtype="datetime64[us]")  # None becomes NaT
    marks: _Marks = [("missing", [i for i, moment in enumerate(moments) if moment is None])]
    if "min" in spec:
        low, high = np.datetime64(spec["min"], "us"), np.datetime64(spec["max"], "us")
        marks.append(("out_of_range", _rows_where((array < low) | (array > high))))
    return array, marks


def _zone(name: str | None) -> dt.tzinfo:
    if not name:
        return dt.UTC
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):  # e.g. a fixed offset such as "+02:00"
        return pd.Timestamp("2000-01-01", tz=name).tzinfo or dt.UTC


_READERS: dict[str, Callable[[dict[str, Any], list[Any]], tuple[np.ndarray, _Marks]]] = {
    "number": _read_numbers,
    "integer": _read_numbers,
    "boolean": _read_booleans,
    "category": _read_texts,
    "text": _read_texts,
    "datetime": _read_datetimes,
}
