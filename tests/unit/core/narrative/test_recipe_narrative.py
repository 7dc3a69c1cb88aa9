"""The recipe-impact narrative on recipes really fitted on sample data: rows removed and
why, columns filled, added and dropped; every number of the text is one of its facts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import narrate
from narrate.core.data.readers import read_table
from narrate.core.data.types import infer_types
from narrate.core.narrative.grounding import ungrounded_numbers
from narrate.core.narrative.recipe import describe_recipe_impact, frame_summary
from narrate.core.recipes.fit import fit_recipe
from narrate.core.recipes.model import Recipe

SAMPLES = Path(narrate.__file__).parent / "samples"


@pytest.fixture(scope="module")
def credit() -> pl.DataFrame:
    frame, _ = infer_types(read_table(SAMPLES / "credit_data.csv", filename="credit.csv").frame)
    return frame


def _impact(frame: pl.DataFrame, steps: list[dict[str, Any]]) -> dict[str, Any]:
    out, fitted = fit_recipe(frame, {"steps": steps}, target=None, seed=0)
    told = describe_recipe_impact(
        fitted.recipe.to_dict()["steps"], frame_summary(frame), frame_summary(out)
    )
    assert ungrounded_numbers(told["text"], told["facts"]) == [], told["text"]
    return told


def _facts(told: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["value"] for f in told["facts"]}


def test_dropping_rows_with_missing_income_says_how_many_and_why(credit: pl.DataFrame) -> None:
    told = _impact(credit, [{"step": "drop_missing", "columns": ["Income"]}])
    missing = credit["Income"].null_count()
    share = round(missing / credit.height * 100, 1)
    assert told["text"].startswith(
        f"Removed {missing:,} rows ({share:.1f}%), by dropping rows with empty 'Income'; "
        f"{credit.height - missing:,} remain."
    )
    assert _facts(told)["rows removed"] == missing


def test_imputing_dropping_and_date_parts(credit: pl.DataFrame) -> None:
    frame = credit.with_columns(
        pl.Series(
            "opened", [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(credit.height)]
        ),
        pl.Series("loan_ref", [f"L{i:05d}" for i in range(credit.height)]),
    )
    steps = [
        {"step": "impute", "columns": ["Income"], "strategy": "median"},
        {"step": "datetime_parts", "columns": ["opened"], "parts": ["year", "month", "weekday"]},
        {"step": "drop_columns", "columns": ["loan_ref"]},
    ]
    told = _impact(frame, steps)
    text = told["text"]
    missing = credit["Income"].null_count()
    assert f"The row count is unchanged ({credit.height:,})." in text
    assert f"'Income' is now median-filled ({missing:,} empty values filled)." in text
    assert "Added 3 date-part column(s): " in text
    assert "Dropped 'opened' and 'loan_ref'." in text
    before = sum(frame.null_count().row(0))
    assert f"Empty values: {before:,} before, {before - missing:,} after." in text


def test_a_filter_and_renames_are_named(credit: pl.DataFrame) -> None:
    told = _impact(
        credit,
        [
            {"step": "filter", "expression": "Age >= 25 AND Amount < 2000"},
            {"step": "rename", "mapping": {"Seniority": "years_at_job2"}},
            {"step": "scale", "columns": ["Price"]},
        ],
    )
    text = told["text"]
    assert "by the filter `Age >= 25 AND Amount < 2000`" in text
    assert "Renamed 'Seniority' to 'years_at_job2'." in text
    assert "'Price' is scaled." in text


def test_many_new_columns_are_counted_not_all_listed(credit: pl.DataFrame) -> None:
    told = _impact(credit, [{"step": "encode", "columns": ["Home", "Marital", "Job"]}])
    facts = _facts(told)
    assert facts["columns added"] > 5
    assert f"and {facts['other added columns']:,} more." in told["text"]
    assert "date-part" not in told["text"]


def test_nothing_changed_and_added_rows_read_plainly() -> None:
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    same = describe_recipe_impact([{"step": "sort", "columns": ["a"]}], *[frame_summary(frame)] * 2)
    assert same["text"] == "The row count is unchanged (3)."
    more = describe_recipe_impact([], frame_summary(frame), frame_summary(pl.concat([frame] * 2)))
    assert more["text"] == "Added 3 rows (3 → 6)."
    assert ungrounded_numbers(more["text"], more["facts"]) == []


def test_a_changed_number_is_caught(credit: pl.DataFrame) -> None:
    told = _impact(credit, [{"step": "drop_missing", "columns": ["Income"]}])
    wrong = told["text"].replace("remain.", "remain (about 4,000).")
    assert ungrounded_numbers(wrong, told["facts"]) == ["4,000"]


def test_recipe_steps_from_the_parsed_recipe_are_accepted() -> None:
    steps = Recipe.parse({"steps": [{"step": "drop", "columns": ["a"]}]}).to_dict()["steps"]
    frame = pl.DataFrame({"a": [1, None], "b": [1, 2]})
    told = describe_recipe_impact(steps, frame_summary(frame), frame_summary(frame.drop("a")))
    assert told["text"] == (
        "The row count is unchanged (2). Dropped 'a'. Empty values: 1 before, 0 after."
    )
