"""Edge cases per step: all-missing columns, single rows and columns, unseen categories."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from narrate.core.recipes import FittedRecipe, fit_recipe, validate_recipe
from narrate.errors import DataProblem


def run(
    df: pl.DataFrame, *steps: dict[str, Any], target: str | None = None
) -> tuple[pl.DataFrame, FittedRecipe]:
    return fit_recipe(df, {"steps": list(steps)}, target=target)


def empty_text(n: int) -> pl.Series:
    return pl.Series("c", [None] * n, dtype=pl.String)


# --- encode and rare categories on all-missing columns ----------------------------------


def test_one_hot_of_all_missing_column_removes_it_and_adds_nothing() -> None:
    df = pl.DataFrame({"c": empty_text(3), "y": [0, 1, 0]})
    out, fitted = run(df, {"step": "encode", "columns": ["c"], "method": "one_hot"})
    assert out.columns == ["y"]
    assert fitted.params[0] == {"categories": {"c": {"values": [], "other": False}}}
    assert fitted.apply(pl.DataFrame({"c": ["a"], "y": [1]})).columns == ["y"]


@pytest.mark.parametrize(
    ("method", "expected", "dtype"),
    [("ordinal", -1, pl.Int32), ("frequency", 0.0, pl.Float64)],
)
def test_ordinal_and_frequency_of_all_missing_column_give_the_unseen_value(
    method: str, expected: float, dtype: type[pl.DataType]
) -> None:
    df = pl.DataFrame({"c": empty_text(3)})
    out, fitted = run(df, {"step": "encode", "columns": ["c"], "method": method})
    assert out.schema["c"] == dtype
    assert out["c"].to_list() == [expected] * 3
    assert fitted.params[0] == {"maps": {"c": {}}}
    assert fitted.apply(pl.DataFrame({"c": ["new"]}))["c"].to_list() == [expected]


def test_target_encoding_of_all_missing_column_gives_the_overall_mean() -> None:
    df = pl.DataFrame({"c": empty_text(4), "y": [0, 1, 1, 1]})
    out, fitted = run(df, {"step": "encode", "columns": ["c"], "method": "target"}, target="y")
    assert out["c"].to_list() == [0.75] * 4
    assert fitted.params[0]["maps"] == {"c": {}}


def test_target_encoding_with_an_all_missing_target_is_refused() -> None:
    df = pl.DataFrame({"c": ["a", "b"], "y": pl.Series([None, None], dtype=pl.Int64)})
    with pytest.raises(DataProblem) as info:
        run(df, {"step": "encode", "columns": ["c"], "method": "target"}, target="y")
    assert info.value.code == "all_missing"
    assert info.value.details == {"step_index": 0, "parameter": "target", "column": "y"}


def test_rare_categories_of_all_missing_column_stays_missing() -> None:
    df = pl.DataFrame({"c": empty_text(3)})
    out, fitted = run(df, {"step": "rare_categories", "columns": ["c"]})
    assert out["c"].to_list() == [None, None, None]
    assert fitted.params[0] == {"kept": {"c": []}}


# --- rare-category grouping --------------------------------------------------------------


def test_rare_categories_threshold_is_a_share_of_all_rows_including_missing() -> None:
    # 10 rows: a×5, b×2, c×1, missing×2 → with min_share 0.2, b (20%) stays, c (10%) goes
    values = ["a"] * 5 + ["b"] * 2 + ["c"] + [None] * 2
    out, fitted = run(
        pl.DataFrame({"c": values}),
        {"step": "rare_categories", "columns": ["c"], "min_share": 0.2, "label": "Rare"},
    )
    assert fitted.params[0] == {"kept": {"c": ["a", "b"]}}
    assert out["c"].to_list() == ["a"] * 5 + ["b"] * 2 + ["Rare"] + [None] * 2


def test_rare_categories_on_categorical_and_numeric_columns_give_text() -> None:
    df = pl.DataFrame(
        {
            "cat": pl.Series(["x", "x", "x", "y"], dtype=pl.Categorical),
            "num": [1, 1, 1, 7],
        }
    )
    out, _ = run(df, {"step": "rare_categories", "columns": ["cat", "num"], "min_share": 0.3})
    assert out.schema == pl.Schema({"cat": pl.String, "num": pl.String})
    assert out.rows() == [("x", "1")] * 3 + [("Other", "Other")]


def test_rare_categories_when_every_value_is_rare() -> None:
    out, _ = run(
        pl.DataFrame({"c": ["a", "b", "c", "d"]}),
        {"step": "rare_categories", "columns": ["c"], "min_share": 0.5},
    )
    assert out["c"].to_list() == ["Other"] * 4


# --- unseen categories at apply time, for every step that learns categories ---------------

TRAIN = pl.DataFrame({"c": ["a", "a", "a", "b", "b", "c"], "y": [1, 1, 0, 0, 0, 1]})
NEW = pl.DataFrame({"c": ["zzz", None, "a"], "y": [0, 0, 0]})


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"step": "encode", "columns": ["c"], "method": "ordinal"}, {"c": [-1, -1, 0]}),
        (
            {"step": "encode", "columns": ["c"], "method": "frequency"},
            {"c": [0.0, 0.0, 0.5]},
        ),
        (
            {"step": "encode", "columns": ["c"], "method": "one_hot"},
            {"c_a": [0, 0, 1], "c_b": [0, 0, 0], "c_c": [0, 0, 0]},
        ),
        (
            {"step": "encode", "columns": ["c"], "method": "one_hot", "top_k": 1},
            {"c_a": [0, 0, 1], "c_other": [1, 0, 0]},
        ),
        (
            {"step": "rare_categories", "columns": ["c"], "min_share": 0.3},
            {"c": ["Other", None, "a"]},
        ),
    ],
    ids=["ordinal", "frequency", "one_hot", "one_hot_top_k", "rare_categories"],
)
def test_unseen_categories_at_apply_time(step: dict[str, Any], expected: dict[str, Any]) -> None:
    _, fitted = run(TRAIN, step)
    out = fitted.apply(NEW, for_prediction=True)
    assert {c: out[c].to_list() for c in expected} == expected
    assert out.height == NEW.height
    assert ("c" in out.columns) == ("c" in expected)


def test_unseen_category_gets_the_overall_target_mean() -> None:
    _, fitted = run(TRAIN, {"step": "encode", "columns": ["c"], "method": "target"}, target="y")
    prior = 0.5
    out = fitted.apply(NEW.drop("y"), for_prediction=True)
    assert out["c"][0] == pytest.approx(prior) and out["c"][1] == pytest.approx(prior)
    assert out["c"][2] == pytest.approx(fitted.params[0]["maps"]["c"]["a"])
    assert out.columns == ["c"]


def test_unseen_category_at_apply_time_on_a_categorical_column() -> None:
    train = TRAIN.drop("y").with_columns(pl.col("c").cast(pl.Categorical))
    _, fitted = run(train, {"step": "encode", "columns": ["c"], "method": "ordinal"})
    out = fitted.apply(pl.DataFrame({"c": pl.Series(["q", "b"], dtype=pl.Categorical)}))
    assert out["c"].to_list() == [-1, 1]


# --- one-hot name clashes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "step"),
    [
        (
            pl.DataFrame({"c": ["a", "b"], "c_a": [1, 2]}),
            {"step": "encode", "columns": ["c"], "method": "one_hot"},
        ),
        (
            pl.DataFrame({"c": ["other", "x", "x", "y"]}),
            {"step": "encode", "columns": ["c"], "method": "one_hot", "top_k": 2},
        ),
    ],
    ids=["existing-column", "value-called-other"],
)
def test_one_hot_name_clash_is_a_data_problem_naming_the_column(
    df: pl.DataFrame, step: dict[str, Any]
) -> None:
    with pytest.raises(DataProblem) as info:
        run(df, step)
    assert info.value.code == "duplicate_column"
    assert info.value.details["column"] == "c"
    assert "c_" in info.value.message


# --- text steps --------------------------------------------------------------------------


def test_text_steps_on_categorical_and_all_missing_columns() -> None:
    df = pl.DataFrame(
        {
            "t": pl.Series([" Ab ", None, "x"], dtype=pl.Categorical),
            "e": pl.Series([None, None, None], dtype=pl.String),
        }
    )
    out, _ = run(
        df,
        {"step": "text", "columns": ["t"], "operation": "strip"},
        {"step": "text", "columns": ["t"], "operation": "lowercase"},
        {"step": "text", "columns": ["t", "e"], "operation": "length"},
        {"step": "text", "columns": ["t"], "operation": "contains", "pattern": "b"},
    )
    assert out["t"].to_list() == ["ab", None, "x"]
    assert out["t_length"].to_list() == [2, None, 1]
    assert out["e_length"].to_list() == [None, None, None]
    assert out["t_contains"].to_list() == [True, None, False]


def test_text_contains_literal_pattern_is_not_a_regex() -> None:
    df = pl.DataFrame({"t": ["a(b", "ab"]})
    out, _ = run(df, {"step": "text", "columns": ["t"], "operation": "contains", "pattern": "("})
    assert out["t_contains"].to_list() == [True, False]
    out, _ = run(
        df,
        {
            "step": "text",
            "columns": ["t"],
            "operation": "contains",
            "pattern": "^a.?b$",
            "regex": True,
        },
    )
    assert out["t_contains"].to_list() == [True, True]


def test_text_invalid_regex_names_the_parameter() -> None:
    with pytest.raises(DataProblem) as info:
        run(
            pl.DataFrame({"t": ["a"]}),
            {
                "step": "text",
                "columns": ["t"],
                "operation": "contains",
                "pattern": "(",
                "regex": True,
            },
        )
    assert info.value.code == "invalid_pattern"
    assert info.value.details["parameter"] == "pattern"


def test_text_step_refuses_a_numeric_column() -> None:
    issues = validate_recipe(
        {"steps": [{"step": "text", "columns": ["n"], "operation": "lowercase"}]},
        pl.Schema({"n": pl.Int64}),
    )
    assert [(i.code, i.parameter, i.column) for i in issues] == [("wrong_type", "columns", "n")]


# --- datetime parts ----------------------------------------------------------------------


def test_datetime_parts_of_a_date_column_and_missing_values() -> None:
    df = pl.DataFrame({"d": [dt.date(2024, 2, 29), None, dt.date(2024, 3, 4)]})
    out, fitted = run(
        df,
        {
            "step": "datetime_parts",
            "columns": ["d"],
            "parts": ["year", "month", "day", "weekday", "hour", "elapsed_days"],
        },
    )
    assert out.rows() == [
        (2024, 2, 29, 4, 0, 0.0),
        (None, None, None, None, None, None),
        (2024, 3, 4, 1, 0, 4.0),
    ]
    assert fitted.params[0] == {"reference": {"d": "2024-02-29T00:00:00"}}


def test_datetime_parts_read_a_time_zone_aware_column_on_its_own_clock() -> None:
    utc = [dt.datetime(2024, 1, 1, 23, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, 5, tzinfo=dt.UTC)]
    df = pl.DataFrame({"d": pl.Series(utc).dt.convert_time_zone("Europe/Paris")})
    out, _ = run(
        df,
        {"step": "datetime_parts", "columns": ["d"], "parts": ["day", "hour", "elapsed_days"]},
    )
    # 23:00 UTC on 1 January is midnight on 2 January in Paris
    assert out.rows() == [(2, 0, 0.0), (3, 6, 1.25)]


def test_datetime_parts_elapsed_days_from_an_offset_reference() -> None:
    naive = dt.datetime(2024, 1, 2, 23)  # noqa: DTZ001 - naive data is read as UTC
    out, _ = run(
        pl.DataFrame({"d": [naive]}),
        {
            "step": "datetime_parts",
            "columns": ["d"],
            "parts": ["elapsed_days"],
            "reference": "2024-01-02T00:00:00+01:00",
        },
    )
    assert out["d_elapsed_days"].to_list() == [pytest.approx(1.0)]


def test_datetime_parts_of_all_missing_column() -> None:
    df = pl.DataFrame({"d": pl.Series([None, None], dtype=pl.Date)})
    out, _ = run(df, {"step": "datetime_parts", "columns": ["d"], "parts": ["year", "month"]})
    assert out.rows() == [(None, None), (None, None)]
    with pytest.raises(DataProblem) as info:
        run(df, {"step": "datetime_parts", "columns": ["d"], "parts": ["elapsed_days"]})
    assert info.value.code == "all_missing"
    assert info.value.details["parameter"] == "reference"


def test_datetime_parts_keep_original_and_apply_to_new_rows() -> None:
    naive = dt.datetime(2024, 5, 1, 8), dt.datetime(2024, 5, 3, 20)  # noqa: DTZ001
    df = pl.DataFrame({"d": list(naive)})
    out, fitted = run(
        df,
        {
            "step": "datetime_parts",
            "columns": ["d"],
            "parts": ["hour", "elapsed_days"],
            "drop_original": False,
        },
    )
    assert out.columns == ["d", "d_hour", "d_elapsed_days"]
    earlier = dt.datetime(2024, 4, 30, 8)  # noqa: DTZ001
    new = fitted.apply(pl.DataFrame({"d": [earlier]}))
    assert new.row(0) == (earlier, 8, -1.0)


# --- single row, single column -----------------------------------------------------------

SINGLE_ROW_STEPS: list[tuple[dict[str, Any], list[Any]]] = [
    ({"step": "scale", "columns": ["a"], "method": "standard"}, [0.0]),
    ({"step": "scale", "columns": ["a"], "method": "minmax"}, [0.0]),
    ({"step": "scale", "columns": ["a"], "method": "robust"}, [0.0]),
    ({"step": "bin", "columns": ["a"], "method": "quantile"}, [0]),
    ({"step": "bin", "columns": ["a"], "method": "equal_width"}, [0]),
    ({"step": "clip_outliers", "columns": ["a"], "method": "iqr"}, [3.0]),
    ({"step": "clip_outliers", "columns": ["a"], "method": "zscore"}, [3.0]),
    ({"step": "clip_outliers", "columns": ["a"], "method": "quantile"}, [3.0]),
    ({"step": "transform", "columns": ["a"], "method": "log"}, [pytest.approx(1.3862944)]),
    ({"step": "transform", "columns": ["a"], "method": "yeo_johnson"}, [pytest.approx(3.0)]),
    ({"step": "impute", "columns": ["a"], "strategy": "mean"}, [3.0]),
    ({"step": "impute", "columns": ["a"], "strategy": "knn"}, [3.0]),
    ({"step": "impute", "columns": ["a"], "strategy": "ffill"}, [3.0]),
    ({"step": "encode", "columns": ["a"], "method": "frequency"}, [1.0]),
    ({"step": "encode", "columns": ["a"], "method": "ordinal"}, [0]),
    ({"step": "rare_categories", "columns": ["a"]}, ["3.0"]),
    ({"step": "sample", "n": 5}, [3.0]),
    ({"step": "deduplicate"}, [3.0]),
    ({"step": "sort", "columns": ["a"]}, [3.0]),
    ({"step": "filter", "expression": "a > 0"}, [3.0]),
    ({"step": "drop_missing", "threshold": 0.5, "axis": "columns"}, [3.0]),
    ({"step": "cast", "columns": ["a"], "to": "integer"}, [3]),
]


@pytest.mark.parametrize(
    ("step", "expected"),
    SINGLE_ROW_STEPS,
    ids=[f"{s['step']}-{i}" for i, (s, _) in enumerate(SINGLE_ROW_STEPS)],
)
def test_single_row_single_column(step: dict[str, Any], expected: list[Any]) -> None:
    out, fitted = run(pl.DataFrame({"a": [3.0]}), step)
    assert out.columns == ["a"]
    assert out["a"].to_list() == expected
    again = fitted.apply(pl.DataFrame({"a": [3.0]}), for_prediction=True)
    assert again.height == 1


def test_single_row_target_encoding_and_one_hot() -> None:
    df = pl.DataFrame({"c": ["a"], "y": [1]})
    out, fitted = run(df, {"step": "encode", "columns": ["c"], "method": "target"}, target="y")
    assert out["c"].to_list() == [1.0]
    assert fitted.apply(pl.DataFrame({"c": ["b"]}), for_prediction=True)["c"].to_list() == [1.0]
    out, _ = run(df.drop("y"), {"step": "encode", "columns": ["c"], "method": "one_hot"})
    assert out.rows() == [(1,)] and out.columns == ["c_a"]


def test_box_cox_on_a_constant_column_is_a_data_problem_not_a_crash() -> None:
    with pytest.raises(DataProblem) as info:
        run(
            pl.DataFrame({"a": [2.0, 2.0, 2.0]}),
            {"step": "transform", "columns": ["a"], "method": "box_cox"},
        )
    assert info.value.code == "constant_column"
    assert info.value.details == {"step_index": 0, "parameter": "method", "column": "a"}


def test_single_row_sample_by_fraction_would_leave_nothing_and_is_refused() -> None:
    with pytest.raises(DataProblem) as info:
        run(pl.DataFrame({"a": [3.0]}), {"step": "sample", "fraction": 0.5})
    assert info.value.code == "empty_result"


# --- impute ------------------------------------------------------------------------------


def test_knn_impute_of_an_all_missing_column_is_refused() -> None:
    df = pl.DataFrame({"a": pl.Series([None, None], dtype=pl.Float64), "b": [1.0, 2.0]})
    with pytest.raises(DataProblem) as info:
        run(df, {"step": "impute", "columns": ["a", "b"], "strategy": "knn"})
    assert info.value.code == "all_missing"
    assert info.value.details["column"] == "a"


def test_constant_impute_value_must_fit_the_column_type() -> None:
    issues = validate_recipe(
        {
            "steps": [
                {"step": "impute", "columns": ["n", "t"], "strategy": "constant", "value": "z"}
            ]
        },
        pl.Schema({"n": pl.Int64, "t": pl.String}),
    )
    assert [(i.code, i.parameter, i.column) for i in issues] == [("wrong_type", "value", "n")]


def test_constant_impute_keeps_integer_type_and_widens_for_a_float() -> None:
    df = pl.DataFrame({"n": [1, None], "t": pl.Series(["a", None], dtype=pl.String)})
    out, _ = run(
        df,
        {"step": "impute", "columns": ["n"], "strategy": "constant", "value": 0},
        {"step": "impute", "columns": ["t"], "strategy": "constant", "value": "none"},
    )
    assert out.schema == pl.Schema({"n": pl.Int64, "t": pl.String})
    assert out.rows() == [(1, "a"), (0, "none")]
    out, _ = run(df, {"step": "impute", "columns": ["n"], "strategy": "constant", "value": 0.5})
    assert out["n"].to_list() == [1.0, 0.5]


def test_constant_impute_of_an_all_missing_column_fills_every_row() -> None:
    out, _ = run(
        pl.DataFrame({"c": empty_text(2)}),
        {"step": "impute", "columns": ["c"], "strategy": "constant", "value": "z"},
    )
    assert out["c"].to_list() == ["z", "z"]
