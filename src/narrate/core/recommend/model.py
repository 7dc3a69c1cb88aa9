"""Model rules: what to do after an evaluation.

Read from a model version's stored summary (problem, row counts, config, feature
warnings), its holdout evaluation (metrics, the naive baseline, per-class recall) and,
when they were computed, its importances in raw columns; plus the profile of the target
column it was trained on, when that is still visible.
"""

from __future__ import annotations

from typing import Any

from narrate.core.recommend.items import (
    Facts,
    Item,
    none_action,
    recipe_action,
    sort_items,
    training_action,
)

__all__ = ["LEAKING_SHARE", "NEAR_PERFECT", "SMALL_DATA", "recommend_for_model"]

#: Lift over the naive baseline below which a model is "barely better", per metric.
_SMALL_LIFT = {"roc_auc": 0.05, "accuracy": 0.03, "balanced_accuracy": 0.05, "r2": 0.1}
#: A score this good, with one column dominating, suggests the column holds the answer.
NEAR_PERFECT = {"roc_auc": 0.99, "accuracy": 0.99, "balanced_accuracy": 0.99, "r2": 0.98}
LEAKING_SHARE = 0.5
SMALL_DATA = 1_000
POOR_RECALL = 0.5
RARE_CLASS = 0.2
SKEWED_TARGET = 2.0
_LONGER_BUDGET_S = 300.0
_LABELS = {
    "roc_auc": "ROC AUC",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "r2": "R²",
}


def _judged_metric(evaluation: dict[str, Any]) -> str | None:
    """The metric judged against the baseline: one whose guessing value is well known."""
    order = {"binary": ("roc_auc",), "multiclass": ("balanced_accuracy", "accuracy")}.get(
        evaluation.get("task", ""), ("r2",)
    )
    metrics, baseline = evaluation.get("metrics") or {}, evaluation.get("baseline") or {}
    for name in order:
        if (metrics.get(name) or {}).get("value") is not None and baseline.get(name) is not None:
            return name
    return None


