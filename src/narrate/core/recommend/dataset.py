"""Dataset rules: what to predict, what to leave out, what to clean, how to train.

Read from a stored profile (``narrate.services.profiles.build_profile``): its table
summary, column profiles, correlations, potential targets, target summary and the
personal-data findings. Nothing here reads data.
"""

from __future__ import annotations

import re
from typing import Any

from narrate.core.recommend.columns import column_items, dropped_column_item, identifier_item
from narrate.core.recommend.items import Facts, Item, recipe_action, sort_items, training_action

__all__ = ["IMBALANCED", "LEAKAGE", "imbalance_items", "recommend_for_dataset"]

LEAKAGE = 0.98
IMBALANCED = 0.2
_CANDIDATES = 3
_PII_NAME = re.compile(
    r"(^|_)(e_?mail|phone|mobile|ssn|social_security|passport|first_?name|last_?name|"
    r"full_?name|surname|street|address|date_of_birth|dob|birth_?date|iban|credit_card)(_|$)",
    re.IGNORECASE,
)
_PII_NAME_KINDS = {"text", "categorical", "identifier", "date"}


def recommend_for_dataset(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dataset recommendation for a profile, ordered by stage and severity.

    Args:
        profile: A stored profile; its ``target`` summary (None when no target is chosen)
            decides which target rules apply.

    Returns:
        Items ``{"id", "rule", "kind", "severity", "title", "reason", "effect",
        "action", "facts"}``.
    """
    summary = profile.get("target") or None
    target = summary["column"] if summary else None
    columns: dict[str, dict[str, Any]] = profile["columns"]
    items: list[Item] = []
    if target is None:
        items += _target_items(profile)
    else:
        items += _problem_items(summary or {})
    excluded: dict[str, Item] = {}
    for item in _leakage_items(profile, target) + _pii_items(profile, target):
        excluded.setdefault(str(item.subject), item)
    rows = int(profile["table"]["rows"])
    for name, col in columns.items():
        if name == target or name in excluded:
            continue
        dropped = identifier_item(col, rows) or dropped_column_item(col)
        if dropped is not None:
            excluded[name] = dropped
    items += excluded.values()
    items += _duplicate_items(profile)
    items += imbalance_items(summary)
    for name, col in columns.items():
        if name != target and name not in excluded:
            items += column_items(col)
    return sort_items(items)


def _task(summary: dict[str, Any]) -> str | None:
    if summary.get("problem_type") == "regression":
        return "regression"
    if summary.get("problem_type") == "classification":
        return "binary" if len(summary.get("classes") or []) == 2 else "multiclass"
    return None


def _target_items(profile: dict[str, Any]) -> list[Item]:
    found = []
    for candidate in (profile.get("potential_targets") or [])[:_CANDIDATES]:
        name, problem = candidate["column"], candidate["problem_type"]
        col = profile["columns"][name]
        f = Facts()
        shown = f.text("column", name, f"profile.columns.{name}.name")
        distinct = f.count("distinct values", col["distinct"], f"profile.columns.{name}.distinct")
        why = []
        if "name suggests" in candidate["reason"]:
            why.append("its name suggests an outcome")
        why.append(f"it has {distinct} distinct values")
        noun = "classification" if problem == "classification" else "regression (a number)"
        found.append(
            Item(
                rule="target_candidate",
                kind="target",
                severity="info",
                subject=name,
                title=f"Predict '{shown}'?",
                reason=f"'{shown}' looks like something to predict: {' and '.join(why)}.",
                effect=f"Training would treat this as {noun} and predict '{shown}' from the "
                "other columns.",
                action=training_action(target=name),
                facts=f,
            )
        )
    return found


def _problem_items(summary: dict[str, Any]) -> list[Item]:
    name, task, f = summary["column"], _task(summary), Facts()
    shown = f.text("target", name, "profile.target.column")
    if task is None:
        return [
            Item(
                rule="problem_type",
                kind="problem_type",
                severity="critical",
                subject=name,
                title=f"'{shown}' can't be predicted as it stands",
                reason=f"'{shown}' is neither a number nor a column with a few classes.",
                effect="Pick another target, or group its values into a few classes first.",
                action={"type": "none"},
                facts=f,
            )
        ]
    if task == "regression":
        reason = f"'{shown}' holds numbers, so the model predicts a value."
    else:
        n = f.count("classes", len(summary["classes"]), "profile.target.classes")
        reason = f"'{shown}' has {n} classes, so the model predicts one of them."
    label = {"binary": "two-class", "multiclass": "multi-class", "regression": "regression"}[task]
    return [
        Item(
            rule="problem_type",
            kind="problem_type",
            severity="info",
            subject=name,
            title=f"Train a {label} model",
            reason=reason,
            effect="The problem type decides the candidate models, the metric and the "
            "baseline every model is compared with.",
            action=training_action(target=name, task=task),
            facts=f,
        )
    ]


def _leakage_items(profile: dict[str, Any], target: str | None) -> list[Item]:
    if target is None:
        return []
    correlations = profile.get("correlations") or {}
    suspects: dict[str, tuple[str, float, str]] = {}
    numeric = correlations.get("columns") or []
    if target in numeric:
        row = correlations["pearson"][numeric.index(target)]
        for name, value in zip(numeric, row, strict=True):
            if name != target and value is not None and abs(value) >= LEAKAGE:
                suspects[name] = ("correlation", abs(value), "profile.correlations.pearson")
    cramers = correlations.get("cramers_v") or {}
    categorical = cramers.get("columns") or []
    if target in categorical:
        row = cramers["matrix"][categorical.index(target)]
        for name, value in zip(categorical, row, strict=True):
            if name != target and value is not None and value >= LEAKAGE:
                suspects.setdefault(name, ("Cramér's V", value, "profile.correlations.cramers_v"))
    return [_leakage_item(name, target, *how) for name, how in suspects.items()]


def _leakage_item(name: str, target: str, measure: str, value: float, source: str) -> Item:
    f = Facts()
    shown = f.text("column", name, f"profile.columns.{name}.name")
    goal = f.text("target", target, "profile.target.column")
    strength = f.number(measure, round(value, 3), source)
    return Item(
        rule="exclude_leakage",
        kind="exclude",
        severity="critical",
        subject=name,
        title=f"Leave out '{shown}': it may leak the answer",
        reason=f"'{shown}' predicts '{goal}' almost perfectly ({measure} {strength}); it "
        "probably records the outcome, or something decided after it.",
        effect="Such a column makes a model look excellent in testing and fail in use, "
        "because it is not known when a prediction is needed.",
        action=recipe_action({"step": "drop_columns", "columns": [name]}),
        facts=f,
    )


def _pii_items(profile: dict[str, Any], target: str | None) -> list[Item]:
    found: list[Item] = []
    seen: set[str] = set()
    for finding in profile.get("pii") or []:
        name = finding["column"]
        if name == target or name in seen:
            continue
        seen.add(name)
        f = Facts()
        shown = f.text("column", name, f"profile.columns.{name}.name")
        kind = f.text("personal data kind", finding["kind"].replace("_", " "), "profile.pii")
        share = f.percent("share of checked values", finding["share"], "profile.pii")
        why = f"{share} of the checked values of '{shown}' look like {kind}"
        found.append(_pii_item(name, shown, why, f))
    for name, col in profile["columns"].items():
        if name in seen or name == target or col["kind"] not in _PII_NAME_KINDS:
            continue
        if _PII_NAME.search(name.replace(" ", "_")) is None:
            continue
        f = Facts()
        shown = f.text("column", name, f"profile.columns.{name}.name")
        found.append(_pii_item(name, shown, f"the name '{shown}' suggests personal data", f))
    return found


def _pii_item(name: str, shown: str, why: str, f: Facts) -> Item:
    return Item(
        rule="exclude_personal_data",
        kind="exclude",
        severity="warning",
        subject=name,
        title=f"Leave out the personal data in '{shown}'",
        reason=f"{why[0].upper()}{why[1:]}.",
        effect="Personal details rarely help a model generalise and should not end up in a "
        "model file or a prediction log; drop the column (or mask it with the pii step if "
        "you must keep it).",
        action=recipe_action({"step": "drop_columns", "columns": [name]}),
        facts=f,
    )


def _duplicate_items(profile: dict[str, Any]) -> list[Item]:
    table = profile["table"]
    if not table.get("duplicate_rows"):
        return []
    f = Facts()
    repeated = f.count("duplicate rows", table["duplicate_rows"], "profile.table.duplicate_rows")
    share = f.percent("duplicate share", table["duplicate_rows"] / table["rows"], "profile.table")
    return [
        Item(
            rule="deduplicate_rows",
            kind="clean",
            severity="warning",
            title="Remove repeated rows",
            reason=f"{repeated} rows ({share}) repeat an earlier row exactly.",
            effect="Copies can land on both sides of the train/test split and make scores "
            "look better than they are; keeping the first copy removes that.",
            action=recipe_action({"step": "deduplicate"}),
            facts=f,
        )
    ]


def imbalance_items(summary: dict[str, Any] | None) -> list[Item]:
    """Class-weight and threshold advice when the chosen target's rarest class is rare."""
    if not summary or summary.get("problem_type") != "classification":
        return []
    minority = summary.get("minority_share")
    if minority is None or minority >= IMBALANCED or not summary.get("classes"):
        return []
    f = Facts()
    rare = summary["classes"][-1]
    label = f.text("rarest class", str(rare["value"]), "profile.target.classes")
    share = f.percent("rarest class share", minority, "profile.target.minority_share")
    count = f.count("rarest class rows", rare["count"], "profile.target.classes")
    options: dict[str, Any] = {"imbalance": "class_weight"}
    effect = "Class weights make each mistake on the rare class count more while training"
    if len(summary["classes"]) == 2:
        options["threshold"] = {"objective": "f1"}
        effect += (
            ", and a threshold that balances precision and recall moves the cut-off so the "
            "rare class is found more often"
        )
    return [
        Item(
            rule="imbalanced_target",
            kind="train",
            severity="warning",
            subject=summary["column"],
            title="Weigh the classes when training",
            reason=f"The rarest class, '{label}', is only {share} of rows ({count}); a model "
            "that never predicts it would still look accurate.",
            effect=effect + ".",
            action=training_action(**options),
            facts=f,
        )
    ]
