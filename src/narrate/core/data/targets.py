"""Which columns could be a prediction target, and how a chosen target is distributed."""

from __future__ import annotations

import re
from typing import Any

from narrate.core.data.types import ColumnKind

__all__ = ["potential_targets", "target_summary"]

_TARGET_WORDS = re.compile(
    r"(^|_)(target|label|labels|class|churn|churned|status|outcome|y|price|default|fraud|"
    r"survived|response|result|diagnosis|sales|salary|converted|label_id)$",
    re.IGNORECASE,
)
_CLASSIFIABLE = {ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL}
_MAX_CLASSES = 20
_LIMIT = 5


def _problem_type(profile: dict[str, Any]) -> str | None:
    kind = ColumnKind(profile["kind"])
    if kind in _CLASSIFIABLE:
        return "classification" if 2 <= profile["distinct"] <= _MAX_CLASSES else None
    if kind == ColumnKind.INTEGER and 2 <= profile["distinct"] <= 10:
        return "classification"
    if kind in {ColumnKind.INTEGER, ColumnKind.FLOAT}:
        return "regression"
    return None


def potential_targets(columns: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank the columns most likely meant as the prediction target.

    Args:
        columns: Column name -> column profile.

    Returns:
        Up to five ``{"column", "problem_type", "reason", "score"}``, best first.
    """
    names = list(columns)
    found: list[dict[str, Any]] = []
    for position, name in enumerate(names):
        profile = columns[name]
        problem = _problem_type(profile)
        if problem is None or profile["missing_share"] > 0.5:
            continue
        score, reasons = 0.0, []
        if _TARGET_WORDS.search(name.replace(" ", "_").replace("-", "_")):
            score += 3
            reasons.append("its name suggests an outcome")
        if profile["distinct"] == 2:
            score += 1.5
            reasons.append("it has exactly two values")
        elif problem == "classification":
            score += 0.5
            reasons.append(f"it has {profile['distinct']} classes")
        if position in (0, len(names) - 1):
            score += 0.5
            reasons.append("it is the " + ("first" if position == 0 else "last") + " column")
        if reasons:
            reason = "; ".join(reasons)
            found.append(
                {"column": name, "problem_type": problem, "reason": reason, "score": score}
            )
    found.sort(key=lambda item: -float(item["score"]))
    return found[:_LIMIT]


def target_summary(profile: dict[str, Any], class_counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Describe a chosen target: problem type and, for classification, class balance.

    Args:
        profile: The target column's profile.
        class_counts: ``[{"value", "count"}]`` for every class (classification only).

    Returns:
        ``{"column", "problem_type", "classes": [{"value","count","share"}],
        "minority_share", "majority_share"}`` (class keys only for classification).
    """
    problem = _problem_type(profile) or "unsupported"
    summary: dict[str, Any] = {"column": profile["name"], "problem_type": problem}
    if problem != "classification":
        return summary
    total = sum(item["count"] for item in class_counts) or 1
    classes = [
        {"value": item["value"], "count": item["count"], "share": round(item["count"] / total, 6)}
        for item in sorted(class_counts, key=lambda item: -int(item["count"]))
    ]
    summary["classes"] = classes
    summary["majority_share"] = classes[0]["share"] if classes else None
    summary["minority_share"] = classes[-1]["share"] if classes else None
    return summary