def recommend_for_model(
    summary: dict[str, Any],
    evaluation: dict[str, Any],
    *,
    importances: dict[str, Any] | None = None,
    target_profile: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every recommendation for a trained and evaluated model version.

    Args:
        summary: The version's stored training summary (``problem``, ``n_train``,
            ``n_holdout``, ``config``, ``feature_warnings``, ``imbalance_strategy``).
        evaluation: Its holdout evaluation (``narrate.core.evaluation.evaluate``).
        importances: Its importances in raw columns, if computed.
        target_profile: The profile of the target column in the training data.

    Returns:
        Items in the shape of the dataset recommendations.
    """
    items: list[Item] = []
    items += _baseline_items(evaluation)
    items += _minority_items(summary, evaluation)
    items += _leakage_items(summary, evaluation, importances)
    items += _small_data_items(summary)
    items += _skewed_target_items(evaluation, target_profile)
    return sort_items(items)


def _baseline_items(evaluation: dict[str, Any]) -> list[Item]:
    metric = _judged_metric(evaluation)
    if metric is None:
        return []
    value = float(evaluation["metrics"][metric]["value"])
    naive = float(evaluation["baseline"][metric])
    if value - naive >= _SMALL_LIFT[metric]:
        return []
    f = Facts()
    label = _LABELS[metric]
    got = f.number(f"model {label}", value, f"evaluation.metrics.{metric}")
    guess = f.number(f"baseline {label}", naive, f"evaluation.baseline.{metric}")
    rows = f.count("held-out rows", evaluation["n_rows"], "evaluation.n_rows")
    return [
        Item(
            rule="barely_better_than_baseline",
            kind="evaluate",
            severity="critical",
            title="The model hardly beats guessing",
            reason=f"On {rows} held-out rows its {label} is {got}, against {guess} for a naive "
            "baseline that ignores every column.",
            effect="More training time won't fix this: the columns carry little signal about "
            "the target. Add rows, or add columns that plausibly drive the outcome "
            "(history, amounts, dates turned into parts), then train again.",
            action=none_action(),
            facts=f,
        )
    ]


def _minority_items(summary: dict[str, Any], evaluation: dict[str, Any]) -> list[Item]:
    per_class = evaluation.get("per_class") or {}
    if evaluation.get("task") not in ("binary", "multiclass") or not per_class:
        return []
    total = sum(int(v["support"]) for v in per_class.values()) or 1
    label, stats = min(per_class.items(), key=lambda kv: (int(kv[1]["support"]), kv[0]))
    share = int(stats["support"]) / total
    if share >= RARE_CLASS or float(stats["recall"]) >= POOR_RECALL:
        return []
    f = Facts()
    shown = f.text("rarest class", str(label), "evaluation.per_class")
    recall = f.percent("rarest class recall", float(stats["recall"]), "evaluation.per_class")
    found = f.count("rarest class rows", int(stats["support"]), "evaluation.per_class")
    config = summary.get("config") or {}
    options: dict[str, Any] = {}
    if config.get("imbalance") != "class_weight":
        options["imbalance"] = "class_weight"
    if evaluation["task"] == "binary":
        current = (config.get("threshold") or {}).get("objective")
        options["threshold"] = (
            {"objective": "recall", "target_value": 0.7} if current == "f1" else {"objective": "f1"}
        )
    if not options:
        return []
    how = []
    if "imbalance" in options:
        how.append("weighing the classes makes mistakes on the rare class cost more")
    if "threshold" in options:
        objective = options["threshold"]["objective"]
        aim = (
            f.percent("recall aim", 0.7, "recommended threshold target_value")
            if objective == "recall"
            else ""
        )
        tuned_for = f"recall of {aim}" if aim else "precision and recall"
        how.append(
            f"a threshold tuned for {tuned_for} flags the rare class more readily, at the "
            "price of more false alarms"
        )
    return [
        Item(
            rule="poor_minority_recall",
            kind="train",
            severity="warning",
            subject=str(label),
            title=f"Find more of the rare class '{shown}'",
            reason=f"The model finds only {recall} of the {found} held-out rows of '{shown}'.",
            effect=f"Train again with these options: {'; '.join(how)}.",
            action=training_action(**options),
            facts=f,
        )
    ]


def _leakage_items(
    summary: dict[str, Any], evaluation: dict[str, Any], importances: dict[str, Any] | None
) -> list[Item]:
    metric = _judged_metric(evaluation)
    if metric is None or not importances or not importances.get("columns"):
        return []
    value = float(evaluation["metrics"][metric]["value"])
    columns = [c for c in importances["columns"] if (c.get("importance") or 0) > 0]
    total = sum(float(c["importance"]) for c in columns)
    if value < NEAR_PERFECT[metric] or not columns or total <= 0:
        return []
    top = max(columns, key=lambda c: float(c["importance"]))
    share = float(top["importance"]) / total
    if share < LEAKING_SHARE:
        return []
    name, f = str(top["column"]), Facts()
    shown = f.text("column", name, "importances.columns")
    part = f.percent("share of importance", share, "importances.columns")
    score = f.number(_LABELS[metric], value, f"evaluation.metrics.{metric}")
    flagged = any(
        w.get("column") == name and w.get("kind") == "leakage"
        for w in summary.get("feature_warnings") or []
    )
    extra = " Training flagged it as a leakage suspect too." if flagged else ""
    return [
        Item(
            rule="leaking_column",
            kind="exclude",
            severity="critical",
            subject=name,
            title=f"Drop '{shown}' and train again: it may hold the answer",
            reason=f"The {_LABELS[metric]} is a near-perfect {score}, and '{shown}' alone carries "
            f"{part} of the model's importance.{extra}",
            effect="If the column is filled in only after the outcome is known, the model will "
            "fail in use; dropping it gives an honest score.",
            action=recipe_action({"step": "drop_columns", "columns": [name]}),
            facts=f,
        )
    ]


def _small_data_items(summary: dict[str, Any]) -> list[Item]:
    rows = int(summary.get("n_train") or 0) + int(summary.get("n_holdout") or 0)
    if not rows or rows >= SMALL_DATA:
        return []
    config = summary.get("config") or {}
    budget = float(config.get("time_budget_s") or 60.0)
    f = Facts()
    n = f.count("labelled rows", rows, "summary.n_train + summary.n_holdout")
    limit = f.count("small data threshold", SMALL_DATA, "rule threshold")
    options: dict[str, Any] = {"cv": "kfold", "cv_repeats": 3}
    longer = ""
    if budget < _LONGER_BUDGET_S:
        options["time_budget_s"] = _LONGER_BUDGET_S
        longer = f" and a budget of {f.count('budget seconds', 300, 'recommended')} seconds"
    return [
        Item(
            rule="small_dataset",
            kind="train",
            severity="info",
            title="Validate more carefully on this small dataset",
            reason=f"The model learned from {n} labelled rows, under {limit}; one split's "
            "score is noisy at this size.",
            effect=f"Repeated k-fold cross-validation{longer} gives a steadier score to choose "
            "the model by; small data trains fast, so this costs little.",
            action=training_action(**options),
            facts=f,
        )
    ]


def _skewed_target_items(
    evaluation: dict[str, Any], target_profile: dict[str, Any] | None
) -> list[Item]:
    if evaluation.get("task") != "regression" or not target_profile:
        return []
    skew, low = target_profile.get("skew"), target_profile.get("min")
    if skew is None or skew < SKEWED_TARGET or low is None or float(low) < 0:
        return []
    f = Facts()
    shown = f.text("target", str(target_profile["name"]), "profile.target.column")
    said = f.number("target skew", float(skew), "profile.columns.target.skew")
    return [
        Item(
            rule="skewed_target",
            kind="train",
            severity="info",
            subject=str(target_profile["name"]),
            title=f"Mind the long tail of '{shown}'",
            reason=f"The target '{shown}' is strongly skewed (skew {said}): a few very large "
            "values dominate the squared errors the models minimise.",
            effect="Training has no log-target option yet. Judge the model by MAE rather "
            "than RMSE, or derive a log of the target with a recipe and predict that "
            "(predictions are then on the log scale).",
            action=none_action(),
            facts=f,
        )
    ]
