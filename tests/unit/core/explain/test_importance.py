"""Global importances: permutation in raw columns, with spread and mean |contribution|."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression

from narrate.core.explain import Explainer
from narrate.core.explain.importance import permutation_importances


@pytest.mark.parametrize(
    ("name", "family", "strong", "score"),
    [
        ("credit_data", "lightgbm", {"Income", "Seniority", "Amount", "Records", "Job"}, "roc_auc"),
        (
            "penguins",
            "linear",
            {"bill_length_mm", "flipper_length_mm", "island", "bill_depth_mm"},
            "neg_log_loss",
        ),
        (
            "hitters",
            "random_forest",
            {"CRBI", "CRuns", "CHits", "CAtBat", "CWalks", "CHmRun", "Years"},
            "r2",
        ),
    ],
    ids=["binary", "multiclass", "regression"],
)
def test_a_strong_raw_column_ranks_high(
    fitted: Callable[..., Any], name: str, family: str, strong: set[str], score: str
) -> None:
    model, X, y, task = fitted(name, family)
    rows = X.sample(min(400, len(X)), random_state=3)
    explainer = Explainer(model, X.sample(100, random_state=0, replace=True))
    result = permutation_importances(
        model, rows, y.loc[rows.index], task, repeats=3, explainer=explainer
    )
    assert result.score == score
    assert [c.column for c in result.columns] != []
    assert {c.column for c in result.columns} == set(X.columns)
    assert result.columns[0].column in strong
    assert all(c.std >= 0 for c in result.columns)
    importances = [c.importance for c in result.columns]
    assert importances == sorted(importances, reverse=True)
    top = result.columns[0]
    assert top.mean_abs_contribution is not None and top.mean_abs_contribution > 0
    assert result.n_rows == len(rows)
    assert result.repeats == 3


def test_one_hot_parts_move_together_and_are_listed(fitted: Callable[..., Any]) -> None:
    model, X, y, task = fitted("credit_data", "linear")
    rows = X.sample(500, random_state=4)
    explainer = Explainer(model, X.sample(100, random_state=0))
    result = permutation_importances(
        model, rows, y.loc[rows.index], task, repeats=2, explainer=explainer
    )
    home = next(c for c in result.columns if c.column == "Home")
    assert len(home.parts) > 2
    assert all(part.startswith("Home_") for part in home.parts)
    assert result.to_dict()["columns"][0]["column"] == result.columns[0].column


def test_sampling_models_get_permutation_importance_only(
    sample: Callable[..., Any], fitted: Callable[..., Any]
) -> None:
    lightgbm, X, y, task = fitted("credit_data", "lightgbm")
    linear, *_ = fitted("credit_data", "linear")
    stack = StackingClassifier(
        [("a", lightgbm), ("b", linear)], final_estimator=LogisticRegression(), cv="prefit"
    )
    rows = X.sample(300, random_state=5)
    stack.fit(rows, y.loc[rows.index])
    explainer = Explainer(stack, X.sample(50, random_state=0))
    result = permutation_importances(
        stack, rows, y.loc[rows.index], task, repeats=2, explainer=explainer
    )
    assert explainer.method == "sampling"
    assert all(c.mean_abs_contribution is None and c.parts == {} for c in result.columns)
    assert result.contribution_scale is None


@pytest.mark.parametrize(
    ("name", "family"),
    [("credit_data", "lightgbm"), ("credit_data", "linear"), ("penguins", "xgboost")],
)
def test_shuffling_prepared_parts_equals_shuffling_the_raw_column(
    fitted: Callable[..., Any], name: str, family: str
) -> None:
    model, X, y, task = fitted(name, family)
    rows = X.sample(min(300, len(X)), random_state=6)
    target = y.loc[rows.index]
    raw = permutation_importances(model, rows, target, task, repeats=2, seed=1)
    explainer = Explainer(model, X.sample(100, random_state=0))
    fast = permutation_importances(
        model, rows, target, task, repeats=2, seed=1, explainer=explainer
    )
    assert [c.column for c in fast.columns] == [c.column for c in raw.columns]
    assert [c.importance for c in fast.columns] == pytest.approx(
        [c.importance for c in raw.columns], abs=1e-9
    )
    assert fast.baseline_score == pytest.approx(raw.baseline_score, abs=1e-12)
