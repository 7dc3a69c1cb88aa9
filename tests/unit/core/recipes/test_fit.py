"""fit_recipe, FittedRecipe.apply, JSON round-trip, determinism and prediction mode."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import polars as pl
import pytest

from narrate.core.recipes import FittedRecipe, fit_recipe
from narrate.core.recipes.dtypes import dtype_to_str
from narrate.errors import InvalidInput

CREDIT_RECIPE: dict[str, Any] = {
    "steps": [
        {"step": "drop_missing", "columns": ["Home"]},
        {"step": "filter", "expression": "Age >= 18 AND Income IS NOT NULL"},
        {"step": "derive", "name": "burden", "expression": "Amount / (Income + 1)"},
        {"step": "impute", "columns": ["Assets", "Debt"], "strategy": "knn", "n_neighbors": 3},
        {"step": "clip_outliers", "columns": ["Income"], "method": "zscore"},
        {"step": "scale", "columns": ["Income", "burden"], "method": "robust"},
        {"step": "transform", "columns": ["Amount"], "method": "yeo_johnson"},
        {"step": "bin", "columns": ["Age"], "method": "quantile", "n_bins": 4},
        {"step": "rare_categories", "columns": ["Marital"], "min_share": 0.05},
        {"step": "encode", "columns": ["Home"], "method": "one_hot", "top_k": 3},
        {"step": "encode", "columns": ["Marital"], "method": "ordinal"},
        {"step": "encode", "columns": ["Job"], "method": "target"},
        {"step": "encode", "columns": ["Records"], "method": "frequency"},
        {"step": "deduplicate"},
        {"step": "drop", "columns": ["Price"]},
        {
            "step": "clip_outliers",
            "columns": ["Expenses"],
            "method": "quantile",
            "lower_quantile": 0.001,
            "upper_quantile": 0.999,
            "action": "remove",
        },
    ]
}


def parquet_hash(df: pl.DataFrame) -> str:
    buffer = io.BytesIO()
    df.write_parquet(buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_fit_is_deterministic_to_the_byte(credit: pl.DataFrame) -> None:
    a, fa = fit_recipe(credit, CREDIT_RECIPE, target="Status", seed=7)
    b, fb = fit_recipe(credit, CREDIT_RECIPE, target="Status", seed=7)
    assert parquet_hash(a) == parquet_hash(b)
    assert fa.to_json() == fb.to_json()


def test_json_round_trip_gives_identical_apply_output(credit: pl.DataFrame) -> None:
    _, fitted = fit_recipe(credit, CREDIT_RECIPE, target="Status", seed=7)
    restored = FittedRecipe.from_json(fitted.to_json())
    assert restored == fitted
    assert parquet_hash(restored.apply(credit)) == parquet_hash(fitted.apply(credit))
    new_rows = credit.tail(50).drop("Status")
    assert restored.apply(new_rows, for_prediction=True).equals(
        fitted.apply(new_rows, for_prediction=True)
    )


def test_apply_reproduces_fit_output_except_out_of_fold_encoding(credit: pl.DataFrame) -> None:
    recipe = {"steps": [s for s in CREDIT_RECIPE["steps"] if s.get("method") != "target"]}
    out, fitted = fit_recipe(credit, recipe, target="Status")
    assert fitted.apply(credit).equals(out)


def test_fitted_params_are_plain_json(credit: pl.DataFrame) -> None:
    _, fitted = fit_recipe(credit, CREDIT_RECIPE, target="Status")
    params = fitted.params
    assert params[3] is not None
    assert len(params[3]["train"]) <= 2000
    assert set(params[5]["stats"]) == {"Income", "burden"}
    assert params[9]["categories"]["Home"]["other"] is True
    assert "maps" in params[11]
    assert params[11]["positive"] == "good"
    assert fitted.input_schema["Age"] == "Int64"
    assert fitted.output_schema["Home_other"] == "UInt8"


def test_for_prediction_skips_row_steps_and_keeps_one_row_per_input(credit: pl.DataFrame) -> None:
    _, fitted = fit_recipe(credit, CREDIT_RECIPE, target="Status")
    rows = credit.drop("Status").head(200).with_columns(pl.lit(None, pl.Int64).alias("Age"))
    out = fitted.apply(rows, for_prediction=True)
    assert out.height == 200
    assert "Status" not in out.columns
    expected = {c: t for c, t in fitted.output_schema.items() if c != "Status"}
    assert {c: dtype_to_str(t) for c, t in out.schema.items()} == expected
    with_target = fitted.apply(credit.head(200), for_prediction=True)
    assert with_target["Status"].to_list() == credit["Status"].head(200).to_list()


def test_apply_refuses_missing_columns_and_wrong_types(credit: pl.DataFrame) -> None:
    _, fitted = fit_recipe(credit, CREDIT_RECIPE, target="Status")
    with pytest.raises(InvalidInput) as info:
        fitted.apply(credit.drop("Income", "Job"))
    assert info.value.code == "missing_columns"
    assert "'Job', 'Income'" in info.value.message
    with pytest.raises(InvalidInput) as info:
        fitted.apply(credit.with_columns(pl.lit("old").alias("Age")))
    assert info.value.code == "wrong_type"
    assert info.value.details["column"] == "Age"


def test_apply_casts_compatible_input_types(credit: pl.DataFrame) -> None:
    _, fitted = fit_recipe(credit, CREDIT_RECIPE, target="Status")
    as_float = credit.with_columns(pl.col("Age").cast(pl.Float64))
    assert fitted.apply(as_float).equals(fitted.apply(credit))


def test_progress_reports_each_enabled_step(people: pl.DataFrame) -> None:
    seen: list[tuple[float, str]] = []
    recipe = {
        "steps": [
            {"step": "drop", "columns": ["email"]},
            {"step": "scale", "columns": ["age"], "enabled": False},
            {"step": "impute", "columns": ["income"], "strategy": "mean"},
        ]
    }
    fit_recipe(people, recipe, progress=lambda f, m: seen.append((f, m)))
    assert [f for f, _ in seen] == [0.5, 1.0]
    assert seen[1][1].startswith("Step 3: Fill missing values")


def test_unknown_target_and_invalid_recipe_are_refused(people: pl.DataFrame) -> None:
    with pytest.raises(InvalidInput) as info:
        fit_recipe(people, {"steps": []}, target="price")
    assert info.value.code == "unknown_target"
    with pytest.raises(InvalidInput) as info:
        fit_recipe(people, {"steps": [{"step": "scale", "columns": ["city"]}]})
    assert info.value.code == "invalid_recipe"
    assert info.value.details["issues"][0]["code"] == "wrong_type"


def test_from_json_refuses_garbage() -> None:
    with pytest.raises(InvalidInput) as info:
        FittedRecipe.from_json('{"recipe": 1}')
    assert info.value.code == "invalid_fitted_recipe"


def test_penguins_end_to_end(penguins: pl.DataFrame) -> None:
    recipe = {
        "steps": [
            {"step": "impute", "columns": ["bill_length_mm", "body_mass_g"], "strategy": "mean"},
            {"step": "impute", "columns": ["sex"], "strategy": "mode"},
            {"step": "encode", "columns": ["island", "sex"], "method": "one_hot"},
            {"step": "scale", "columns": ["body_mass_g"], "method": "minmax"},
        ]
    }
    out, fitted = fit_recipe(penguins, recipe, target="species")
    assert out["bill_length_mm"].null_count() == 0
    assert {"island_Biscoe", "sex_female", "sex_male"} <= set(out.columns)
    assert out["body_mass_g"].max() == 1.0
    assert fitted.apply(penguins).equals(out)


def test_apply_reads_yes_no_text_as_the_boolean_it_was_fitted_on(credit: pl.DataFrame) -> None:
    # An upload reads Records (yes/no) as true/false; rows read by plain CSV readers
    # bring the words, which the fitted recipe reads the same way.
    as_bool = credit.with_columns(pl.col("Records") == "yes")
    _, fitted = fit_recipe(as_bool, CREDIT_RECIPE, target="Status")
    words = credit.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(pl.col("Records").str.to_uppercase())
        .otherwise(pl.col("Records"))
    )
    assert fitted.apply(words).equals(fitted.apply(as_bool))
    with pytest.raises(InvalidInput) as info:
        fitted.apply(credit.with_columns(pl.lit("maybe").alias("Records")))
    assert info.value.code == "wrong_type" and "'maybe'" in info.value.message
