"""Local explanations: additivity and raw columns for every model family and ensembles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import StackingClassifier, VotingClassifier, VotingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.threshold import apply_threshold
from narrate.core.explain import Explainer, RowExplanation
from narrate.core.recipes import RecipeTransformer

FAMILIES = [
    "lightgbm",
    "xgboost",
    "hist_gradient_boosting",
    "random_forest",
    "extra_trees",
    "linear",
    "baseline",
]
SAMPLE_NAMES = ["credit_data", "penguins", "hitters"]


def _truth(model: Any, rows: pd.DataFrame, explained: list[RowExplanation]) -> np.ndarray:
    """The model's own probability of each explained class, or its prediction."""
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        return np.asarray(model.predict(rows), dtype=float)
    proba = np.asarray(model.predict_proba(rows), dtype=float)
    classes = [str(c) for c in model.classes_]
    return np.array(
        [proba[i, classes.index(str(e.explained_class))] for i, e in enumerate(explained)]
    )


def _assert_additive(explained: list[RowExplanation]) -> None:
    for e in explained:
        total = e.base_value + sum(e.contributions.values())
        assert total == pytest.approx(e.output, rel=1e-6, abs=1e-9)
        natural = e.natural
        total = natural["base_value"] + sum(natural["contributions"].values())
        assert total == pytest.approx(natural["output"], rel=1e-6, abs=1e-9)
        for column, parts in e.parts.items():
            assert sum(parts.values()) == pytest.approx(e.contributions[column], rel=1e-6, abs=1e-9)


def _assert_explains_the_model(
    model: Any, rows: pd.DataFrame, explained: list[RowExplanation]
) -> None:
    truth = _truth(model, rows, explained)
    natural = np.array([e.natural["output"] for e in explained])
    np.testing.assert_allclose(natural, truth, rtol=1e-6, atol=1e-6)
    predictions = model.predict(rows)
    if hasattr(model, "classes_"):
        assert [e.prediction for e in explained] == list(predictions)
    else:
        assert [e.prediction for e in explained] == pytest.approx(list(predictions), rel=1e-6)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
@pytest.mark.parametrize("family", FAMILIES)
def test_contributions_add_up_to_the_models_output(
    fitted: Callable[..., Any], name: str, family: str
) -> None:
    model, X, _, task = fitted(name, family)
    rows = X.sample(8, random_state=1)
    explainer = Explainer(model, X.sample(200, random_state=0))
    scale, explained = explainer.explain(rows)
    _assert_additive(explained)
    _assert_explains_the_model(model, rows, explained)
    assert all(set(e.contributions) == set(X.columns) for e in explained)
    if task != "regression":
        assert all(e.explained_class == str(e.prediction) for e in explained)
    expected_scale = {
        ("lightgbm", "binary"): "log_odds",
        ("xgboost", "multiclass"): "margin",
        ("random_forest", "binary"): "probability",
        ("linear", "regression"): "value",
        ("lightgbm", "regression"): "value",
    }.get((family, task))
    if expected_scale:
        assert scale == expected_scale


def test_log_odds_output_is_the_logit_of_the_probability(fitted: Callable[..., Any]) -> None:
    model, X, _, _ = fitted("credit_data", "lightgbm")
    rows = X.head(5)
    scale, explained = Explainer(model, X.head(100)).explain(rows)
    assert scale == "log_odds"
    for e in explained:
        p = e.natural["output"]
        assert e.output == pytest.approx(np.log(p / (1 - p)), rel=1e-6)


def test_one_hot_and_missing_indicator_parts_sum_to_their_column(
    fitted: Callable[..., Any],
) -> None:
    model, X, _, _ = fitted("credit_data", "linear")
    _, [explained] = Explainer(model, X.head(200)).explain(X.head(1))
    home = explained.parts["Home"]
    assert len(home) > 2
    assert all(name.startswith("Home_") for name in home)
    assert any("missingindicator" in name for name in explained.parts["Income"])


