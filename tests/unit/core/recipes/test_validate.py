"""Symbolic validation: every issue found, located by step, parameter and column."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from narrate.core.recipes import RecipeIssue, raise_if_invalid, validate_recipe
from narrate.errors import InvalidInput

SCHEMA = {
    "age": pl.Int64(),
    "income": pl.Float64(),
    "city": pl.String(),
    "signup": pl.Date(),
    "churn": pl.Int64(),
}


def issues_for(*steps: dict[str, Any], target: str | None = None) -> list[RecipeIssue]:
    return validate_recipe({"steps": list(steps)}, SCHEMA, target=target)


def test_valid_recipe_has_no_issues() -> None:
    assert (
        issues_for(
            {"step": "drop_missing", "columns": ["age"]},
            {"step": "filter", "expression": "age >= 18"},
            {"step": "derive", "name": "ratio", "expression": "income / (age + 1)"},
            {"step": "impute", "columns": ["income", "ratio"], "strategy": "median"},
            {"step": "scale", "columns": ["income", "ratio"]},
            {"step": "encode", "columns": ["city"], "method": "one_hot"},
            {"step": "scale", "columns": ["city_Paris"]},
            {"step": "datetime_parts", "columns": ["signup"], "parts": ["year"]},
            {"step": "scale", "columns": ["signup_year"]},
            {"step": "encode", "columns": ["signup_year"], "method": "target"},
            target="churn",
        )
        == []
    )


def test_column_removed_by_earlier_step_names_both_steps() -> None:
    issues = issues_for(
        {"step": "drop", "columns": ["income"]},
        {"step": "scale", "columns": ["income"]},
    )
    assert len(issues) == 1
    issue = issues[0]
    assert (issue.step_index, issue.step, issue.parameter, issue.column, issue.code) == (
        1,
        "scale",
        "columns",
        "income",
        "column_removed",
    )
    assert "removed by step 1 (drop_columns)" in issue.message
    assert "step 2 (scale)" in issue.message


def test_unknown_column() -> None:
    [issue] = issues_for({"step": "impute", "columns": ["salary"], "strategy": "mean"})
    assert issue.code == "unknown_column"
    assert issue.column == "salary"
    assert "'salary' does not exist" in issue.message


def test_wrong_type_scaling_text() -> None:
    [issue] = issues_for({"step": "scale", "columns": ["city"]})
    assert issue.code == "wrong_type"
    assert "'city' is text" in issue.message
    assert "numeric" in issue.message


def test_wrong_type_after_cast_is_seen() -> None:
    [issue] = issues_for(
        {"step": "cast", "columns": ["age"], "to": "string"},
        {"step": "scale", "columns": ["age"]},
    )
    assert issue.step_index == 1
    assert issue.code == "wrong_type"


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("age >= ", "not valid SQL"),
        ("salary > 3", "'salary' does not exist"),
        ("city + 1 > 2", "cannot run on this data"),
    ],
    ids=["syntax", "unknown-column", "type-error"],
)
def test_invalid_sql_expression_reports_parser_message(expression: str, words: str) -> None:
    [issue] = issues_for({"step": "filter", "expression": expression})
    assert issue.parameter == "expression"
    assert issue.code in ("invalid_expression", "unknown_column")
    assert words in issue.message


def test_filter_must_be_a_condition() -> None:
    [issue] = issues_for({"step": "filter", "expression": "age + 1"})
    assert issue.code == "not_a_condition"
    assert "true/false" in issue.message


def test_target_encoding_without_target() -> None:
    [issue] = issues_for({"step": "encode", "columns": ["city"], "method": "target"})
    assert issue.code == "missing_target"
    assert issue.parameter == "target"
    assert "needs a target" in issue.message


def test_all_issues_are_returned_and_disabled_steps_skipped() -> None:
    issues = issues_for(
        {"step": "scale", "columns": ["nope"]},
        {"step": "scale", "columns": ["city"], "enabled": False},
        {"step": "text", "columns": ["age"], "operation": "lowercase"},
        {"step": "datetime_parts", "columns": ["income"]},
    )
    assert [(i.step_index, i.code) for i in issues] == [
        (0, "unknown_column"),
        (2, "wrong_type"),
        (3, "wrong_type"),
    ]


def test_rename_into_existing_name_and_parse_errors_become_issues() -> None:
    [issue] = issues_for({"step": "rename", "mapping": {"age": "income"}})
    assert issue.code == "duplicate_column"
    [parse_issue] = validate_recipe({"steps": [{"step": "nope"}]}, SCHEMA)
    assert parse_issue.code == "unknown_step"


def test_validate_accepts_polars_schema() -> None:
    assert (
        validate_recipe({"steps": [{"step": "scale", "columns": ["age"]}]}, pl.Schema(SCHEMA)) == []
    )


def test_raise_if_invalid_names_first_issue_and_lists_all() -> None:
    issues = issues_for({"step": "scale", "columns": ["city"]}, {"step": "scale", "columns": ["x"]})
    raise_if_invalid([])
    with pytest.raises(InvalidInput) as info:
        raise_if_invalid(issues)
    assert info.value.code == "invalid_recipe"
    assert info.value.message.startswith("Step 1 (scale): Column 'city' is text")
    assert "1 more issue" in info.value.message
    assert [i["step_index"] for i in info.value.details["issues"]] == [0, 1]
