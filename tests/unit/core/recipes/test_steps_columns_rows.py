"""Column, missing-value and row steps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from narrate.core.recipes import FittedRecipe, fit_recipe
from narrate.errors import DataProblem, InvalidInput


def run(
    df: pl.DataFrame, *steps: dict[str, Any], target: str | None = None
) -> tuple[pl.DataFrame, FittedRecipe]:
    return fit_recipe(df, {"steps": list(steps)}, target=target)


def test_drop_keep_rename_reorder(people: pl.DataFrame) -> None:
    out, _ = run(
        people,
        {"step": "drop", "columns": ["email"]},
        {"step": "rename", "mapping": {"city": "town"}},
        {"step": "reorder", "columns": ["churn"]},
    )
    assert out.columns == ["churn", "age", "income", "town"]
    kept, _ = run(people, {"step": "keep_columns", "columns": ["city", "age"]})
    assert kept.columns == ["city", "age"]


def test_disabled_step_is_skipped(people: pl.DataFrame) -> None:
    out, fitted = run(people, {"step": "drop", "columns": ["email"], "enabled": False})
    assert out.equals(people)
    assert fitted.params == [None]


@pytest.mark.parametrize(
    ("values", "to", "expected"),
    [
        (["1", " 2", None], "integer", [1, 2, None]),
        (["1.5", "2", None], "float", [1.5, 2.0, None]),
        (["yes", "No", "TRUE"], "boolean", [True, False, True]),
        (
            ["2024-01-31", None, "2023-12-01"],
            "date",
            [dt.date(2024, 1, 31), None, dt.date(2023, 12, 1)],
        ),
        ([1, 0, 2], "boolean", [True, False, True]),
        ([1, 2, 3], "string", ["1", "2", "3"]),
    ],
    ids=["int", "float", "bool-text", "date", "bool-num", "string"],
)
def test_cast_converts_values(values: list[Any], to: str, expected: list[Any]) -> None:
    out, _ = run(pl.DataFrame({"a": values}), {"step": "cast", "columns": ["a"], "to": to})
    assert out["a"].to_list() == expected


def test_cast_to_categorical() -> None:
    out, _ = run(
        pl.DataFrame({"a": ["x", "y"]}), {"step": "cast", "columns": ["a"], "to": "categorical"}
    )
    assert out.schema["a"] == pl.Categorical()


def test_cast_failure_names_step_and_column() -> None:
    with pytest.raises(DataProblem) as info:
        run(pl.DataFrame({"a": ["1", "x"]}), {"step": "cast", "columns": ["a"], "to": "integer"})
    assert info.value.code == "cast_failed"
    assert info.value.details == {"step_index": 0, "parameter": "to", "column": "a"}
    assert "'a'" in info.value.message
    assert "Step 1" in info.value.message


def test_drop_missing_any_all_threshold() -> None:
    df = pl.DataFrame({"a": [1, None, None, 4], "b": [1, 2, None, None], "c": [1, 2, 3, None]})
    any_, _ = run(df, {"step": "drop_missing", "columns": ["a", "b"], "how": "any"})
    assert any_["a"].to_list() == [1]
    all_, _ = run(df, {"step": "drop_missing", "columns": ["a", "b"], "how": "all"})
    assert all_["a"].to_list() == [1, None, 4]
    share, _ = run(df, {"step": "drop_missing", "threshold": 0.4})
    assert share["c"].to_list() == [1, 2]
    cols, fitted = run(df, {"step": "drop_missing", "threshold": 0.4, "axis": "columns"})
    assert cols.columns == ["c"]
    assert fitted.params[0] == {"dropped_columns": ["a", "b"]}


@pytest.mark.parametrize(
    ("strategy", "extra", "expected"),
    [
        ("mean", {}, [1.0, 2.0, 3.0, 2.0]),
        ("median", {}, [1.0, 2.0, 3.0, 2.0]),
        ("mode", {}, [1, 2, 3, 1]),
        ("constant", {"value": 0}, [1, 2, 3, 0]),
        ("ffill", {}, [1, 2, 3, 3]),
    ],
    ids=["mean", "median", "mode", "constant", "ffill"],
)
def test_impute_strategies(strategy: str, extra: dict[str, Any], expected: list[Any]) -> None:
    df = pl.DataFrame({"a": [1, 2, 3, None]})
    out, _ = run(df, {"step": "impute", "columns": ["a"], "strategy": strategy, **extra})
    assert out["a"].to_list() == expected


def test_impute_bfill_and_mode_on_text() -> None:
    df = pl.DataFrame({"a": [None, 2, None, 4], "t": ["x", None, "y", "x"]})
    out, _ = run(
        df,
        {"step": "impute", "columns": ["a"], "strategy": "bfill"},
        {"step": "impute", "columns": ["t"], "strategy": "mode"},
    )
    assert out["a"].to_list() == [2, 2, 4, 4]
    assert out["t"].to_list() == ["x", "x", "y", "x"]


def test_impute_knn_fills_from_neighbours_and_applies_to_new_rows() -> None:
    df = pl.DataFrame({"a": [1.0, 2.0, 10.0, 11.0, 1.5], "b": [1.0, 2.0, 10.0, 11.0, None]})
    out, fitted = run(
        df, {"step": "impute", "columns": ["a", "b"], "strategy": "knn", "n_neighbors": 2}
    )
    assert out["b"][4] == pytest.approx(1.5)
    new = fitted.apply(pl.DataFrame({"a": [10.5], "b": [None]}, schema=df.schema))
    assert new["b"][0] == pytest.approx(10.5)


def test_impute_mean_of_all_missing_column_is_refused() -> None:
    df = pl.DataFrame({"a": pl.Series([None, None], dtype=pl.Float64)})
    with pytest.raises(DataProblem) as info:
        run(df, {"step": "impute", "columns": ["a"], "strategy": "mean"})
    assert info.value.code == "all_missing"
    assert "no values" in info.value.message


def test_filter_and_derive_use_sql(people: pl.DataFrame) -> None:
    out, _ = run(
        people,
        {"step": "filter", "expression": "age >= 18 AND city IN ('Paris', 'Nice')"},
        {"step": "derive", "name": "ratio", "expression": "income / (age + 1)"},
        {"step": "derive", "name": "big", "expression": "CASE WHEN income > 60 THEN 1 ELSE 0 END"},
    )
    assert out["age"].to_list() == [25, 33, 61]
    assert out["ratio"].to_list() == pytest.approx([30 / 26, 45 / 34, 120 / 62])
    assert out["big"].to_list() == [0, 0, 1]


def test_sql_expression_cannot_reach_python_or_files(people: pl.DataFrame) -> None:
    for expression in [
        "__import__('os').system('true')",
        "read_csv('/etc/passwd')",
        "1 = 1; DROP TABLE x",
    ]:
        with pytest.raises(InvalidInput) as info:
            run(people, {"step": "filter", "expression": expression})
        assert info.value.code == "invalid_recipe"


def test_deduplicate_keeps_first_or_last() -> None:
    df = pl.DataFrame({"k": [1, 1, 2], "v": ["a", "b", "c"]})
    first, _ = run(df, {"step": "deduplicate", "subset": ["k"]})
    last, _ = run(df, {"step": "deduplicate", "subset": ["k"], "keep": "last"})
    whole, _ = run(df, {"step": "deduplicate"})
    assert first["v"].to_list() == ["a", "c"]
    assert last["v"].to_list() == ["b", "c"]
    assert whole.height == 3


def test_sample_is_seeded_ordered_and_stratified(credit: pl.DataFrame) -> None:
    step = {"step": "sample", "fraction": 0.2, "stratify": "Status", "seed": 3}
    a, _ = run(credit, step)
    b, _ = run(credit, step)
    assert a.equals(b)
    assert a.height == pytest.approx(credit.height * 0.2, abs=2)
    share = lambda f: (f["Status"] == "bad").mean()  # noqa: E731
    assert share(a) == pytest.approx(share(credit), abs=0.005)
    n, _ = run(credit, {"step": "sample", "n": 10})
    assert n.height == 10


def test_sort_descending_nulls_last(people: pl.DataFrame) -> None:
    out, _ = run(people, {"step": "sort", "columns": ["age"], "descending": True})
    assert out["age"].to_list() == [61, 52, 40, 33, 25, 17, 17, None]


def test_empty_result_is_refused(people: pl.DataFrame) -> None:
    with pytest.raises(DataProblem) as info:
        run(people, {"step": "filter", "expression": "age > 1000"})
    assert info.value.code == "empty_result"
    assert "removes all 8 rows" in info.value.message


def test_empty_input_is_refused() -> None:
    with pytest.raises(DataProblem) as info:
        run(pl.DataFrame({"a": pl.Series([], dtype=pl.Int64)}), {"step": "drop_missing"})
    assert info.value.code == "empty_result"


def test_single_row_single_column() -> None:
    df = pl.DataFrame({"a": [5.0]})
    out, _ = run(
        df,
        {"step": "scale", "columns": ["a"]},
        {"step": "impute", "columns": ["a"], "strategy": "mean"},
        {"step": "clip_outliers", "columns": ["a"], "method": "zscore"},
    )
    assert out["a"].to_list() == [0.0]
