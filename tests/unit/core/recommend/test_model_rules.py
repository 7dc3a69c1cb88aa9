"""Model rules over real evaluations of fitted scikit-learn models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from tests.support.recommendations import assert_grounded

from narrate.core.automl.config import TrainConfig
from narrate.core.automl.problem import ProblemInfo
from narrate.core.evaluation import evaluate
from narrate.core.recommend import recommend_for_model

RNG = np.random.default_rng(7)
N = 600


def _binary(y: np.ndarray) -> ProblemInfo:
    share = float(np.mean(y == "yes"))
    return ProblemInfo("label", "binary", "", ["no", "yes"], "yes", min(share, 1 - share), len(y))


def _summary(n: int = 5_000, **config: Any) -> dict[str, Any]:
    return {
        "n_train": int(n * 0.8),
        "n_holdout": n - int(n * 0.8),
        "config": {"target": "label", "time_budget_s": 60.0, "imbalance": "auto", **config},
        "feature_warnings": [],
    }


def _recommend(summary: dict[str, Any], evaluation: dict[str, Any], **extra: Any) -> list[Any]:
    items = recommend_for_model(summary, evaluation, **extra)
    for item in items:
        assert_grounded(item)
        if item["action"]["type"] == "training_options":  # accepted as training options
            TrainConfig.model_validate({"target": "label", **item["action"]["options"]})
    return items


def _rules(items: list[dict[str, Any]]) -> list[str]:
    return [i["rule"] for i in items]


def _informative() -> tuple[pd.DataFrame, np.ndarray]:
    x = RNG.normal(size=N)
    y = np.where(x + RNG.normal(scale=0.5, size=N) > 0, "yes", "no")
    return pd.DataFrame({"x": x, "noise": RNG.normal(size=N)}), y


def test_a_good_model_on_plenty_of_rows_gets_no_advice() -> None:
    X, y = _informative()
    model = LogisticRegression().fit(X, y)
    evaluation = evaluate(model, X, y, _binary(y), n_bootstrap=0)
    assert _recommend(_summary(), evaluation) == []


def test_a_model_no_better_than_guessing_asks_for_more_signal() -> None:
    X, y = _informative()
    model = DummyClassifier(strategy="prior").fit(X, y)
    evaluation = evaluate(model, X, y, _binary(y), n_bootstrap=0)
    items = _recommend(_summary(), evaluation)
    item = next(i for i in items if i["rule"] == "barely_better_than_baseline")
    assert item["reason"] == (
        "On 600 held-out rows its ROC AUC is 0.5, against 0.5 for a naive baseline that "
        "ignores every column."
    )
    assert item["action"] == {"type": "none"}


def test_regression_barely_better_than_the_mean_is_flagged() -> None:
    X = pd.DataFrame({"x": RNG.normal(size=N)})
    y = RNG.normal(size=N) * 10 + 50
    info = ProblemInfo("price", "regression", "", n_rows=N)
    evaluation = evaluate(DummyRegressor().fit(X, y), X, y, info, n_bootstrap=0)
    assert "barely_better_than_baseline" in _rules(_recommend(_summary(), evaluation))
    good_y = X["x"].to_numpy() * 10 + 50
    good = evaluate(LinearRegression().fit(X, good_y), X, good_y, info, n_bootstrap=0)
    assert _recommend(_summary(), good) == []


def _rare_positive() -> tuple[pd.DataFrame, np.ndarray]:
    x = RNG.normal(size=N)
    y = np.where((x > 1.6) & (RNG.random(N) < 0.8), "yes", "no")
    return pd.DataFrame({"x": RNG.normal(size=N) + 0.3 * x}), y


@pytest.mark.parametrize(
    ("config", "options"),
    [
        ({}, {"imbalance": "class_weight", "threshold": {"objective": "f1"}}),
        (
            {"imbalance": "class_weight", "threshold": {"objective": "f1"}},
            {"threshold": {"objective": "recall", "target_value": 0.7}},
        ),
    ],
    ids=["first-time", "already-weighted"],
)
def test_poor_minority_recall_suggests_what_was_not_tried(
    config: dict[str, Any], options: dict[str, Any]
) -> None:
    X, y = _rare_positive()
    model = LogisticRegression().fit(X, y)
    evaluation = evaluate(model, X, y, _binary(y), n_bootstrap=0)
    recall = evaluation["per_class"]["yes"]["recall"]
    assert recall < 0.5
    items = _recommend(_summary(**config), evaluation)
    item = next(i for i in items if i["rule"] == "poor_minority_recall")
    assert item["action"] == {"type": "training_options", "options": options}
    support = evaluation["per_class"]["yes"]["support"]
    assert "held-out rows of 'yes'" in item["reason"]
    assert f"of the {support} held-out" in item["reason"]


def test_one_dominant_column_with_a_perfect_score_is_a_leak() -> None:
    y = np.where(RNG.random(N) < 0.4, "yes", "no")
    X = pd.DataFrame({"paid_back": (y == "yes").astype(float), "age": RNG.normal(size=N)})
    model = LogisticRegression().fit(X, y)
    evaluation = evaluate(model, X, y, _binary(y), n_bootstrap=0)
    importances = {
        "columns": [
            {"column": "paid_back", "importance": 0.45, "std": 0.01, "parts": {}},
            {"column": "age", "importance": 0.01, "std": 0.01, "parts": {}},
        ]
    }
    summary = _summary(feature_warnings=[])
    summary["feature_warnings"] = [{"column": "paid_back", "kind": "leakage", "message": ""}]
    items = _recommend(summary, evaluation, importances=importances)
    item = next(i for i in items if i["rule"] == "leaking_column")
    assert item["action"]["steps"] == [{"step": "drop_columns", "columns": ["paid_back"]}]
    assert "carries 98% of the model's importance" in item["reason"]
    assert "flagged it as a leakage suspect" in item["reason"]
    assert "leaking_column" not in _rules(_recommend(summary, evaluation))  # no importances


def test_small_data_asks_for_repeated_cv_and_a_longer_budget() -> None:
    X, y = _informative()
    evaluation = evaluate(LogisticRegression().fit(X, y), X, y, _binary(y), n_bootstrap=0)
    item = next(i for i in _recommend(_summary(n=400), evaluation) if i["rule"] == "small_dataset")
    assert item["action"]["options"] == {"cv": "kfold", "cv_repeats": 3, "time_budget_s": 300.0}
    assert "from 400 labelled rows, under 1,000" in item["reason"]


def test_skewed_regression_target_is_pointed_out() -> None:
    X = pd.DataFrame({"x": RNG.normal(size=N)})
    y = np.exp(X["x"].to_numpy() * 1.5)
    info = ProblemInfo("price", "regression", "", n_rows=N)
    evaluation = evaluate(LinearRegression().fit(X, y), X, y, info, n_bootstrap=0)
    target = {"name": "price", "skew": float(pd.Series(y).skew()), "min": float(y.min())}
    items = _recommend(_summary(), evaluation, target_profile=target)
    item = next(i for i in items if i["rule"] == "skewed_target")
    assert item["action"] == {"type": "none"}
    assert "no log-target option" in item["effect"]
