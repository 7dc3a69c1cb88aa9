"""Dataset rules: each fires on data built to trigger it, with grounded text and an action
the recipe API or the training options accept; clean data triggers none of them."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from tests.support.recommendations import assert_applies, assert_grounded

from narrate.core.data.pii import detect_pii
from narrate.core.data.profile import profile_frame
from narrate.core.data.types import infer_types
from narrate.core.recommend import recommend_for_dataset

ROWS = 200
QUALITY_KINDS = {"exclude", "clean", "transform", "train"}


def _clean(**extra: list[Any]) -> dict[str, list[Any]]:
    """A table with no data-quality problem: unique rows, no gaps, mild distributions."""
    return {
        "size": [round(10 + (i * 37 % 101) * 0.5, 1) for i in range(ROWS)],
        "colour": [("red", "green", "blue")[i % 3] for i in range(ROWS)],
        "label": [("stay", "leave")[(i * 7 // 3) % 2] for i in range(ROWS)],
        **extra,
    }


def _run(
    columns: dict[str, list[Any]], target: str | None = "label"
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    frame, kinds = infer_types(pl.DataFrame(columns))
    profile = profile_frame(frame, kinds, target=target)
    profile["pii"] = detect_pii(frame, kinds)
    items = recommend_for_dataset(profile)
    for item in items:
        assert_grounded(item)
        assert_applies(item, frame, target)
    return items, frame


def _only(items: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    found = [i for i in items if i["rule"] == rule]
    assert len(found) == 1, [i["id"] for i in items]
    return found[0]


def test_clean_data_triggers_no_data_quality_rule() -> None:
    items, _ = _run(_clean())
    assert [i for i in items if i["kind"] in QUALITY_KINDS] == []
    assert [i["id"] for i in items] == ["problem_type:label"]


def test_clean_data_without_a_target_suggests_targets_only() -> None:
    items, _ = _run(_clean(), target=None)
    assert {i["kind"] for i in items} == {"target"}
    first = items[0]
    assert first["id"] == "target_candidate:label"
    assert first["action"] == {"type": "training_options", "options": {"target": "label"}}
    assert "its name suggests an outcome" in first["reason"]


@pytest.mark.parametrize(
    ("target", "values", "task"),
    [
        ("label", None, "binary"),
        ("kind", [("a", "b", "c")[i % 3] for i in range(ROWS)], "multiclass"),
        ("price", [float(i % 50) * 1.5 + 3 for i in range(ROWS)], "regression"),
    ],
    ids=["binary", "multiclass", "regression"],
)
def test_problem_type_follows_the_target(target: str, values: list[Any] | None, task: str) -> None:
    items, _ = _run(_clean(**({target: values} if values else {})), target=target)
    item = _only(items, "problem_type")
    assert item["action"]["options"] == {"target": target, "task": task}


def test_free_text_target_cannot_be_predicted() -> None:
    notes = [f"note number {i} about the weather" for i in range(ROWS)]
    items, _ = _run(_clean(notes=notes), target="notes")
    item = _only(items, "problem_type")
    assert item["severity"] == "critical"
    assert item["action"] == {"type": "none"}


def test_identifier_is_excluded_and_the_step_removes_it() -> None:
    items, frame = _run(_clean(customer_id=[f"C{i:05d}" for i in range(ROWS)]))
    item = _only(items, "exclude_identifier")
    assert item["id"] == "exclude_identifier:customer_id"
    assert "200 distinct values in 200 rows" in item["reason"]
    out = assert_applies(item, frame, "label")
    assert "customer_id" not in out.columns


@pytest.mark.parametrize(
    ("values", "rule", "words"),
    [
        (["same"] * ROWS, "drop_constant", "one and the same value"),
        (["a"] * (ROWS - 2) + ["b", "b"], "drop_near_constant", "fills 99% of the rows"),
        (
            [None if i % 10 < 6 else float(i) for i in range(ROWS)],
            "drop_mostly_empty",
            "empty in 120 rows (60%)",
        ),
    ],
    ids=["constant", "near-constant", "mostly-empty"],
)
def test_useless_columns_are_dropped(values: list[Any], rule: str, words: str) -> None:
    items, frame = _run(_clean(extra=values))
    item = _only(items, rule)
    assert item["kind"] == "clean"
    assert words in item["reason"]
    assert "extra" not in assert_applies(item, frame, "label").columns


@pytest.mark.parametrize(
    ("values", "strategy"),
    [
        ([None if i % 10 == 0 else float(i % 13) for i in range(ROWS)], "median"),
        ([None if i % 10 == 0 else ("x", "y")[i % 2] for i in range(ROWS)], "mode"),
    ],
    ids=["numeric-median", "category-mode"],
)
def test_some_missing_values_are_imputed_saying_how(values: list[Any], strategy: str) -> None:
    items, frame = _run(_clean(extra=values))
    item = _only(items, "impute_missing")
    step = {"step": "impute", "columns": ["extra"], "strategy": strategy}
    assert item["action"]["steps"] == [step]
    assert "empty in 20 rows (10%)" in item["reason"]
    assert ("median" if strategy == "median" else "most common value") in item["title"]
    assert assert_applies(item, frame, "label")["extra"].null_count() == 0


def test_duplicated_rows_are_deduplicated() -> None:
    columns = _clean()
    columns = {k: v + v[:10] for k, v in columns.items()}
    items, frame = _run(columns)
    item = _only(items, "deduplicate_rows")
    assert item["reason"].startswith("10 rows (4.8%) repeat")
    assert assert_applies(item, frame, "label").height == ROWS


def test_skewed_positive_numbers_get_a_log_transform() -> None:
    items, frame = _run(_clean(amount=[math.exp(i / 20) for i in range(ROWS)]))
    item = _only(items, "log_transform")
    assert item["action"]["steps"][0]["method"] == "log"
    out = assert_applies(item, frame, "label")
    assert out["amount"].max() == pytest.approx(math.log1p(math.exp((ROWS - 1) / 20)))


def test_skewed_numbers_below_zero_get_yeo_johnson() -> None:
    items, _ = _run(_clean(amount=[-3.0] + [math.exp(i / 20) for i in range(ROWS - 1)]))
    item = _only(items, "power_transform")
    assert item["action"]["steps"][0]["method"] == "yeo_johnson"


def test_many_categories_are_grouped() -> None:
    rows = 2_000
    columns = {k: v * 10 for k, v in _clean().items()}
    columns["size"] = [float(i) for i in range(rows)]
    columns["city"] = [f"city_{(i * 13) % 60}" for i in range(rows)]
    items, _ = _run(columns)
    item = _only(items, "group_rare_categories")
    assert "60 different values" in item["reason"]
    assert item["action"]["steps"][0]["step"] == "rare_categories"


def test_dates_are_split_into_parts() -> None:
    dates = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(ROWS)]
    items, frame = _run(_clean(signup=dates))
    item = _only(items, "date_parts")
    out = assert_applies(item, frame, "label")
    assert {"signup_year", "signup_month"} <= set(out.columns)
    assert "signup" not in out.columns


def test_personal_data_is_excluded_by_content_and_by_name() -> None:
    emails = [f"user{i}@example.com" for i in range(ROWS)]
    streets = [f"{i} {('Oak', 'Elm', 'Pine')[i % 3]} Road" for i in range(ROWS)]
    items, _ = _run(_clean(contact=emails, home_address=streets))
    found = {i["id"]: i for i in items if i["rule"] == "exclude_personal_data"}
    assert set(found) == {"exclude_personal_data:contact", "exclude_personal_data:home_address"}
    assert "look like email" in found["exclude_personal_data:contact"]["reason"]
    assert "name 'home_address' suggests" in found["exclude_personal_data:home_address"]["reason"]
    # one exclusion per column: the email column is not also reported as an identifier
    assert not [i for i in items if i["id"] == "exclude_identifier:contact"]


def test_imbalanced_target_asks_for_class_weights_and_an_f1_threshold() -> None:
    label = ["leave" if i % 20 == 0 else "stay" for i in range(ROWS)]
    items, _ = _run(_clean(label=label))
    item = _only(items, "imbalanced_target")
    options = {"imbalance": "class_weight", "threshold": {"objective": "f1"}}
    assert item["action"]["options"] == options
    assert "'leave', is only 5% of rows (10)" in item["reason"]


def test_a_column_that_copies_the_target_is_a_leakage_suspect() -> None:
    columns = _clean()
    columns["approved_flag"] = ["Y" if v == "leave" else "N" for v in columns["label"]]
    items, frame = _run(columns)
    item = _only(items, "exclude_leakage")
    assert item["severity"] == "critical"
    assert item["id"] == "exclude_leakage:approved_flag"
    assert "'approved_flag' predicts 'label' almost perfectly (Cramér's V 1)" in item["reason"]
    assert "approved_flag" not in assert_applies(item, frame, "label").columns


def test_items_come_in_stage_order_with_stable_ids() -> None:
    columns = _clean(customer_id=[f"C{i:05d}" for i in range(ROWS)], k=["same"] * ROWS)
    first, _ = _run(columns)
    again, _ = _run(columns)
    assert first == again
    kinds = [i["kind"] for i in first]
    assert kinds == sorted(kinds, key=["problem_type", "exclude", "clean"].index)
