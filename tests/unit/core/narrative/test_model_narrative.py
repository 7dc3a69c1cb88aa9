"""The model narrative: drivers, quality against the baseline with the metric glossed, and
each caveat, on real trainings; every number of the text is one of its facts."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pytest

from narrate.core import glossary
from narrate.core.automl import TrainConfig, train
from narrate.core.evaluation import evaluate
from narrate.core.narrative.grounding import ungrounded_numbers
from narrate.core.narrative.model import describe_model, model_narrative

Trained = tuple[dict[str, Any], dict[str, Any]]


def _sample(name: str) -> pd.DataFrame:
    return pd.read_csv(str(resources.files("narrate") / "samples" / f"{name}.csv"))


def _fit(df: pd.DataFrame, target: str, **config: Any) -> Trained:
    settings = {"max_trials": 2, "n_folds": 3, "n_jobs": 1, "families": ["baseline", "lightgbm"]}
    result = train(df, TrainConfig(target=target, **{**settings, **config}))
    known = df[df[target].notna()].reset_index(drop=True)
    hold = known.iloc[result.holdout_indices]
    evaluation = evaluate(
        result.best_pipeline,
        hold.drop(columns=[target]),
        hold[target],
        result.problem,
        n_bootstrap=20,
    )
    return result.to_dict(), evaluation


@pytest.fixture(scope="module")
def credit() -> Trained:
    """A binary model on 2,000 rows of the credit sample (ROC AUC, threshold)."""
    return _fit(_sample("credit_data").sample(n=2000, random_state=1), "Status")


@pytest.fixture(scope="module")
def hitters() -> Trained:
    """A regression model on 263 rows: small data and a small holdout."""
    return _fit(_sample("hitters"), "Salary")


@pytest.fixture(scope="module")
def rare_and_leaky() -> Trained:
    """Credit rows with the 'bad' class cut to about 5% and a column that copies the target."""
    df = _sample("credit_data")
    bad = df[df["Status"] == "bad"].head(60)
    good = df[df["Status"] == "good"].head(1140)
    built = pd.concat([bad, good]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    built["review_flag"] = np.where(built["Status"] == "bad", 1, 0) + rng.normal(
        0, 0.01, len(built)
    )
    return _fit(built, "Status")


def _grounded(result: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    told = model_narrative(result, evaluation)
    assert ungrounded_numbers(told["text"], told["facts"]) == [], told["text"]
    assert told["text"] == describe_model(result, evaluation)
    return told


def test_binary_model_names_metric_gloss_baseline_and_points_to_interpret(
    credit: Trained,
) -> None:
    result, evaluation = credit
    told = _grounded(result, evaluation)
    text = told["text"]
    assert (
        "ROC AUC — how well the model ranks a likely case above an unlikely one; 0.5 is "
        "guessing (higher is better)." in text
    )
    facts = {f["name"]: f["value"] for f in told["facts"]}
    assert facts["roc_auc"] == round(evaluation["metrics"]["roc_auc"]["value"], 2)
    assert f"ROC AUC {facts['roc_auc']:.2f}" in text
    assert f"baseline that ignores the inputs scores {facts['baseline roc_auc']:.2f}" in text
    assert "open the Interpret page" in text
    assert "Caveats" not in text or "the data is small" not in text


def test_stored_importances_name_the_top_columns(credit: Trained) -> None:
    result, evaluation = credit
    importances = {
        "columns": [
            {"column": "Seniority", "importance": 0.0712},
            {"column": "Income", "importance": 0.0458},
            {"column": "Records", "importance": 0.031},
            {"column": "Age", "importance": 0.002},
        ]
    }
    told = _grounded({**result, "importances": importances}, evaluation)
    assert (
        "What drives the predictions most: `Seniority` (0.071), `Income` (0.046) and "
        "`Records` (0.031)." in told["text"]
    )
    assert "Age" not in told["text"]


def test_regression_on_small_data_says_so_in_the_targets_units(hitters: Trained) -> None:
    result, evaluation = hitters
    told = _grounded(result, evaluation)
    text = told["text"]
    assert "RMSE — the typical size of an error, in the target's units (lower is better)" in text
    assert "the data is small (263 rows)" in text
    assert f"only {evaluation['n_rows']} rows were held out" in text
    rmse = next(f["value"] for f in told["facts"] if f["name"] == "rmse")
    assert rmse == glossary.rounded("rmse", evaluation["metrics"]["rmse"]["value"])


def test_rare_class_and_leakage_are_caveats(rare_and_leaky: Trained) -> None:
    result, evaluation = rare_and_leaky
    text = _grounded(result, evaluation)["text"]
    assert "the smallest class is only 5.0% of rows" in text
    assert "may leak it: 'review_flag'" in text


def test_overfitting_gap_is_a_caveat(credit: Trained) -> None:
    result, evaluation = credit
    # the cross-validation score of the best candidate set well above its holdout score
    board = copy.deepcopy(result["leaderboard"])
    board[0]["cv_score_mean"] = min(1.0, evaluation["metrics"]["roc_auc"]["value"] + 0.15)
    told = _grounded({**result, "leaderboard": board, "metric": "roc_auc"}, evaluation)
    assert "Its ROC AUC was " in told["text"] and "so it may be overfitting" in told["text"]


def test_worse_than_baseline_is_a_caveat(hitters: Trained) -> None:
    result, evaluation = hitters
    worse = copy.deepcopy(evaluation)
    naive = worse["metrics"]["rmse"]["value"] * 0.8
    worse["baseline"]["rmse"] = naive
    worse["lift"]["rmse"] = naive - worse["metrics"]["rmse"]["value"]
    told = _grounded(result, worse)
    assert "worse than the naive baseline" in told["text"]
    assert "so the model is" in told["text"] and "worse." in told["text"]


def test_threshold_fairness_cancel_and_refit_sentences_are_grounded(credit: Trained) -> None:
    result, evaluation = credit
    extra = {
        **result,
        "threshold": {"threshold": 0.3712, "reason": "it gives the best F1 (0.61) on 5 folds"},
        "cancelled": True,
        "refit_full": True,
    }
    fair = {
        **evaluation,
        "fairness": {
            "Marital": {"flags": ["Recall is 0.42 for 'widow' against 0.71 overall."]},
            "Home": {"flags": []},
        },
    }
    text = _grounded(extra, fair)["text"]
    assert "probability is at least 0.37, because it gives the best F1 (0.61)" in text
    assert "Recall is 0.42 for 'widow'" in text
    assert "No large gaps were found across 'Home'." in text
    assert "stopped early" in text and "refitted on all labelled rows" in text


def test_multiclass_model_is_glossed_and_grounded() -> None:
    result, evaluation = _fit(_sample("penguins"), "species")
    told = _grounded(result, evaluation)
    metric = evaluation["primary_metric"]
    said = glossary.gloss(metric)
    assert f"{said[:1].upper()}{said[1:]} ({glossary.term(metric).direction})." in told["text"]


def test_an_undefined_score_is_said_without_a_number(credit: Trained) -> None:
    result, evaluation = credit
    undefined = copy.deepcopy(evaluation)
    undefined["metrics"]["roc_auc"] = {"value": None, "ci_low": None, "ci_high": None}
    told = _grounded(result, undefined)
    assert f"ROC AUC is not defined on these {evaluation['n_rows']:,} rows" in told["text"]


def test_a_changed_number_is_caught(credit: Trained) -> None:
    told = model_narrative(*credit)
    rows = next(f["value"] for f in told["facts"] if f["name"] == "held-out rows")
    wrong = told["text"].replace(f"{rows:,} held-out", f"{rows + 1:,} held-out")
    assert ungrounded_numbers(wrong, told["facts"]) == [f"{rows + 1:,}"]
