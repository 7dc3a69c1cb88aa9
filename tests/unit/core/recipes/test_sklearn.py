"""RecipeTransformer: fit/transform on pandas, clone, get_params, pickle, pipelines."""

from __future__ import annotations

import pickle

import pandas as pd
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from narrate.core.recipes import RecipeTransformer, fit_recipe
from narrate.errors import InvalidInput

RECIPE = {
    "steps": [
        {"step": "filter", "expression": "Age >= 18"},
        {"step": "impute", "columns": ["Income", "Assets", "Debt"], "strategy": "median"},
        {
            "step": "scale",
            "columns": [
                "Seniority",
                "Time",
                "Age",
                "Expenses",
                "Income",
                "Assets",
                "Debt",
                "Amount",
                "Price",
            ],
        },
        {"step": "encode", "columns": ["Home", "Marital", "Records", "Job"], "method": "one_hot"},
        {"step": "encode", "columns": ["Home_owner"], "method": "frequency", "enabled": False},
    ]
}


@pytest.fixture
def xy(credit: pl.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    frame = credit.to_pandas()
    return frame.drop(columns="Status"), frame["Status"]


def test_fit_transform_returns_pandas_with_row_per_input(
    xy: tuple[pd.DataFrame, pd.Series],
) -> None:
    x, y = xy
    transformer = RecipeTransformer(recipe=RECIPE, target="Status").fit(x, y)
    out = transformer.transform(x.iloc[10:20])
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == list(range(10, 20))
    assert "Status" not in out.columns
    assert list(out.columns) == list(transformer.get_feature_names_out())


def test_pipeline_from_raw_rows(xy: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = xy
    pipeline = make_pipeline(RecipeTransformer(recipe=RECIPE), LogisticRegression(max_iter=500))
    pipeline.fit(x, y)
    assert pipeline.score(x, y) > 0.7
    assert len(pipeline.predict(x.head(3))) == 3


def test_wraps_a_fitted_recipe(credit: pl.DataFrame, xy: tuple[pd.DataFrame, pd.Series]) -> None:
    x, _ = xy
    _, fitted = fit_recipe(credit, RECIPE, target="Status")
    for given in (fitted, fitted.to_json()):
        out = RecipeTransformer(fitted=given).fit(x).transform(x)
        expected = fitted.apply(pl.from_pandas(x), for_prediction=True).to_pandas()
        pd.testing.assert_frame_equal(out, expected)


def test_clone_get_params_and_pickle(xy: tuple[pd.DataFrame, pd.Series]) -> None:
    x, y = xy
    transformer = RecipeTransformer(recipe=RECIPE, target="Status", seed=3)
    assert transformer.get_params() == {
        "recipe": RECIPE,
        "fitted": None,
        "target": "Status",
        "seed": 3,
        "for_prediction": True,
    }
    copy = clone(transformer)
    assert copy.get_params()["seed"] == 3
    assert not hasattr(copy, "fitted_")
    transformer.fit(x, y)
    restored = pickle.loads(pickle.dumps(transformer))
    pd.testing.assert_frame_equal(restored.transform(x), transformer.transform(x))
    assert transformer.set_params(seed=4).seed == 4


def test_needs_exactly_one_of_recipe_or_fitted(xy: tuple[pd.DataFrame, pd.Series]) -> None:
    x, _ = xy
    with pytest.raises(InvalidInput) as info:
        RecipeTransformer().fit(x)
    assert "exactly one" in info.value.message
    with pytest.raises(InvalidInput, match="pandas DataFrame"):
        RecipeTransformer(recipe=RECIPE).fit(x.to_numpy())
