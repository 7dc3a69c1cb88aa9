"""infer_types and apply_type_overrides: parsing text columns and classifying kinds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import narrate
from narrate.core.data.readers import read_table
from narrate.core.data.types import ColumnKind, apply_type_overrides, infer_types, is_id_name
from narrate.errors import InvalidInput

SAMPLES = Path(narrate.__file__).parent / "samples"


@pytest.mark.parametrize(
    ("values", "dtype", "kind", "first"),
    [
        (["1", " 2 ", "NA", "-4"], pl.Int64, ColumnKind.INTEGER, 1),
        (["1.5", "2", None, "1e3"], pl.Float64, ColumnKind.FLOAT, 1.5),
        (["yes", "No", "YES", None], pl.Boolean, ColumnKind.BOOLEAN, True),
        (["Y", "N", "n"], pl.Boolean, ColumnKind.BOOLEAN, True),
        (["true", "true"], pl.Boolean, ColumnKind.BOOLEAN, True),
        (["0", "1", "1", "0"], pl.Int64, ColumnKind.BOOLEAN, 0),
        (["2024-01-31", "2023-12-01", "n/a"], pl.Date, ColumnKind.DATE, dt.date(2024, 1, 31)),
        (["31/01/2024", "13/12/2023"], pl.Date, ColumnKind.DATE, dt.date(2024, 1, 31)),
        (["01/31/2024", "12/13/2023"], pl.Date, ColumnKind.DATE, dt.date(2024, 1, 31)),
        (["2024/01/31", "2023/12/13"], pl.Date, ColumnKind.DATE, dt.date(2024, 1, 31)),
        (["31.01.2024", "13.12.2023"], pl.Date, ColumnKind.DATE, dt.date(2024, 1, 31)),
        (
            ["2024-01-31 10:30:00", "2023-12-01 08:00:05"],
            pl.Datetime("us"),
            ColumnKind.DATETIME,
            dt.datetime.fromisoformat("2024-01-31T10:30:00"),
        ),
        (
            ["2024-01-31T10:30:00", "2023-12-01T08:00:05"],
            pl.Datetime("us"),
            ColumnKind.DATETIME,
            dt.datetime.fromisoformat("2024-01-31T10:30:00"),
        ),
        (
            ["31/01/2024 10:30", "13/12/2023 08:00"],
            pl.Datetime("us"),
            ColumnKind.DATETIME,
            dt.datetime.fromisoformat("2024-01-31T10:30:00"),
        ),
        (["007", "012", "123"], pl.String, ColumnKind.CATEGORICAL, "007"),
        (["1.5", "abc", "2"], pl.String, ColumnKind.CATEGORICAL, "1.5"),
        (["yes", "no", "maybe"], pl.String, ColumnKind.CATEGORICAL, "yes"),
        (["2024-01-31", "yesterday"], pl.String, ColumnKind.CATEGORICAL, "2024-01-31"),
        (["1.5", " ", "2"], pl.String, ColumnKind.CATEGORICAL, "1.5"),
    ],
    ids=[
        "int-with-spaces-and-NA",
        "float-with-exponent",
        "yes-no",
        "y-n",
        "true-only",
        "zero-one-ints",
        "iso-date",
        "day-first-date",
        "month-first-date",
        "year-slash-date",
        "dotted-date",
        "datetime-space",
        "datetime-T",
        "day-first-datetime",
        "leading-zero-codes-stay-text",
        "number-with-word-stays-text",
        "three-words-not-boolean",
        "date-with-word-stays-text",
        "number-with-blank-stays-text",
    ],
)
def test_infer_types_parses_text_columns(
    values: list[str | None], dtype: pl.DataType, kind: ColumnKind, first: object
) -> None:
    frame, kinds = infer_types(pl.DataFrame({"v": values}, schema={"v": pl.String}))
    assert frame.schema["v"] == dtype
    assert kinds["v"] == kind
    assert frame.get_column("v")[0] == first


def _frame(rows: int = 200) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [str(1000 + i) for i in range(rows)],
            "row": list(range(rows)),
            "uuid_like": [f"a{i:08x}f" for i in range(rows)],
            "plan": [["basic", "plus", "pro"][i % 3] for i in range(rows)],
            "comment": [f"customer {i} said the service was fine" for i in range(rows)],
            "amount": [i * 1.5 for i in range(rows)],
            "count": [i % 7 for i in range(rows)],
        }
    )


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("customer_id", ColumnKind.IDENTIFIER),
        ("row", ColumnKind.IDENTIFIER),
        ("uuid_like", ColumnKind.IDENTIFIER),
        ("plan", ColumnKind.CATEGORICAL),
        ("comment", ColumnKind.TEXT),
        ("amount", ColumnKind.FLOAT),
        ("count", ColumnKind.INTEGER),
    ],
    ids=["named-id", "dense-unique-int", "unique-code", "few-levels", "free-text", "float", "int"],
)
def test_infer_types_classifies_kinds(column: str, kind: ColumnKind) -> None:
    _, kinds = infer_types(_frame())
    assert kinds[column] == kind


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("customer_id", True),
        ("customerId", True),
        ("UUID", True),
        ("order key", True),
        ("paid", False),
        ("monkey", False),
        ("idea", False),
    ],
    ids=["snake", "camel", "upper", "spaced", "paid", "monkey", "idea"],
)
def test_is_id_name_matches_whole_words(name: str, expected: bool) -> None:
    assert is_id_name(name) is expected


def test_infer_types_on_credit_sample_gives_expected_kinds() -> None:
    frame = read_table(SAMPLES / "credit_data.csv", filename="credit_data.csv").frame
    typed, kinds = infer_types(frame)
    assert typed.schema["Income"] == pl.Float64
    assert kinds["Status"] == ColumnKind.CATEGORICAL
    assert kinds["Records"] == ColumnKind.BOOLEAN
    assert kinds["Age"] == ColumnKind.INTEGER


@pytest.mark.parametrize(
    ("values", "kind", "dtype", "expected"),
    [
        (["1", "2", None], "integer", pl.Int64, [1, 2, None]),
        (["1.5", "x"], "text", pl.String, ["1.5", "x"]),
        (["yes", "no"], "boolean", pl.Boolean, [True, False]),
        (
            ["13/01/2024", "01/02/2024"],
            "date",
            pl.Date,
            [dt.date(2024, 1, 13), dt.date(2024, 2, 1)],
        ),
        (["a", "b"], "categorical", pl.String, ["a", "b"]),
    ],
    ids=["to-integer", "to-text", "to-boolean", "to-date-day-first", "to-categorical"],
)
def test_apply_type_overrides_converts_to_chosen_kind(
    values: list[str | None], kind: str, dtype: pl.DataType, expected: list[object]
) -> None:
    frame, kinds = apply_type_overrides(pl.DataFrame({"v": values}), {"v": kind})
    assert frame.schema["v"] == dtype
    assert frame.get_column("v").to_list() == expected
    assert kinds["v"] == ColumnKind(kind)


def test_apply_type_overrides_turns_whole_floats_into_integers() -> None:
    frame, _ = apply_type_overrides(pl.DataFrame({"v": [1.0, 2.0, None]}), {"v": "integer"})
    assert frame.get_column("v").to_list() == [1, 2, None]


def test_apply_type_overrides_names_first_failing_value_and_row() -> None:
    frame = pl.DataFrame({"price": ["10", "12.5", "n/a", "free", "9", "gratis"]})
    with pytest.raises(InvalidInput) as caught:
        apply_type_overrides(frame, {"price": "float"})
    error = caught.value
    assert error.code == "invalid_input"
    assert "'price' can't be converted to float" in error.message
    assert "2 value(s)" in error.message and "'free'" in error.message and "row 4" in error.message
    assert error.details == {
        "column": "price",
        "kind": "float",
        "failed": 2,
        "first_value": "free",
        "row": 4,
    }


def test_apply_type_overrides_rejects_fractional_floats_as_integers() -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_type_overrides(pl.DataFrame({"v": [1.0, 2.5]}), {"v": "integer"})
    assert caught.value.details["first_value"] == "2.5"


def test_apply_type_overrides_rejects_unknown_kind_listing_kinds() -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_type_overrides(pl.DataFrame({"v": [1]}), {"v": "money"})
    assert caught.value.code == "invalid_input"
    assert "'money' is not a column type" in caught.value.message
    assert "categorical" in caught.value.message


def test_apply_type_overrides_rejects_unknown_column() -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_type_overrides(pl.DataFrame({"v": [1]}), {"w": "text"})
    assert caught.value.code == "invalid_input"
    assert "no column named 'w'" in caught.value.message


def test_infer_types_in_place_converts_the_given_frame_and_matches_a_copying_run() -> None:
    # More columns than one parse batch, a column that needs the trimmed second round,
    # and one that stays text.
    columns = {f"n{i}": [str(i), str(i + 1), None] for i in range(6)}
    columns |= {"trimmed": [" 1", "NA", "3 "], "words": ["a", "b", "c"]}
    copied, copied_kinds = infer_types(pl.DataFrame(columns))
    frame = pl.DataFrame(columns)
    converted, kinds = infer_types(frame, in_place=True)
    assert converted is frame
    assert frame.schema == copied.schema
    assert frame.get_column("trimmed").to_list() == [1, None, 3]
    assert converted.equals(copied) and kinds == copied_kinds


def test_infer_types_leaves_the_given_frame_alone_by_default() -> None:
    frame = pl.DataFrame({"n": ["1", "2"]})
    converted, _ = infer_types(frame)
    assert frame.schema["n"] == pl.String
    assert converted.schema["n"] == pl.Int64
