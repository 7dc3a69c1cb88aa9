"""Numeric, categorical, date, text and PII steps, including unseen values at apply time."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.preprocessing import PowerTransformer

from narrate.core.recipes import FittedRecipe, fit_recipe
from narrate.errors import DataProblem


def run(
    df: pl.DataFrame, *steps: dict[str, Any], target: str | None = None
) -> tuple[pl.DataFrame, FittedRecipe]:
    return fit_recipe(df, {"steps": list(steps)}, target=target)


def test_scale_methods_and_stored_stats() -> None:
    df = pl.DataFrame(
        {"a": [1.0, 2.0, 3.0, None], "b": [0, 5, 10, 10], "c": [1.0, 2.0, 3.0, 100.0]}
    )
    out, fitted = run(
        df,
        {"step": "scale", "columns": ["a"], "method": "standard"},
        {"step": "scale", "columns": ["b"], "method": "minmax"},
        {"step": "scale", "columns": ["c"], "method": "robust"},
    )
    assert out["a"].to_list()[:3] == pytest.approx([-1.2247449, 0.0, 1.2247449])
    assert out["a"][3] is None
    assert out["b"].to_list() == [0.0, 0.5, 1.0, 1.0]
    assert out["c"][1] == pytest.approx((2 - 2.5) / 25.5)
    assert fitted.params[0] == {"stats": {"a": {"center": 2.0, "scale": pytest.approx(0.8164966)}}}
    new = fitted.apply(pl.DataFrame({"a": [4.0], "b": [20], "c": [2.5]}))
    assert new["b"].to_list() == [2.0]


def test_scale_constant_column_does_not_divide_by_zero() -> None:
    out, _ = run(pl.DataFrame({"a": [3.0, 3.0]}), {"step": "scale", "columns": ["a"]})
    assert out["a"].to_list() == [0.0, 0.0]


def test_clip_outliers_clip_and_remove() -> None:
    df = pl.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0, None]})
    clipped, fitted = run(df, {"step": "clip_outliers", "columns": ["a"], "method": "iqr"})
    low, high = fitted.params[0]["bounds"]["a"]
    assert (low, high) == (-1.0, 7.0)
    assert clipped["a"].to_list() == [1.0, 2.0, 3.0, 4.0, 7.0, None]
    removed, fitted = run(
        df,
        {
            "step": "clip_outliers",
            "columns": ["a"],
            "method": "quantile",
            "lower_quantile": 0.0,
            "upper_quantile": 0.8,
            "action": "remove",
        },
    )
    assert removed["a"].to_list() == [1.0, 2.0, 3.0, 4.0, None]
    assert fitted.apply(df, for_prediction=True).height == df.height


def test_transform_matches_sklearn_power_transformer() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=200)
    df = pl.DataFrame({"a": values, "b": values - 1.0})
    out, _ = run(
        df,
        {"step": "transform", "columns": ["a"], "method": "box_cox"},
        {"step": "transform", "columns": ["b"], "method": "yeo_johnson"},
    )
    for column, method in (("a", "box-cox"), ("b", "yeo-johnson")):
        reference = PowerTransformer(method=method, standardize=False)
        expected = reference.fit_transform(df[column].to_numpy().reshape(-1, 1)).ravel()
        assert out[column].to_numpy() == pytest.approx(expected, rel=1e-6)
    logged, _ = run(
        pl.DataFrame({"a": [0.0, np.e - 1]}),
        {"step": "transform", "columns": ["a"], "method": "log"},
    )
    assert logged["a"].to_list() == pytest.approx([0.0, 1.0])


def test_box_cox_refuses_non_positive_values() -> None:
    with pytest.raises(DataProblem) as info:
        run(
            pl.DataFrame({"a": [0.0, 1.0]}),
            {"step": "transform", "columns": ["a"], "method": "box_cox"},
        )
    assert info.value.code == "out_of_domain"
    assert "yeo_johnson" in info.value.message


def test_bin_methods() -> None:
    df = pl.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, None]})
    width, fitted = run(df, {"step": "bin", "columns": ["a"], "method": "equal_width", "n_bins": 3})
    assert width["a"].to_list() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, None]
    assert fitted.params[0]["edges"]["a"] == [3.0, 6.0]
    quantile, _ = run(df, {"step": "bin", "columns": ["a"], "method": "quantile", "n_bins": 2})
    assert quantile["a"].to_list()[:10] == [0] * 5 + [1] * 5
    custom, fitted = run(df, {"step": "bin", "columns": ["a"], "method": "custom", "edges": [1.5]})
    assert custom["a"].to_list()[:3] == [0, 0, 1]
    assert fitted.apply(pl.DataFrame({"a": [-50.0, 50.0]}))["a"].to_list() == [0, 1]


def test_one_hot_top_k_other_and_unseen() -> None:
    df = pl.DataFrame({"city": ["a", "a", "a", "b", "b", "c", None]})
    out, fitted = run(df, {"step": "encode", "columns": ["city"], "method": "one_hot", "top_k": 2})
    assert out.columns == ["city_a", "city_b", "city_other"]
    assert out.row(5) == (0, 0, 1)
    assert out.row(6) == (0, 0, 0)
    new = fitted.apply(pl.DataFrame({"city": ["zzz", "b"]}))
    assert new.rows() == [(0, 0, 1), (0, 1, 0)]
    plain, fitted = run(df, {"step": "encode", "columns": ["city"]})
    assert fitted.apply(pl.DataFrame({"city": ["zzz"]})).rows() == [(0, 0, 0)]
    assert plain.width == 3


def test_ordinal_and_frequency_with_unseen() -> None:
    df = pl.DataFrame({"c": ["b", "a", "b", "c"], "d": ["x", "x", "y", None]})
    out, fitted = run(
        df,
        {"step": "encode", "columns": ["c"], "method": "ordinal"},
        {"step": "encode", "columns": ["d"], "method": "frequency"},
    )
    assert out["c"].to_list() == [1, 0, 1, 2]
    assert out["d"].to_list() == [0.5, 0.5, 0.25, 0.0]
    new = fitted.apply(pl.DataFrame({"c": ["new"], "d": ["new"]}))
    assert new.row(0) == (-1, 0.0)


def test_target_encoding_is_out_of_fold_and_applies_full_map(credit: pl.DataFrame) -> None:
    step = {"step": "encode", "columns": ["Home", "Job"], "method": "target", "smoothing": 0}
    out, fitted = run(credit, step, target="Status")
    params = fitted.params[0]
    assert params["positive"] == "good"
    rate = (credit["Status"] == "good").mean()
    assert params["default"] == pytest.approx(rate)
    full = params["maps"]["Home"]
    assert full["owner"] == pytest.approx(
        (credit.filter(pl.col("Home") == "owner")["Status"] == "good").mean()
    )
    # out-of-fold values differ from the full-data map but stay close to it
    owners = out.filter(credit["Home"] == "owner")["Home"]
    assert owners.n_unique() > 1
    assert owners.mean() == pytest.approx(full["owner"], abs=0.01)
    applied = fitted.apply(credit.with_columns(pl.lit("castle").alias("Home")))
    assert applied["Home"].unique().to_list() == [pytest.approx(rate)]
    assert fitted.apply(credit)["Home"].filter(credit["Home"] == "owner").n_unique() == 1


def test_target_encoding_is_deterministic_for_a_seed(credit: pl.DataFrame) -> None:
    recipe = {"steps": [{"step": "encode", "columns": ["Job"], "method": "target"}]}
    a, _ = fit_recipe(credit, recipe, target="Status", seed=1)
    b, _ = fit_recipe(credit, recipe, target="Status", seed=1)
    c, _ = fit_recipe(credit, recipe, target="Status", seed=2)
    assert a.equals(b)
    assert not a.equals(c)


def test_target_encoding_refuses_multiclass_target(penguins: pl.DataFrame) -> None:
    with pytest.raises(DataProblem) as info:
        run(
            penguins,
            {"step": "encode", "columns": ["island"], "method": "target"},
            target="species",
        )
    assert info.value.code == "unsupported_target"
    assert "3 classes" in info.value.message


def test_rare_categories_groups_into_label() -> None:
    df = pl.DataFrame({"c": ["a"] * 8 + ["b", "c", None]})
    out, fitted = run(df, {"step": "rare_categories", "columns": ["c"], "min_share": 0.1})
    assert out["c"].to_list() == ["a"] * 8 + ["Other", "Other", None]
    assert fitted.apply(pl.DataFrame({"c": ["new"]}))["c"].to_list() == ["Other"]


def test_datetime_parts_and_elapsed_days() -> None:
    # naive timestamps on purpose: the column type is Datetime without a time zone
    naive = [dt.datetime(2024, 1, 1, 6), dt.datetime(2024, 1, 3, 18), None]  # noqa: DTZ001
    df = pl.DataFrame({"d": naive})
    out, fitted = run(
        df,
        {
            "step": "datetime_parts",
            "columns": ["d"],
            "parts": ["year", "month", "day", "weekday", "hour", "elapsed_days"],
        },
    )
    assert out.columns == ["d_year", "d_month", "d_day", "d_weekday", "d_hour", "d_elapsed_days"]
    assert out.row(1) == (2024, 1, 3, 3, 18, 2.5)
    assert out.row(2) == (None,) * 6
    assert fitted.params[0] == {"reference": {"d": "2024-01-01T06:00:00"}}
    dates = pl.DataFrame({"d": [dt.date(2024, 3, 1)]})
    kept, _ = run(
        dates,
        {"step": "datetime_parts", "columns": ["d"], "parts": ["month"], "drop_original": False},
    )
    assert kept.columns == ["d", "d_month"]


def test_text_operations() -> None:
    df = pl.DataFrame({"t": ["  Hello ", "WORLD", None]})
    out, _ = run(
        df,
        {"step": "text", "columns": ["t"], "operation": "strip"},
        {"step": "text", "columns": ["t"], "operation": "lowercase"},
        {"step": "text", "columns": ["t"], "operation": "length"},
        {"step": "text", "columns": ["t"], "operation": "contains", "pattern": "o"},
    )
    assert out.rows() == [("hello", 5, True), ("world", 5, True), (None, None, None)]


def test_pii_hash_is_salted_sha256_and_mask_hides_characters(people: pl.DataFrame) -> None:
    out, fitted = run(
        people,
        {"step": "pii", "columns": ["email"], "method": "hash", "salt": "pepper"},
        {"step": "pii", "columns": ["city"], "method": "mask", "keep_last": 2},
    )
    assert out["email"][0] == hashlib.sha256(b"peppera@x.io").hexdigest()
    assert out["email"][4] is None
    assert out["city"].to_list()[:2] == ["***is", "**on"]
    assert fitted.apply(people)["email"].equals(out["email"])
    unsalted, fitted = run(people, {"step": "pii", "columns": ["email"]})
    assert fitted.params[0]["salt"]
    assert unsalted["email"][0] != out["email"][0]


def test_all_missing_column_is_refused_by_numeric_steps() -> None:
    df = pl.DataFrame({"a": pl.Series([None, None], dtype=pl.Float64)})
    for step in ("scale", "bin", "clip_outliers", "transform"):
        with pytest.raises(DataProblem) as info:
            run(df, {"step": step, "columns": ["a"]})
        assert info.value.code == "all_missing"
        assert info.value.details["column"] == "a"
