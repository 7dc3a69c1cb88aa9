"""Plain-language description of a trained and evaluated model (deterministic, no LLM).

:func:`model_narrative` says what drives the predictions (the stored importances in raw
columns, when computed), how good the model is against the naive baseline (the metric
glossed from :mod:`narrate.core.glossary`) and its caveats, and returns the facts every
number of the text comes from.
"""

from __future__ import annotations

from typing import Any

from narrate.core import glossary

__all__ = ["describe_model", "model_narrative"]

_NAMES = {
    "baseline": "a naive baseline",
    "linear": "a linear model",
    "random_forest": "Random Forest",
    "extra_trees": "Extra Trees",
    "hist_gradient_boosting": "Histogram Gradient Boosting",
    "lightgbm": "LightGBM",
    "xgboost": "XGBoost",
    "ensemble:soft_voting": "a voting ensemble",
    "ensemble:stacking": "a stacked ensemble",
    "ensemble:blending": "a blended ensemble",
}
_SMALL_DATA = 500
_SMALL_HOLDOUT = 200
_RARE_CLASS = 0.1
_GAP = 0.05
_TOP_DRIVERS = 3


class _Facts:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, value: Any, source: str) -> Any:
        self.items.append({"name": name, "value": value, "source": source})
        return value


def _headline(result: dict[str, Any], evaluation: dict[str, Any], facts: _Facts) -> list[str]:
    family = str(result["leaderboard"][0]["family"]) if result.get("leaderboard") else "model"
    name = _NAMES.get(family, family)
    facts.add("model family", family, "leaderboard[0].family")
    metric = evaluation["primary_metric"]
    entry = evaluation["metrics"][metric]
    target = facts.add("target", str(evaluation["target"]), "evaluation.target")
    n_rows = facts.add("held-out rows", int(evaluation["n_rows"]), "evaluation.n_rows")
    if entry.get("value") is None:
        return [
            f"The best model ({name}) predicts {target}, but its {glossary.label(metric)} "
            f"is not defined on these {n_rows:,} rows (they hold one class only)."
        ]
    value = facts.add(
        metric, glossary.rounded(metric, entry["value"]), f"evaluation.metrics.{metric}.value"
    )
    interval = ""
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        low = facts.add(
            f"{metric} low",
            glossary.rounded(metric, entry["ci_low"]),
            f"evaluation.metrics.{metric}.ci_low",
        )
        high = facts.add(
            f"{metric} high",
            glossary.rounded(metric, entry["ci_high"]),
            f"evaluation.metrics.{metric}.ci_high",
        )
        interval = f" ({glossary.say(metric, low)}–{glossary.say(metric, high)})"
    sentences = [
        f"The best model ({name}) predicts {target} with {glossary.label(metric)} "
        f"{glossary.say(metric, value)}{interval} on {n_rows:,} held-out rows."
    ]
    explained = facts.add(f"meaning of {metric}", glossary.gloss(metric), f"glossary.{metric}")
    sentences.append(f"{explained[:1].upper()}{explained[1:]} ({glossary.term(metric).direction}).")
    naive = (evaluation.get("baseline") or {}).get(metric)
    if naive is not None:
        base = facts.add(
            f"baseline {metric}", glossary.rounded(metric, naive), f"evaluation.baseline.{metric}"
        )
        text = f"A naive baseline that ignores the inputs scores {glossary.say(metric, base)}"
        lift = (evaluation.get("lift") or {}).get(metric)
        if lift is not None and glossary.rounded(metric, lift) != 0:
            gain = facts.add(
                f"lift over baseline in {metric}",
                glossary.rounded(metric, lift),
                f"evaluation.lift.{metric}",
            )
            word = "better" if gain > 0 else "worse"
            text += f", so the model is {glossary.say(metric, abs(gain))} {word}"
        sentences.append(text + ".")
    return sentences


def _drivers(result: dict[str, Any], facts: _Facts) -> str:
    stored = result.get("importances") or {}
    columns = [c for c in stored.get("columns") or [] if c.get("importance") is not None]
    top = sorted(columns, key=lambda c: -float(c["importance"]))[:_TOP_DRIVERS]
    if not top:
        return (
            "Which columns drive the predictions is not computed yet; "
            "open the Interpret page to compute it."
        )
    shown = []
    for i, column in enumerate(top):
        facts.add("driver", str(column["column"]), f"importances.columns[{i}].column")
        value = facts.add(
            f"importance of {column['column']}",
            round(float(column["importance"]), 3),
            f"importances.columns[{i}].importance",
        )
        shown.append(f"`{column['column']}` ({value:.3f})")
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return (
        f"What drives the predictions most: {listed}. The figure is how much the score "
        "drops when that column is shuffled (permutation importance)."
    )


