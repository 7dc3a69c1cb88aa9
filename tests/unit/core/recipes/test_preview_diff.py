"""preview_recipe, check_data_loss and diff_frames."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest

from narrate.core.recipes import check_data_loss, diff_frames, fit_recipe, preview_recipe
from narrate.errors import InvalidInput


def test_preview_reports_rows_columns_stats_and_changed_cells(people: pl.DataFrame) -> None:
    recipe = {
        "steps": [
            {"step": "filter", "expression": "age >= 18"},
            {"step": "impute", "columns": ["income"], "strategy": "median"},
            {"step": "encode", "columns": ["city"], "method": "one_hot"},
            {"step": "drop", "columns": ["email"]},
        ]
    }
    preview = preview_recipe(people, recipe, target="churn")
    json.dumps(preview)
    assert preview["rows"] == {"total": 8, "sampled": False, "before": 8, "after": 5, "dropped": 3}
    assert preview["columns"]["removed"] == ["city", "email"]
    assert "city_Paris" in preview["columns"]["added"]
    assert preview["columns"]["changed"] == []
    assert preview["stats"]["income"]["before"]["missing"] == 2
    assert preview["stats"]["income"]["after"]["missing"] == 0
    assert preview["stats"]["city"]["after"] is None
    assert preview["sample"]["source_rows"] == [0, 3, 4, 6, 7]
    assert {"row": 4, "source_row": 7, "column": "income"} in preview["sample"]["changed_cells"]
    assert all(c["column"] == "income" for c in preview["sample"]["changed_cells"])
    assert preview["steps"][0]["training_only"] is True
    assert preview["warnings"] == []


def test_preview_warns_on_data_loss_and_empty_result(people: pl.DataFrame) -> None:
    lossy = preview_recipe(people, {"steps": [{"step": "filter", "expression": "age > 50"}]})
    assert [w["code"] for w in lossy["warnings"]] == ["data_loss"]
    empty = preview_recipe(people, {"steps": [{"step": "filter", "expression": "age > 500"}]})
    assert [w["code"] for w in empty["warnings"]] == ["empty_result"]
    assert empty["sample"]["rows"] == []
    target_gone = preview_recipe(
        people, {"steps": [{"step": "drop", "columns": ["churn"]}]}, target="churn"
    )
    assert target_gone["warnings"][0]["details"] == {"column": "churn"}


def test_preview_samples_large_data_stratified(credit: pl.DataFrame) -> None:
    preview = preview_recipe(
        credit,
        {"steps": [{"step": "scale", "columns": ["Income"]}]},
        target="Status",
        sample_rows=1000,
        seed=3,
    )
    assert preview["rows"]["sampled"] is True
    assert preview["rows"]["before"] == 1000
    assert preview["columns"]["changed"] == []


def test_preview_refuses_invalid_recipe(people: pl.DataFrame) -> None:
    with pytest.raises(InvalidInput) as info:
        preview_recipe(people, {"steps": [{"step": "scale", "columns": ["city"]}]})
    assert info.value.code == "invalid_recipe"


def test_preview_is_fast_on_a_sample(credit: pl.DataFrame) -> None:
    big = pl.concat([credit] * 20)
    recipe = {
        "steps": [
            {"step": "drop_missing", "columns": ["Home"]},
            {"step": "filter", "expression": "Age >= 18"},
            {"step": "derive", "name": "r", "expression": "Amount / (Income + 1)"},
            {"step": "impute", "columns": ["Income", "r"], "strategy": "median"},
            {"step": "scale", "columns": ["Income"]},
            {"step": "encode", "columns": ["Home"], "method": "one_hot"},
            {"step": "clip_outliers", "columns": ["Assets"]},
            {"step": "bin", "columns": ["Seniority"]},
            {"step": "rare_categories", "columns": ["Job"]},
            {"step": "encode", "columns": ["Job"], "method": "ordinal"},
        ]
    }
    preview_recipe(big, recipe, sample_rows=10_000)
    start = time.perf_counter()
    preview_recipe(big, recipe, sample_rows=10_000)
    assert time.perf_counter() - start < 1.0  # generous bound for slow CI; bench checks 150 ms


@pytest.mark.parametrize(
    ("before", "after", "columns", "codes"),
    [
        (100, 100, [], []),
        (100, 49, [], ["data_loss"]),
        (100, 50, [], []),
        (100, 0, [], ["empty_result"]),
        (100, 90, ["y"], ["data_loss"]),
        (0, 0, [], []),
    ],
    ids=["nothing", "over-half", "exactly-half", "empty", "target-removed", "empty-input"],
)
def test_check_data_loss(before: int, after: int, columns: list[str], codes: list[str]) -> None:
    warnings = check_data_loss(before, after, columns, "y")
    assert [w["code"] for w in warnings] == codes


def test_diff_frames_by_position() -> None:
    a = pl.DataFrame({"x": [1, 2, 3], "s": ["a", "b", "c"], "gone": [1, 1, 1]})
    b = pl.DataFrame({"x": [1.0, 5.0, 3.0, 4.0], "s": ["a", "b", "z", "d"], "new": [0, 0, 0, 0]})
    diff = diff_frames(a, b)
    json.dumps(diff)
    assert diff["schema"] == {
        "added": ["new"],
        "removed": ["gone"],
        "type_changed": [{"column": "x", "before": "Int64", "after": "Float64"}],
    }
    assert diff["rows"] == {"before": 3, "after": 4, "delta": 1}
    assert diff["stats"]["x"]["delta"]["max"] == 2.0
    changed = diff["changed_rows"]
    assert (changed["matched_by"], changed["compared"], changed["count"]) == ("position", 3, 2)
    assert changed["sample"][0] == {"row": 1, "changes": {"x": {"before": 2, "after": 5.0}}}
    assert changed["sample"][1]["changes"] == {"s": {"before": "c", "after": "z"}}


def test_diff_frames_by_key_and_with_recipe_output(people: pl.DataFrame) -> None:
    keyed = people.with_row_index("id")
    out, _ = fit_recipe(
        keyed,
        {
            "steps": [
                {"step": "filter", "expression": "age >= 18"},
                {"step": "impute", "columns": ["income"], "strategy": "constant", "value": 0},
            ]
        },
    )
    diff = diff_frames(keyed, out, key="id", sample_rows=1)
    assert diff["changed_rows"]["count"] == 1
    assert diff["changed_rows"]["sample"] == [
        {"id": 7, "changes": {"income": {"before": None, "after": 0.0}}}
    ]
    with pytest.raises(InvalidInput) as info:
        diff_frames(keyed, out, key="nope")
    assert info.value.code == "unknown_column"
