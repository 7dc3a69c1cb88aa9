"""Property-based tests: preview equals fit on full data; fitting is byte-deterministic."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import polars as pl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from narrate.core.recipes import column_stats, fit_recipe, preview_recipe
from narrate.core.recipes.stats import json_rows
from narrate.errors import DataProblem

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STEPS: list[dict[str, Any]] = [
    {"step": "drop_missing", "columns": ["a"]},
    {"step": "drop_missing", "threshold": 0.5},
    {"step": "filter", "expression": "b > -50"},
    {"step": "derive", "name": "ab", "expression": "a * 2 + b"},
    {"step": "impute", "columns": ["b"], "strategy": "median"},
    {"step": "impute", "columns": ["a", "b"], "strategy": "knn", "n_neighbors": 2},
    {"step": "impute", "columns": ["c"], "strategy": "mode"},
    {"step": "scale", "columns": ["b"], "method": "robust"},
    {"step": "clip_outliers", "columns": ["a"], "method": "iqr"},
    {"step": "clip_outliers", "columns": ["b"], "method": "zscore", "action": "remove"},
    {"step": "bin", "columns": ["b"], "method": "quantile", "n_bins": 3},
    {"step": "encode", "columns": ["c"], "method": "one_hot", "top_k": 2},
    {"step": "encode", "columns": ["c"], "method": "target"},
    {"step": "encode", "columns": ["c"], "method": "frequency"},
    {"step": "rare_categories", "columns": ["c"], "min_share": 0.2},
    {"step": "deduplicate"},
    {"step": "sample", "fraction": 0.7},
    {"step": "sort", "columns": ["a"], "descending": True},
    {"step": "pii", "columns": ["c"]},
]


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=1, max_value=40))
    ints = st.one_of(st.none(), st.integers(min_value=-100, max_value=100))
    floats = st.one_of(st.none(), st.floats(min_value=-100, max_value=100, allow_nan=False))
    texts = st.one_of(st.none(), st.sampled_from(["x", "y", "z", "w"]))
    return pl.DataFrame(
        {
            "a": draw(st.lists(ints, min_size=n, max_size=n)),
            "b": draw(st.lists(floats, min_size=n, max_size=n)),
            "c": draw(st.lists(texts, min_size=n, max_size=n)),
            "y": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        },
        schema={"a": pl.Int64, "b": pl.Float64, "c": pl.String, "y": pl.Int64},
    )


recipes = st.lists(st.sampled_from(STEPS), min_size=1, max_size=6).map(
    lambda steps: {"steps": _order(steps)}
)


def _order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep recipes valid: steps reading 'c' as text go before those replacing it."""
    text_first = [s for s in steps if s["step"] not in ("encode", "pii")]
    encoders = [s for s in steps if s["step"] in ("encode", "pii")]
    return text_first + encoders[:1]


def fit_or_none(df: pl.DataFrame, recipe: dict[str, Any]) -> pl.DataFrame | None:
    try:
        return fit_recipe(df, recipe, target="y", seed=5)[0]
    except DataProblem:
        return None


def parquet_hash(df: pl.DataFrame) -> str:
    buffer = io.BytesIO()
    df.write_parquet(buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@SETTINGS
@given(df=frames(), recipe=recipes)
def test_preview_on_full_data_equals_fit_output(df: pl.DataFrame, recipe: dict[str, Any]) -> None:
    out = fit_or_none(df, recipe)
    assume(out is not None)
    assert out is not None
    preview = preview_recipe(df, recipe, target="y", sample_rows=df.height, seed=5)
    assert preview["rows"]["after"] == out.height
    assert preview["sample"]["columns"] == out.columns
    assert preview["sample"]["rows"] == json_rows(out.head(20))
    after = {c: s["after"] for c, s in preview["stats"].items() if s["after"] is not None}
    assert after == column_stats(out)


@SETTINGS
@given(df=frames(), recipe=recipes)
def test_fitting_twice_gives_byte_identical_parquet(
    df: pl.DataFrame, recipe: dict[str, Any]
) -> None:
    first = fit_or_none(df, recipe)
    assume(first is not None)
    second = fit_or_none(df, recipe)
    assert first is not None
    assert second is not None
    assert parquet_hash(first) == parquet_hash(second)
