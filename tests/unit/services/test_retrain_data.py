"""Logged inputs and actuals turned into training rows in the training data's schema."""

from __future__ import annotations

from datetime import date

import orjson
import polars as pl
import pytest

from narrate.errors import DataProblem
from narrate.services.retrain_data import training_rows

SCHEMA = pl.Schema(
    {
        "Status": pl.String,
        "Age": pl.Int64,
        "Income": pl.Float64,
        "Home": pl.String,
        "Owner": pl.Boolean,
        "Since": pl.Date,
    }
)


def _log(inputs: list[dict[str, object]], actuals: list[object]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "inputs": [orjson.dumps(i).decode() for i in inputs],
            "actual": [orjson.dumps(a).decode() for a in actuals],
        }
    )


def test_inputs_take_the_training_types_and_the_actual_becomes_the_target() -> None:
    log = _log(
        [
            {"Age": 41, "Income": 120.5, "Home": "rent", "Owner": True, "Since": "2020-05-01"},
            {"Age": "37", "Income": None, "Home": "owner", "Owner": "false"},
        ],
        ["good", "bad"],
    )
    out = training_rows(log, SCHEMA, "Status", ["Age", "Income", "Home", "Owner", "Since"])
    assert out.schema == SCHEMA
    assert out.to_dicts() == [
        {
            "Status": "good",
            "Age": 41,
            "Income": 120.5,
            "Home": "rent",
            "Owner": True,
            "Since": date(2020, 5, 1),
        },
        {
            "Status": "bad",
            "Age": 37,
            "Income": None,
            "Home": "owner",
            "Owner": False,
            "Since": None,
        },
    ]


def test_a_numeric_target_is_cast_and_a_column_the_log_lacks_is_empty() -> None:
    schema = pl.Schema({"y": pl.Float64, "x": pl.Float64, "extra": pl.String})
    out = training_rows(_log([{"x": 1}, {"x": 2.5}], [3, 4.25]), schema, "y", ["x"])
    assert out.to_dicts() == [
        {"y": 3.0, "x": 1.0, "extra": None},
        {"y": 4.25, "x": 2.5, "extra": None},
    ]


def test_an_actual_that_does_not_fit_the_target_names_it() -> None:
    schema = pl.Schema({"y": pl.Float64, "x": pl.Float64})
    with pytest.raises(DataProblem) as caught:
        training_rows(_log([{"x": 1}], ["many"]), schema, "y", ["x"])
    assert caught.value.code == "retrain_bad_actual"
    assert caught.value.details == {"column": "y"}