def _overfitting(result: dict[str, Any], evaluation: dict[str, Any], facts: _Facts) -> str | None:
    metric = result.get("metric")
    board = result.get("leaderboard") or []
    if not board or not metric or metric not in evaluation["metrics"]:
        return None
    cv, holdout = board[0]["cv_score_mean"], evaluation["metrics"][metric]["value"]
    if cv is None or holdout is None:
        return None
    worse = holdout - cv if glossary.lower_is_better(metric) else cv - holdout
    relative = worse / max(abs(cv), 1e-9)
    bounded = metric not in ("rmse", "mae", "mape")
    if relative > _GAP and (not bounded or worse > _GAP / 2):
        cv_said = facts.add(
            f"cross-validation {metric}",
            glossary.rounded(metric, cv),
            "leaderboard[0].cv_score_mean",
        )
        hold_said = facts.add(
            f"held-out {metric}",
            glossary.rounded(metric, holdout),
            f"evaluation.metrics.{metric}.value",
        )
        return (
            f"Its {glossary.label(metric)} was {glossary.say(metric, cv_said)} in "
            "cross-validation but "
            f"{glossary.say(metric, hold_said)} on held-out rows, so it may be overfitting; "
            "expect results closer to the held-out figure."
        )
    return None


def _caveats(result: dict[str, Any], evaluation: dict[str, Any], facts: _Facts) -> list[str]:
    caveats = []
    n_rows = int(result.get("n_train", 0)) + int(result.get("n_holdout", 0))
    if n_rows < _SMALL_DATA:
        facts.add("labelled rows", n_rows, "n_train + n_holdout")
        caveats.append(f"the data is small ({n_rows:,} rows), so the figures are uncertain")
    held = int(evaluation.get("n_rows") or 0)
    if held < _SMALL_HOLDOUT:
        caveats.append(
            f"only {held:,} rows were held out for testing, so the score could move a lot "
            "on new data"
        )
    metric = evaluation["primary_metric"]
    lift = (evaluation.get("lift") or {}).get(metric)
    if lift is not None and glossary.rounded(metric, lift) < 0:
        caveats.append("it does worse than the naive baseline, so it should not be used as it is")
    share = (result.get("problem") or {}).get("minority_share")
    if share is not None and share < _RARE_CLASS:
        pct = facts.add("smallest class share (%)", round(share * 100, 1), "problem.minority_share")
        caveats.append(
            f"the smallest class is only {pct:.1f}% of rows, so look at precision "
            "and recall, not accuracy"
        )
    leaks = [w["column"] for w in result.get("feature_warnings", []) if w["kind"] == "leakage"]
    for i, column in enumerate(leaks):
        facts.add("leakage suspect", column, f"feature_warnings[{i}].column")
    if leaks:
        caveats.append(
            "these columns predict the target suspiciously well and may leak it: "
            + ", ".join(f"'{c}'" for c in leaks)
        )
    return caveats


def describe_model(result: dict[str, Any], evaluation: dict[str, Any]) -> str:
    """Describe a model's quality and its caveats in plain language.

    The text of :func:`model_narrative`.

    Args:
        result: ``TrainResult.to_dict()`` (or a version's details with its leaderboard).
        evaluation: Output of :func:`narrate.core.evaluation.evaluate` on the holdout rows.

    Returns:
        A short paragraph; the same inputs always give the same text.
    """
    return str(model_narrative(result, evaluation)["text"])


def model_narrative(result: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """The model narrative and the facts it uses.

    Args:
        result: ``TrainResult.to_dict()`` (or a version's details with its leaderboard);
            ``result["importances"]`` (the stored raw-column importances) names the drivers.
        evaluation: Output of :func:`narrate.core.evaluation.evaluate`.

    Returns:
        ``{"text", "facts": [{"name", "value", "source"}]}``; every number in the text is
        among the facts' values.
    """
    facts = _Facts()
    sentences = _headline(result, evaluation, facts)
    sentences.append(_drivers(result, facts))
    threshold = result.get("threshold")
    if threshold:
        cut = facts.add("threshold", round(float(threshold["threshold"]), 2), "threshold.threshold")
        reason = facts.add("threshold reason", str(threshold["reason"]), "threshold.reason")
        positive = facts.add(
            "positive class", str(evaluation.get("positive_class")), "evaluation.positive_class"
        )
        sentences.append(
            f"Rows are flagged as '{positive}' when their probability is at least "
            f"{cut:.2f}, because {reason}."
        )
    overfit = _overfitting(result, evaluation, facts)
    if overfit:
        sentences.append(overfit)
    caveats = _caveats(result, evaluation, facts)
    if caveats:
        sentences.append("Caveats: " + "; ".join(caveats) + ".")
    for column, entry in (evaluation.get("fairness") or {}).items():
        flags = entry.get("flags", []) or []
        for i, flag in enumerate(flags):
            facts.add(
                f"fairness across {column}", str(flag), f"evaluation.fairness.{column}.flags[{i}]"
            )
        sentences.extend(flags or [f"No large gaps were found across '{column}'."])
        facts.add("fairness column", str(column), f"evaluation.fairness.{column}")
    if result.get("cancelled"):
        sentences.append("Training was stopped early, so a better model may exist.")
    if result.get("refit_full"):
        sentences.append(
            "The saved model was then refitted on all labelled rows, the held-out ones "
            "included, with the same settings; the figures above come from before that."
        )
    return {"text": " ".join(sentences), "facts": facts.items}