def _members(
    name: str, sample: Callable[..., Any]
) -> tuple[list[tuple[str, Any]], pd.DataFrame, pd.Series, str]:
    X, y, task = sample(name)
    members = [
        ("lightgbm", build_pipeline(CandidateSpec("lightgbm", {"n_estimators": 20}), task, seed=0)),
        (
            "forest",
            build_pipeline(
                CandidateSpec("random_forest", {"n_estimators": 15, "max_depth": 5}), task, seed=0
            ),
        ),
        ("linear", build_pipeline(CandidateSpec("linear"), task, seed=0)),
    ]
    return members, X, y, task


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_soft_voting_is_weighted_member_contributions_on_the_probability_scale(
    sample: Callable[..., Any], name: str
) -> None:
    members, X, y, task = _members(name, sample)
    weights = [0.5, 0.3, 0.2]
    ensemble: Any = (
        VotingRegressor(members, weights=weights)
        if task == "regression"
        else VotingClassifier(members, voting="soft", weights=weights)
    )
    ensemble.fit(X, y)
    rows = X.sample(6, random_state=2)
    explainer = Explainer(ensemble, X.sample(150, random_state=0))
    scale, explained = explainer.explain(rows)
    assert explainer.method == "weighted_members"
    assert scale == ("value" if task == "regression" else "probability")
    _assert_additive(explained)
    _assert_explains_the_model(ensemble, rows, explained)
    assert [e.output for e in explained] == pytest.approx(
        _truth(ensemble, rows, explained), rel=1e-6
    )


def test_stacking_falls_back_to_the_additive_sampling_explainer(sample: Callable[..., Any]) -> None:
    members, X, y, _ = _members("credit_data", sample)
    stack = StackingClassifier(members[:2], final_estimator=LogisticRegression(), cv=3).fit(X, y)
    rows = X.head(3)
    explainer = Explainer(stack, X.sample(100, random_state=0))
    scale, explained = explainer.explain(rows)
    assert explainer.method == "sampling"
    assert scale == "probability"
    _assert_additive(explained)
    _assert_explains_the_model(stack, rows, explained)


def test_threshold_tuned_model_explains_the_class_it_predicts(fitted: Callable[..., Any]) -> None:
    model, X, y, _ = fitted("credit_data", "lightgbm")
    tuned = apply_threshold(model, 0.2, "bad", X.head(20), y.head(20))
    rows = X.head(40)
    _, explained = Explainer(tuned, X.head(200)).explain(rows)
    predicted = list(tuned.predict(rows))
    assert [e.explained_class for e in explained] == predicted
    assert "bad" in predicted
    _assert_additive(explained)
    _assert_explains_the_model(tuned, rows, explained)


def test_recipe_derived_columns_are_summed_back_to_their_sources(
    sample: Callable[..., Any],
) -> None:
    X, y, _ = sample("credit_data")
    recipe = {
        "steps": [
            {"step": "derive", "name": "burden", "expression": "Debt / (Income + 1)"},
            {"step": "encode", "columns": ["Home"], "method": "one_hot"},
        ]
    }
    prepared = RecipeTransformer(recipe=recipe).fit(X)
    model = build_pipeline(CandidateSpec("lightgbm", {"n_estimators": 20}), "binary", seed=0)
    model.fit(prepared.transform(X), y)
    whole = Pipeline([("recipe_0", prepared), ("model", model)])
    rows = X.head(5)
    _, explained = Explainer(whole, X.sample(200, random_state=0)).explain(rows)
    _assert_additive(explained)
    _assert_explains_the_model(whole, rows, explained)
    first = explained[0]
    assert set(first.contributions) == set(X.columns)
    assert "burden" in first.parts["Debt"]
    assert "burden" in first.parts["Income"]
    assert any(name.startswith("Home") and name != "Home" for name in first.parts["Home"])


def test_rows_are_read_with_the_background_dtypes(fitted: Callable[..., Any]) -> None:
    model, X, _, _ = fitted("hitters", "lightgbm")
    rows = X.head(2).astype({"AtBat": float, "League": object})
    _, explained = Explainer(model, X.head(100)).explain(rows)
    _assert_additive(explained)


def test_a_missing_value_in_a_column_trained_without_any_stays_missing(
    sample: Callable[..., Any],
) -> None:
    X, y, _ = sample("credit_data")
    X = X.assign(Owner=X["Home"].eq("owner"), Children=X["Age"].floordiv(20).astype(int))
    model = build_pipeline(CandidateSpec("linear"), "binary", seed=0).fit(X, y)
    rows = X.head(3).astype({"Owner": object, "Children": float})
    rows.loc[0, "Owner"] = None
    rows.loc[1, "Children"] = np.nan
    explainer = Explainer(model, X.sample(100, random_state=0))
    _, explained = explainer.explain(rows)
    _assert_additive(explained)
    _assert_explains_the_model(model, rows, explained)
