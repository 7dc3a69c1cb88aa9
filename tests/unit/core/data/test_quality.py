"""find_warnings: each quality problem gives a coded warning with numbers and a fix."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from narrate.core.data.pii import detect_pii
from narrate.core.data.profile import profile_frame
from narrate.core.data.quality import find_warnings
from narrate.core.data.types import infer_types
from narrate.core.recipes.fit import fit_recipe
from narrate.core.recipes.validate import validate_recipe

ROWS = 200


def _warnings(columns: dict[str, list[Any]], target: str | None = None) -> list[dict[str, Any]]:
    frame, kinds = infer_types(pl.DataFrame(columns))
    return find_warnings(profile_frame(frame, kinds, target=target), target=target)


def _only(warnings: list[dict[str, Any]], code: str) -> dict[str, Any]:
    found = [w for w in warnings if w["code"] == code]
    assert len(found) == 1, [w["code"] for w in warnings]
    return found[0]


BASE = {"n": [float(i % 17) for i in range(ROWS)]}


@pytest.mark.parametrize(
    ("columns", "code", "severity", "words", "fix"),
    [
        (
            {"x": [None if i % 10 == 0 else float(i % 9) for i in range(ROWS)]},
            "missing_values",
            "warning",
            "20 rows (10.0%)",
            {"step": "impute", "columns": ["x"], "strategy": "median"},
        ),
        (
            {"x": [None if i % 10 == 0 else ["red", "green"][i % 2] for i in range(ROWS)]},
            "missing_values",
            "warning",
            "most common value",
            {"step": "impute", "columns": ["x"], "strategy": "mode"},
        ),
        (
            {"x": [None if i % 4 else "a" for i in range(ROWS)]},
            "high_missing",
            "critical",
            "150 rows (75.0%)",
            {"step": "drop_columns", "columns": ["x"]},
        ),
        (
            {"x": ["same"] * ROWS},
            "constant",
            "warning",
            "'same'",
            {"step": "drop_columns", "columns": ["x"]},
        ),
        (
            {"x": ["a"] * (ROWS - 1) + ["b"]},
            "near_constant",
            "info",
            "99.5%",
            {"step": "drop_columns", "columns": ["x"]},
        ),
        (
            {"user_id": [f"u{i}" for i in range(ROWS)]},
            "id_like",
            "info",
            "200 distinct",
            {"step": "drop_columns", "columns": ["user_id"]},
        ),
        (
            {"x": [f"c{i % 80}" for i in range(ROWS * 10)]},
            "high_cardinality",
            "warning",
            "80 different values",
            {"step": "rare_categories", "columns": ["x"], "min_share": 0.01},
        ),
        (
            {"TotalCharges": [" " if i < 11 else f"{i}.5" for i in range(ROWS)]},
            "mixed_types",
            "warning",
            "189 of 200",
            {
                "step": "derive",
                "name": "TotalCharges",
                "expression": 'TRY_CAST(TRIM("TotalCharges") AS DOUBLE)',
            },
        ),
        (
            {"x": [float(2 ** (i % 12)) for i in range(ROWS)]},
            "skewed",
            "info",
            "right",
            {"step": "transform", "columns": ["x"], "method": "yeo_johnson"},
        ),
        (
            {"x": [1000.0 if i % 25 == 0 else float(i % 5) for i in range(ROWS)]},
            "outliers",
            "info",
            "8 outliers (4.0%)",
            {"step": "clip_outliers", "columns": ["x"], "method": "iqr"},
        ),
    ],
    ids=[
        "missing",
        "missing-text",
        "mostly-missing",
        "constant",
        "near-constant",
        "id-like",
        "high-cardinality",
        "numbers-stored-as-text",
        "skewed",
        "outliers",
    ],
)
def test_find_warnings_reports_column_problem_with_fix(
    columns: dict[str, list[Any]], code: str, severity: str, words: str, fix: dict[str, Any]
) -> None:
    rows = len(next(iter(columns.values())))
    frame = {"n": [float(i % 17) for i in range(rows)], **columns}
    warning = _only(_warnings(frame), code)
    assert warning["severity"] == severity
    assert warning["column"] == (fix.get("columns") or [fix.get("name")])[0]
    assert words in warning["message"]
    assert warning["fix"] == fix


def test_find_warnings_reports_duplicate_rows() -> None:
    warning = _only(_warnings({"a": ["x", "x", "y", "z"], "b": [1, 1, 2, 3]}), "duplicate_rows")
    assert warning["message"].startswith("1 rows (25.0%)")
    assert warning["fix"] == {"step": "deduplicate"}


def test_find_warnings_flags_numeric_leakage_with_target() -> None:
    target = [float(i) for i in range(ROWS)]
    columns = {"y": target, "copy": [v * 2 + 1 for v in target], "n": BASE["n"]}
    warning = _only(_warnings(columns, target="y"), "target_leakage")
    assert (warning["column"], warning["severity"]) == ("copy", "critical")
    assert "correlation +1.000" in warning["message"]


def test_find_warnings_flags_categorical_leakage_with_target() -> None:
    churn = ["Yes" if i % 3 == 0 else "No" for i in range(ROWS)]
    reason = ["moved" if c == "Yes" else "none" for c in churn]
    warning = _only(_warnings({"churn": churn, "reason": reason}, target="churn"), "target_leakage")
    assert warning["column"] == "reason"
    assert "Cramér's V 1.000" in warning["message"]


@pytest.mark.parametrize(
    ("positives", "severity", "words"),
    [(30, "warning", "15.0%"), (6, "critical", "3.0%")],
    ids=["minority-under-20pct", "minority-under-5pct"],
)
def test_find_warnings_flags_class_imbalance(positives: int, severity: str, words: str) -> None:
    label = ["fraud" if i < positives else "ok" for i in range(ROWS)]
    warning = _only(_warnings({"label": label, **BASE}, target="label"), "class_imbalance")
    assert warning["severity"] == severity
    assert words in warning["message"] and "'fraud'" in warning["message"]


def test_find_warnings_is_quiet_for_balanced_clean_data() -> None:
    label = ["a" if i % 2 else "b" for i in range(ROWS)]
    assert _warnings({"label": label, "n": [float(i) for i in range(ROWS)]}, target="label") == []


def test_find_warnings_turns_pii_into_mask_fixes() -> None:
    frame, kinds = infer_types(pl.DataFrame(BASE))
    pii = [{"column": "email", "kind": "email", "share": 1.0, "matches": 5}]
    warning = _only(find_warnings(profile_frame(frame, kinds), pii=pii), "personal_data")
    assert warning["fix"] == {"step": "pii", "columns": ["email"], "method": "mask"}


def test_find_warnings_orders_most_severe_first() -> None:
    columns = {"x": [None if i % 4 else "a" for i in range(ROWS)], "c": ["k"] * ROWS, **BASE}
    severities = [w["severity"] for w in _warnings(columns)]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)


# Every warning code find_warnings can emit; a new code must be added here (and so tested).
ALL_CODES = {
    "duplicate_rows",
    "high_missing",
    "missing_values",
    "target_missing",
    "constant",
    "near_constant",
    "id_like",
    "high_cardinality",
    "mixed_types",
    "skewed",
    "outliers",
    "target_leakage",
    "class_imbalance",
    "personal_data",
}


def _frame_with_every_problem() -> pl.DataFrame:
    rows = 2000
    frame = pl.DataFrame(
        {
            "customer_id": [f"u{i}" for i in range(rows)],
            "email": [f"user{i % 1500}@example.com" for i in range(rows)],
            "card": [4111111111111111] * rows,
            "mostly_empty": [None if i % 4 else "a" for i in range(rows)],
            "some_empty_num": [None if i % 10 == 0 else float(i % 9) for i in range(rows)],
            "some_empty_text": [
                None if i % 10 == 0 else ["red", "green", "blue"][i % 3] for i in range(rows)
            ],
            "constant": ["same"] * rows,
            "near_constant": ["a"] * (rows - 2) + ["b", "b"],
            "city": [f"c{i % 80}" for i in range(rows)],
            "TotalCharges": [
                " " if i < 11 else ("n/a" if i < 15 else f"{i}.5") for i in range(rows)
            ],
            "skewed": [float(2 ** (i % 12)) for i in range(rows)],
            "spiky": [1000.0 if i % 25 == 0 else float(i % 5) for i in range(rows)],
            "churn": [None if i == 7 else ("Yes" if i % 10 == 0 else "No") for i in range(rows)],
            "reason": [
                None if i == 7 else ("moved" if i % 10 == 0 else "none") for i in range(rows)
            ],
        }
    )
    return pl.concat([frame, frame.head(5)])


def test_every_fix_is_a_valid_recipe_step_that_runs() -> None:
    frame, kinds = infer_types(_frame_with_every_problem())
    pii = detect_pii(frame, kinds)
    warnings = find_warnings(profile_frame(frame, kinds, target="churn"), target="churn", pii=pii)
    assert {w["code"] for w in warnings} == ALL_CODES
    fixes = [w["fix"] for w in warnings if w["fix"] is not None]
    fixes += [fix for finding in pii for fix in finding["fixes"].values()]
    assert {f["step"] for f in fixes} >= {"impute", "pii", "derive", "rare_categories"}
    for fix in fixes:
        recipe = {"steps": [fix]}
        assert validate_recipe(recipe, frame.schema, target="churn") == [], fix
        out, _ = fit_recipe(frame, recipe, target="churn")
        assert out.height > 0, fix
    cleaned = fit_recipe(
        frame, {"steps": [w["fix"] for w in warnings if w["code"] == "mixed_types"]}
    )
    # the 11 blanks and 4 "n/a" become empty, and so do the 5 repeated first rows
    assert cleaned[0]["TotalCharges"].null_count() == 20
