"""Batch scoring checks a chunk column-wise: values in the model's types, and each row's
flags, including values that are not of their column's type (scored as missing)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from narrate.errors import InvalidInput
from narrate.services.batch import prepare_chunk

SIGNATURE = {
    "columns": [
        {"name": "age", "type": "integer", "min": 18, "max": 75},
        {"name": "home", "type": "category", "categories": ["rent", "owner"]},
        {"name": "records", "type": "boolean", "categories": [False, True]},
        {"name": "code", "type": "category", "categories": ["41", "7"]},
        {"name": "since", "type": "datetime", "min": "2020-01-01", "max": "2024-01-01"},
    ]
}


def test_values_are_converted_and_each_row_is_flagged() -> None:
    chunk = pl.DataFrame(
        {
            "age": ["30", " 41 ", "abc", "", "90"],
            "home": ["rent", "castle", None, "owner", "rent"],
            "records": ["no", "YES", "maybe", "t", None],
            "code": [41.0, 7.0, 3.5, None, 41.0],
            "since": ["2021-05-01", "not a date", None, "2022-01-01", "2023-03-03"],
            "extra": [1, 2, 3, 4, 5],
        }
    )
    frame, flags = prepare_chunk(SIGNATURE, chunk, filename="new.csv")
    assert list(frame.columns) == ["age", "home", "records", "code", "since"]
    np.testing.assert_array_equal(frame["age"].to_numpy(), [30, 41, np.nan, np.nan, 90])
    assert frame["records"].tolist() == [False, True, None, True, None]
    assert frame["code"].tolist() == ["41", "7", "3.5", None, "41"]
    assert frame["home"].tolist() == ["rent", "castle", None, "owner", "rent"]
    assert flags.to_list() == [
        [],
        ["invalid:since", "unseen_category:home"],
        ["invalid:age", "invalid:records", "missing:home", "missing:since", "unseen_category:code"],
        ["missing:age", "missing:code"],
        ["missing:records", "out_of_range:age"],
    ]


def test_a_missing_model_column_fails_naming_the_file_and_column() -> None:
    chunk = pl.DataFrame({"age": [30]})
    with pytest.raises(InvalidInput) as caught:
        prepare_chunk(SIGNATURE, chunk, filename="new.csv")
    assert caught.value.code == "missing_column"
    assert caught.value.details["file"] == "new.csv"
    assert caught.value.details["column"] == "home"
