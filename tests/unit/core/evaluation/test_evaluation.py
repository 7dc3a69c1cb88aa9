from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from narrate.core.automl import TrainConfig, detect_problem, refit, train
from narrate.core.automl.candidates import CandidateSpec
from narrate.core.evaluation import compare_models, evaluate, render_model_card
from narrate.core.narrative.model import describe_model
from narrate.errors import InvalidInput


def _split(df: pd.DataFrame, target: str, n_test: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return shuffled.iloc[n_test:], shuffled.iloc[:n_test]


def _linear(df: pd.DataFrame, target: str) -> object:
    config = TrainConfig(target=target, n_jobs=1)
    return refit(CandidateSpec("linear", imbalance="class_weight"), df, config)


def test_binary_metrics_are_sane_on_credit(credit: pd.DataFrame) -> None:
    fit_rows, test_rows = _split(credit, "Status", 900)
    model = _linear(fit_rows, "Status")
    problem = detect_problem(credit, "Status")
    result = evaluate(
        model,
        test_rows.drop(columns=["Status"]),
        test_rows["Status"],
        problem,
        sensitive=test_rows[["Marital"]],
        n_bootstrap=50,
    )
    json.dumps(result)
    auc = result["metrics"]["roc_auc"]
    assert 0.75 < auc["value"] < 0.95
    assert auc["ci_low"] < auc["value"] < auc["ci_high"]
    assert result["lift"]["roc_auc"] == pytest.approx(auc["value"] - 0.5, abs=1e-6)
    assert len(result["curves"]["roc"]["fpr"]) <= 200
    assert sum(map(sum, result["confusion_matrix"]["matrix"])) == 900
    assert result["positive_class"] == "bad"
    assert "Marital" in result["fairness"]
    assert result["slices"][0]["gap"] > 0


def test_multiclass_metrics_are_sane_on_penguins(penguins: pd.DataFrame) -> None:
    fit_rows, test_rows = _split(penguins, "species", 100)
    model = _linear(fit_rows, "species")
    result = evaluate(
        model,
        test_rows.drop(columns=["species"]),
        test_rows["species"],
        detect_problem(penguins, "species").to_dict(),
        n_bootstrap=30,
    )
    assert result["metrics"]["accuracy"]["value"] > 0.9
    assert set(result["per_class"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert result["lift"]["accuracy"] > 0.4


def test_regression_metrics_and_charts_on_hitters(hitters: pd.DataFrame) -> None:
    fit_rows, test_rows = _split(hitters, "Salary", 60)
    model = _linear(fit_rows, "Salary")
    result = evaluate(
        model,
        test_rows.drop(columns=["Salary"]),
        test_rows["Salary"],
        detect_problem(hitters, "Salary"),
        sensitive=test_rows[["League"]],
        n_bootstrap=30,
    )
    assert 0.2 < result["metrics"]["r2"]["value"] < 0.9
    assert result["lift"]["rmse"] > 0
    curves = result["curves"]
    assert len(curves["predicted_vs_actual"]["actual"]) == 60
    assert sum(curves["residual_histogram"]["counts"]) == 60
    assert "mae" in result["fairness"]["League"]["by_group"]


def test_evaluate_uses_a_given_baseline(credit: pd.DataFrame) -> None:
    fit_rows, test_rows = _split(credit, "Status", 500)
    model = _linear(fit_rows, "Status")
    naive = DummyClassifier(strategy="prior").fit(
        fit_rows.drop(columns=["Status"]), fit_rows["Status"]
    )
    result = evaluate(
        model,
        test_rows.drop(columns=["Status"]),
        test_rows["Status"],
        detect_problem(credit, "Status"),
        baseline=naive,
        n_bootstrap=0,
    )
    assert result["baseline"]["roc_auc"] == pytest.approx(0.5)
    assert result["metrics"]["roc_auc"]["ci_low"] is None


def test_fairness_flags_large_gaps_in_plain_language() -> None:
    from narrate.core.evaluation.fairness import fairness_report

    y = np.array([1, 0] * 50)
    pred = np.array([1] * 50 + [0] * 50)
    groups = pd.DataFrame({"group": ["a"] * 50 + ["b"] * 50})
    report = fairness_report(y, pred, groups, task="binary")["group"]
    assert report["demographic_parity_difference"] == pytest.approx(1.0)
    assert any("differ by 1.00" in flag for flag in report["flags"])


def test_evaluate_refuses_mismatched_rows(penguins: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="3 feature rows and 2 target values"):
        evaluate(
            None,
            penguins.iloc[:3],
            penguins["species"].iloc[:2],
            detect_problem(penguins, "species"),
        )


def test_compare_models_and_card_and_narrative(hitters: pd.DataFrame) -> None:
    config = TrainConfig(
        target="Salary",
        max_trials=3,
        n_folds=3,
        n_jobs=1,
        families=["baseline", "linear", "lightgbm"],
    )
    result = train(hitters, config)
    holdout = hitters.iloc[result.holdout_indices]
    evaluation = evaluate(
        result.best_pipeline,
        holdout.drop(columns=["Salary"]),
        holdout["Salary"],
        result.problem,
        n_bootstrap=20,
    )
    text = describe_model(result.to_dict(), evaluation)
    assert text.startswith("The best model (")
    assert "held-out rows" in text
    assert "the data is small (263 rows)" in text
    assert describe_model(result.to_dict(), evaluation) == text
    other = {**evaluation, "name": "other"}
    comparison = compare_models([{**evaluation, "name": "main"}, other])
    assert comparison["models"] == ["main", "other"]
    context = {"result": result.to_dict(), "evaluation": evaluation, "narrative": text}
    html = render_model_card(context, fmt="html")
    assert "<script" in html
    assert "Leaderboard" in html
    assert 'src="https://cdn' not in html
    markdown = render_model_card(context, fmt="md")
    assert "| rank | family |" in markdown
    assert text in markdown
    with pytest.raises(InvalidInput, match="format 'pdf'"):
        render_model_card(context, fmt="pdf")  # type: ignore[arg-type]
