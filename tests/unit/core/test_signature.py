"""A model's input signature: built from the training rows, then used to read JSON rows.

The training rows are the sample data as Narrate's upload types them (Polars with type
inference, then pandas), so booleans, integers, floats and strings arrive with the dtypes
a real model version was trained on.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from narrate.core.data.types import infer_types
from narrate.core.signature import MAX_CATEGORIES, build_signature, check_rows
from narrate.errors import InvalidInput

SAMPLES = Path(__file__).parents[3] / "src" / "narrate" / "samples"


@cache
def uploaded(name: str) -> pd.DataFrame:
    text = pl.read_csv(SAMPLES / f"{name}.csv", infer_schema_length=0)
    typed, _ = infer_types(text)
    return typed.to_pandas()


@cache
def credit_signature() -> dict[str, Any]:
    return build_signature(uploaded("credit_data").drop(columns=["Status"]))


def by_name(signature: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in signature["columns"]}


def good_row(**changes: Any) -> dict[str, Any]:
    row = dict(credit_signature()["example_row"])
    row.update(changes)
    return row


# --- building ----------------------------------------------------------------------------


def test_signature_describes_each_column_from_the_uploaded_training_rows() -> None:
    frame = uploaded("credit_data").drop(columns=["Status"])
    signature = credit_signature()
    columns = by_name(signature)
    assert [c["name"] for c in signature["columns"]] == list(frame.columns)
    assert {name: c["type"] for name, c in columns.items()} == {
        "Seniority": "integer",
        "Home": "category",
        "Time": "integer",
        "Age": "integer",
        "Marital": "category",
        "Records": "boolean",
        "Job": "category",
        "Expenses": "integer",
        "Income": "number",
        "Assets": "number",
        "Debt": "number",
        "Amount": "integer",
        "Price": "integer",
    }
    assert columns["Age"]["min"] == int(frame["Age"].min())
    assert columns["Age"]["max"] == int(frame["Age"].max())
    assert columns["Income"]["min"] == float(frame["Income"].min())
    assert columns["Income"]["nullable_seen"] is True
    assert columns["Age"]["nullable_seen"] is False
    counts = frame["Home"].value_counts()
    assert columns["Home"]["categories"] == list(counts.index)  # most frequent first
    assert columns["Home"]["categories_truncated"] is False
    assert sorted(columns["Records"]["categories"]) == [False, True]
    for name, column in columns.items():
        assert column["example"] in set(frame[name].dropna().tolist())
    # The example row is a real, complete row of the training data.
    example = signature["example_row"]
    assert all(value is not None for value in example.values())
    matches = (frame[list(example)] == pd.Series(example)).all(axis=1)
    assert matches.any()
    # Plain JSON: no NaN, no NumPy values.
    assert json.loads(json.dumps(signature, allow_nan=False)) == signature


def test_signature_limits_columns_to_the_models_and_names_one_that_is_absent() -> None:
    frame = uploaded("penguins")
    signature = build_signature(frame, ["island", "year"])
    assert [c["name"] for c in signature["columns"]] == ["island", "year"]
    assert set(signature["example_row"]) == {"island", "year"}
    with pytest.raises(InvalidInput, match="'beak'") as absent:
        build_signature(frame, ["island", "beak"])
    assert absent.value.code == "missing_column"
    assert absent.value.details == {"columns": ["beak"]}


def test_signature_types_dates_booleans_with_gaps_free_text_and_many_categories() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    frame = pl.DataFrame(
        {
            "when": pl.datetime_range(
                pl.datetime(2020, 1, 1),
                pl.datetime(2020, 1, 1) + pl.duration(hours=n - 1),
                "1h",
                eager=True,
            ),
            "flag": pl.Series([True, None, False] * (n // 3), dtype=pl.Boolean),
            "note": [f"free text number {i}" for i in range(n)],
            "code": [f"c{i % 1500}" for i in range(n)],
            "price": rng.normal(size=n),
        }
    ).to_pandas()
    columns = by_name(build_signature(frame))
    assert columns["when"]["type"] == "datetime"
    assert columns["when"]["min"] == "2020-01-01T00:00:00"
    assert columns["when"]["max"] == frame["when"].max().isoformat()
    assert columns["flag"]["type"] == "boolean"  # object dtype: booleans with gaps
    assert columns["flag"]["nullable_seen"] is True
    assert columns["note"]["type"] == "text"
    assert "categories" not in columns["note"]
    assert columns["code"]["type"] == "category"  # 1,500 values, each seen twice
    assert len(columns["code"]["categories"]) == MAX_CATEGORIES
    assert columns["code"]["categories_truncated"] is True
    assert columns["price"]["type"] == "number"


# --- checking ----------------------------------------------------------------------------


def test_checked_rows_have_the_models_dtypes_flags_and_extra_columns() -> None:
    rows = [
        good_row(),
        good_row(Home="castle", Income=None, Age=99, extra="x"),
        good_row(Age=" 41 ", Income="1500.5", Records="True", other=1),
    ]
    checked = check_rows(credit_signature(), rows)
    assert checked.flags == [
        [],
        ["missing:Income", "out_of_range:Age", "unseen_category:Home"],
        ["out_of_range:Income"],
    ]
    assert checked.extra_columns == ["extra", "other"]
    frame = checked.frame
    assert list(frame.columns) == [c["name"] for c in credit_signature()["columns"]]
    assert frame["Age"].dtype == np.float64
    assert frame["Age"].tolist() == [rows[0]["Age"], 99.0, 41.0]
    assert frame["Home"].dtype == object
    assert frame["Home"].tolist() == [rows[0]["Home"], "castle", rows[2]["Home"]]
    assert frame["Records"].dtype == bool  # as the upload gave booleans without gaps
    assert frame["Records"].tolist() == [rows[0]["Records"], rows[1]["Records"], True]
    assert np.isnan(frame["Income"].iloc[1])
    assert frame.index.tolist() == [0, 1, 2]


def test_numbers_for_a_category_become_the_category_training_knew() -> None:
    frame = pd.DataFrame(
        {
            "zip": pd.Series(["41", "7", "41", "x"], dtype=object),
            "size": pd.Series(["2.5", "3.0", "2.5", "3.0"], dtype=object),
        }
    )
    signature = build_signature(frame)
    rows = [{"zip": 41, "size": 2.5}, {"zip": 41.0, "size": 3}, {"zip": 8, "size": 3.0}]
    checked = check_rows(signature, rows)
    assert checked.columns["zip"].tolist() == ["41", "41", "8"]
    assert checked.columns["size"].tolist() == ["2.5", "3.0", "3.0"]  # "3.0" is what it knew
    assert checked.flags == [[], [], ["unseen_category:zip"]]


def test_booleans_read_from_true_false_words_and_zero_one_and_keep_gaps() -> None:
    signature = credit_signature()
    rows = [good_row(Records=v) for v in (True, "false", " TRUE ", 0, 1, None)]
    checked = check_rows(signature, rows)
    assert checked.columns["Records"].tolist() == [True, False, True, False, True, None]
    assert checked.columns["Records"].dtype == object  # a gap: pandas' object booleans
    assert checked.flags[5] == ["missing:Records"]


def test_dates_read_iso_text_and_move_offsets_to_the_columns_time() -> None:
    frame = pd.DataFrame({"when": pd.to_datetime(["2021-01-01 00:00", "2021-06-30 12:00", None])})
    signature = build_signature(frame)
    rows = [
        {"when": "2021-03-01"},
        {"when": "2021-03-01T10:30:00+02:00"},
        {"when": "2021-03-01 10:30:00Z"},
        {"when": "2019-12-31T23:59:59"},
        {"when": None},
    ]
    checked = check_rows(signature, rows)
    assert checked.columns["when"].dtype == np.dtype("datetime64[us]")
    assert [str(v) for v in checked.frame["when"]] == [
        "2021-03-01 00:00:00",
        "2021-03-01 08:30:00",
        "2021-03-01 10:30:00",
        "2019-12-31 23:59:59",
        "NaT",
    ]
    assert checked.flags == [[], [], [], ["out_of_range:when"], ["missing:when"]]


def test_empty_text_and_nan_are_missing_values() -> None:
    checked = check_rows(
        credit_signature(), [good_row(Income="", Age=float("nan"), Records=" ", Home=None)]
    )
    assert checked.flags == [["missing:Age", "missing:Home", "missing:Income", "missing:Records"]]


def _refused(rows: list[Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        check_rows(credit_signature(), rows)
    return refused.value


REFUSALS = [
    ("row-not-an-object", [[1, 2]], "wrong_type", 0, None, "rows[0] is a list"),
    ("column-absent", [{"Age": 30}], "missing_column", 0, "Seniority", "has no 'Seniority'"),
    ("object-as-value", [good_row(Home={"a": 1})], "wrong_type", 0, "Home", "got an object"),
    ("list-as-number", [good_row(Age=[30])], "wrong_type", 0, "Age", "got a list"),
    ("bool-as-number", [good_row(Age=True)], "wrong_type", 0, "Age", "got true/false"),
    ("word-as-number", [good_row(Age="abc")], "unparseable_value", 0, "Age", '"abc" is not'),
    ("infinite-number", [good_row(Age="inf")], "unparseable_value", 0, "Age", "a finite"),
    ("huge-number", [good_row(Age=10**400)], "unparseable_value", 0, "Age", "a finite"),
    ("maybe-as-boolean", [good_row(Records="maybe")], "unparseable_value", 0, "Records", "true"),
    ("two-as-boolean", [good_row(Records=2)], "unparseable_value", 0, "Records", "true or"),
]


@pytest.mark.parametrize(
    ("rows", "code", "row", "column", "message"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_rows_that_cant_be_read_are_refused_naming_row_and_column(
    rows: list[Any], code: str, row: int, column: str | None, message: str
) -> None:
    error = _refused(rows)
    assert error.code == code
    assert error.status == 422
    assert error.details == {"row": row, "column": column}
    assert message in error.message
    assert f"rows[{row}]" in error.message
    if column is not None:
        assert f"'{column}'" in error.message


def test_dates_must_be_iso_text() -> None:
    signature = build_signature(pd.DataFrame({"when": pd.to_datetime(["2021-01-01"])}))
    for value, code in (("2021-13-45", "unparseable_value"), (20210101, "wrong_type")):
        with pytest.raises(InvalidInput) as refused:
            check_rows(signature, [{"when": "2021-01-02"}, {"when": value}])
        assert refused.value.code == code
        assert refused.value.details == {"row": 1, "column": "when"}
        assert "ISO 8601" in refused.value.message


def test_the_first_problem_in_row_order_is_reported() -> None:
    # Row 1 has a problem in a late column, row 2 in the first: row 1 is reported.
    rows = [good_row(), good_row(Price="x"), good_row(Seniority="y"), 7]
    assert _refused(rows).details == {"row": 1, "column": "Price"}
    # In one row, the earlier column (in the signature's order) comes first.
    rows = [good_row(), good_row(Price="x", Seniority="y")]
    assert _refused(rows).details == {"row": 1, "column": "Seniority"}
    # A row that is not an object is reported when it comes first.
    rows = [good_row(), "row", good_row(Age="x")]
    assert _refused(rows).details == {"row": 1, "column": None}
    # A missing column in an early row beats a bad value in a later one.
    rows = [good_row(), {k: v for k, v in good_row().items() if k != "Job"}, good_row(Age="x")]
    assert _refused(rows).details == {"row": 1, "column": "Job"}


def test_many_rows_are_read_alike_one_at_a_time_and_all_together() -> None:
    frame = uploaded("credit_data").drop(columns=["Status"]).head(500)
    records = json.loads(frame.to_json(orient="records"))
    together = check_rows(credit_signature(), records)
    for i in (0, 17, 499):
        alone = check_rows(credit_signature(), records[i : i + 1])
        assert alone.flags == together.flags[i : i + 1]
        for name, values in alone.columns.items():
            np.testing.assert_array_equal(values, together.columns[name][i : i + 1])
    numbers = together.frame.select_dtypes("number")
    expected = frame[numbers.columns].astype(float)
    pd.testing.assert_frame_equal(numbers, expected.reset_index(drop=True))
