"""Per-class metrics for binary problems and one-vs-rest curves for multiclass ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl.problem import ProblemInfo
from narrate.core.evaluation import evaluate
from narrate.core.evaluation.curves import MAX_CURVE_POINTS, multiclass_curves


class FixedScores:
    """A 'fitted model' that returns the probabilities it was given, row for row."""

    def __init__(self, classes: list[str], proba: np.ndarray) -> None:
        self.classes_ = np.asarray(classes, dtype=object)
        self.proba = proba

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.proba[: len(X)]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _problem(task: str, classes: list[str], positive: str | None = None) -> ProblemInfo:
    return ProblemInfo(
        task=task,
        target="y",
        classes=classes,
        positive_class=positive,
        reasoning="hand-made",
    )


def test_binary_evaluation_has_per_class_precision_recall_and_support() -> None:
    # 6 'no' and 4 'yes'; at threshold 0.5 one 'no' is called 'yes' and one 'yes' is missed.
    y = ["no"] * 6 + ["yes"] * 4
    p_yes = np.array([0.1, 0.2, 0.1, 0.3, 0.2, 0.7, 0.9, 0.8, 0.6, 0.4])
    model = FixedScores(["no", "yes"], np.column_stack([1 - p_yes, p_yes]))
    X = pd.DataFrame({"x": np.arange(10)})
    result = evaluate(model, X, y, _problem("binary", ["no", "yes"], "yes"), n_bootstrap=0)
    json.dumps(result)
    per_class = result["per_class"]
    assert {c: v["support"] for c, v in per_class.items()} == {"no": 6, "yes": 4}
    assert per_class["yes"]["precision"] == pytest.approx(3 / 4)
    assert per_class["yes"]["recall"] == pytest.approx(3 / 4)
    assert per_class["no"]["recall"] == pytest.approx(5 / 6)
    assert per_class["no"]["f1"] == pytest.approx(5 / 6)
    # The binary keys that were already there are unchanged.
    assert set(result["curves"]) == {"roc", "pr", "calibration", "gain"}
    assert result["positive_class"] == "yes"


def test_multiclass_curves_perfect_separation_gives_auc_one_per_class() -> None:
    classes = ["a", "b", "c"]
    y = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 5, dtype=object)
    proba = np.zeros((15, 3))
    for row, label in enumerate(y):
        proba[row, classes.index(label)] = 0.8
        proba[row, [i for i in range(3) if classes[i] != label]] = 0.1
    curves = multiclass_curves(y, proba, classes)
    json.dumps(curves)
    assert set(curves["roc_ovr"]) == set(classes)
    for label in classes:
        roc = curves["roc_ovr"][label]
        assert roc["auc"] == pytest.approx(1.0)
        assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
        pr = curves["pr_ovr"][label]
        assert pr["average_precision"] == pytest.approx(1.0)
        assert pr["prevalence"] == pytest.approx(1 / 3)
    # Every prediction is right at confidence 0.8: each calibration bin observes 1.0.
    calibration = curves["calibration"]
    assert calibration["kind"] == "predicted_class"
    assert calibration["observed"] == [1.0] * len(calibration["observed"])
    assert calibration["predicted"] == pytest.approx([0.8] * len(calibration["predicted"]))


def test_multiclass_curves_reversed_scores_give_auc_zero_and_skip_absent_classes() -> None:
    classes = ["a", "b", "c"]
    y = np.array(["a", "a", "b", "b"], dtype=object)  # 'c' never occurs
    # Scores for 'a' are highest on the 'b' rows: a perfectly wrong ranking for 'a'.
    proba = np.array([[0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    curves = multiclass_curves(y, proba, classes)
    assert set(curves["roc_ovr"]) == {"a", "b"}
    assert curves["roc_ovr"]["a"]["auc"] == pytest.approx(0.0)
    assert "c" not in curves["pr_ovr"]
    assert curves["calibration"]["observed"] == [0.0, 0.0]  # every prediction is wrong


def test_multiclass_curves_are_downsampled_on_many_rows() -> None:
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    y = rng.choice(np.asarray(classes, dtype=object), 3000)
    proba = rng.dirichlet([1, 1, 1], 3000)
    curves = multiclass_curves(y, proba, classes)
    for label in classes:
        assert len(curves["roc_ovr"][label]["fpr"]) <= MAX_CURVE_POINTS
        assert len(curves["pr_ovr"][label]["recall"]) <= MAX_CURVE_POINTS
        assert 0.4 < curves["roc_ovr"][label]["auc"] < 0.6
    assert len(curves["calibration"]["predicted"]) == 10


def test_multiclass_evaluation_has_ovr_curves_and_per_class_support() -> None:
    classes = ["a", "b", "c"]
    y = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    proba = np.array(
        [[0.9, 0.05, 0.05]] * 4 + [[0.1, 0.8, 0.1]] * 3 + [[0.1, 0.2, 0.7]] * 2, dtype=float
    )
    model = FixedScores(classes, proba)
    X = pd.DataFrame({"x": np.arange(9)})
    result = evaluate(model, X, y, _problem("multiclass", classes), n_bootstrap=0)
    json.dumps(result)
    assert {c: v["support"] for c, v in result["per_class"].items()} == {"a": 4, "b": 3, "c": 2}
    assert all(v["f1"] == pytest.approx(1.0) for v in result["per_class"].values())
    assert {c: r["auc"] for c, r in result["curves"]["roc_ovr"].items()} == {
        "a": 1.0,
        "b": 1.0,
        "c": 1.0,
    }
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(1.0)


def _card_result() -> dict[str, object]:
    """The parts of ``TrainResult.to_dict()`` a model card reads."""
    return {
        "problem": {"target": "y", "task": "multiclass", "reasoning": "hand-made", "warnings": []},
        "n_train": 30,
        "n_holdout": 9,
        "validation": "kfold",
        "metric": "log_loss",
        "seed": 0,
        "imbalance_strategy": "none",
        "imbalance_reason": "balanced",
        "trials_done": 1,
        "duration_s": 0.1,
        "cancelled": False,
        "dropped_features": {},
        "leaderboard": [],
        "feature_warnings": [],
        "library_versions": {},
    }


def test_model_card_shows_per_class_rows_and_one_vs_rest_curves() -> None:
    from narrate.core.evaluation import render_model_card

    classes = ["a", "b", "c"]
    y = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    proba = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.1, 0.8, 0.1]] * 3 + [[0.1, 0.2, 0.7]] * 2)
    evaluation = evaluate(
        FixedScores(classes, proba),
        pd.DataFrame({"x": np.arange(9)}),
        y,
        _problem("multiclass", classes),
        n_bootstrap=0,
    )
    context = {"result": _card_result(), "evaluation": evaluation}
    markdown = render_model_card(context, fmt="md")
    assert "| class | precision | recall | F1 | rows |" in markdown
    assert "| b | 1.0 | 1.0 | 1.0 | 3 |" in markdown
    html = render_model_card(context, fmt="html")
    assert "ROC curve per class (one vs rest)" in html
    assert "c (AUC 1.000)" in html
    assert "Calibration of the predicted class" in html
