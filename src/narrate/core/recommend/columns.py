"""Column rules over a stored profile: drop what can't help, fill gaps, reshape the rest.

Each rule reads one column's profile (see ``narrate.core.data.column_stats``) and returns
at most one :class:`Item` whose action is a recipe step the recipe API accepts.
"""

from __future__ import annotations

import re
from typing import Any

from narrate.core.recommend.items import Facts, Item, Severity, recipe_action

__all__ = [
    "HIGH_CARDINALITY",
    "MOSTLY_EMPTY",
    "NEAR_CONSTANT",
    "SKEW",
    "SOME_EMPTY",
    "column_items",
    "dropped_column_item",
    "identifier_item",
]

MOSTLY_EMPTY = 0.5
SOME_EMPTY = 0.05
NEAR_CONSTANT = 0.98
SKEW = 2.0
HIGH_CARDINALITY = 50
RARE_SHARE = 0.01
_MIN_DISTINCT_TO_RESHAPE = 10
_NUMERIC = {"integer", "float"}
_TEMPORAL = {"date", "datetime"}
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|[a-z]Id$|ID$", re.IGNORECASE)


def _src(column: str, stat: str) -> str:
    return f"profile.columns.{column}.{stat}"


def _drop(column: str) -> dict[str, Any]:
    return recipe_action({"step": "drop_columns", "columns": [column]})


def identifier_item(col: dict[str, Any], rows: int) -> Item | None:
    """An identifier column (by kind, or a whole number unique per row named like an ID)."""
    name = col["name"]
    unique_int = (
        col["kind"] == "integer"
        and col["missing"] == 0
        and col["distinct"] == rows
        and rows > 1
        and _ID_NAME.search(name) is not None
    )
    if col["kind"] != "identifier" and not unique_int:
        return None
    f = Facts()
    shown = f.text("column", name, _src(name, "name"))
    distinct = f.count("distinct values", col["distinct"], _src(name, "distinct"))
    total = f.count("rows", rows, "profile.table.rows")
    return Item(
        rule="exclude_identifier",
        kind="exclude",
        severity="warning",
        subject=name,
        title=f"Leave out the identifier '{shown}'",
        reason=f"'{shown}' has {distinct} distinct values in {total} rows, so it names each "
        "row rather than describing it.",
        effect="A model can't learn anything from an ID that carries over to new rows; "
        "leaving it out avoids fitting noise and keeps IDs out of the model file.",
        action=_drop(name),
        facts=f,
    )


def dropped_column_item(col: dict[str, Any]) -> Item | None:
    """A constant, near-constant or mostly empty column: drop it."""
    name, f = col["name"], Facts()
    shown = f.text("column", name, _src(name, "name"))
    top = (col.get("top_values") or [{}])[0]
    if col["count"] and col["distinct"] <= 1:
        rule, title = "drop_constant", f"Drop the constant column '{shown}'"
        reason = f"'{shown}' holds one and the same value in every filled row."
        effect = "A column that never changes can't tell rows apart; dropping it changes nothing."
    elif top.get("share", 0) >= NEAR_CONSTANT and not col.get("top_values_sampled"):
        rule, title = "drop_near_constant", f"Drop the near-constant column '{shown}'"
        share = f.percent("share of the most common value", top["share"], _src(name, "top_values"))
        limit = f.percent("near-constant threshold", NEAR_CONSTANT, "rule threshold")
        reason = (
            f"One value fills {share} of the rows of '{shown}' (the rule flags {limit} or more)."
        )
        effect = "The other values are too rare to learn from and invite overfitting."
    elif col["missing_share"] >= MOSTLY_EMPTY:
        rule, title = "drop_mostly_empty", f"Drop the mostly empty column '{shown}'"
        missing = f.count("empty values", col["missing"], _src(name, "missing"))
        share = f.percent("empty share", col["missing_share"], _src(name, "missing_share"))
        reason = f"'{shown}' is empty in {missing} rows ({share})."
        effect = (
            "Filling it in would invent more values than it holds, so dropping it is safer "
            "than imputing."
        )
    else:
        return None
    severity: Severity = "warning" if rule != "drop_near_constant" else "info"
    return Item(rule, "clean", title, reason, effect, _drop(name), f, severity, subject=name)


def _impute_item(col: dict[str, Any]) -> Item | None:
    name, kind = col["name"], col["kind"]
    if not SOME_EMPTY <= col["missing_share"] < MOSTLY_EMPTY:
        return None
    if kind in _NUMERIC:
        strategy, how = "median", "the median"
        why = "the median is not pulled by extreme values the way the mean is"
    elif kind in {"categorical", "boolean"}:
        strategy, how = "mode", "the most common value"
        why = "a category has no average, and the most common value keeps the shares close"
    else:
        return None
    f = Facts()
    shown = f.text("column", name, _src(name, "name"))
    missing = f.count("empty values", col["missing"], _src(name, "missing"))
    share = f.percent("empty share", col["missing_share"], _src(name, "missing_share"))
    return Item(
        rule="impute_missing",
        kind="clean",
        severity="warning",
        subject=name,
        title=f"Fill the empty values of '{shown}' with {how}",
        reason=f"'{shown}' is empty in {missing} rows ({share}): too many to drop the rows, "
        f"too few to drop the column. Use {how} because {why}.",
        effect="Every row keeps a value, so no row is lost and models that can't take empty "
        "values can use the column.",
        action=recipe_action({"step": "impute", "columns": [name], "strategy": strategy}),
        facts=f,
    )


def _skew_item(col: dict[str, Any]) -> Item | None:
    name, skew = col["name"], col.get("skew")
    if col["kind"] not in _NUMERIC or skew is None or skew < SKEW or col.get("min") is None:
        return None
    if col["distinct"] <= _MIN_DISTINCT_TO_RESHAPE:
        return None
    f = Facts()
    shown = f.text("column", name, _src(name, "name"))
    said = f.number("skew", skew, _src(name, "skew"))
    is_positive = float(col["min"]) >= 0
    method = "log" if is_positive else "yeo_johnson"
    how = "a log transform" if is_positive else "a Yeo-Johnson transform (it has negative values)"
    return Item(
        rule="log_transform" if is_positive else "power_transform",
        kind="transform",
        severity="info",
        subject=name,
        title=f"Reduce the skew of '{shown}' with {how.split(' (')[0]}",
        reason=f"'{shown}' has a long tail to the right (skew {said}): a few very large values "
        "dominate it.",
        effect=f"{how[0].upper()}{how[1:]} spreads the common small values out and pulls the "
        "tail in, which helps linear models and distance-based steps; tree models are "
        "unaffected.",
        action=recipe_action({"step": "transform", "columns": [name], "method": method}),
        facts=f,
    )


def _cardinality_item(col: dict[str, Any]) -> Item | None:
    name = col["name"]
    if col["kind"] != "categorical" or col["distinct"] <= HIGH_CARDINALITY:
        return None
    f = Facts()
    shown = f.text("column", name, _src(name, "name"))
    distinct = f.count("distinct values", col["distinct"], _src(name, "distinct"))
    limit = f.percent("rare share", RARE_SHARE, "rule threshold")
    return Item(
        rule="group_rare_categories",
        kind="transform",
        severity="info",
        subject=name,
        title=f"Group the rare values of '{shown}'",
        reason=f"'{shown}' has {distinct} different values; most of them are too rare to "
        "learn from.",
        effect=f"Values below {limit} of rows become 'Other', which keeps encodings small and "
        "stops the model memorising rare labels.",
        action=recipe_action({"step": "rare_categories", "columns": [name], "min_share": 0.01}),
        facts=f,
    )


def _date_item(col: dict[str, Any]) -> Item | None:
    name = col["name"]
    if col["kind"] not in _TEMPORAL or not col["count"]:
        return None
    f = Facts()
    shown = f.text("column", name, _src(name, "name"))
    kind = f.text("kind", col["kind"], _src(name, "kind"))
    return Item(
        rule="date_parts",
        kind="transform",
        severity="info",
        subject=name,
        title=f"Split '{shown}' into year, month, day and weekday",
        reason=f"'{shown}' is a {kind} column; models can't use a date as it is.",
        effect="Year, month, day and weekday become number columns a model can learn "
        "seasons and trends from; the original column is replaced.",
        action=recipe_action({"step": "datetime_parts", "columns": [name]}),
        facts=f,
    )


def column_items(col: dict[str, Any]) -> list[Item]:
    """Fill-in and reshaping advice for a column that stays in the data."""
    rules = (_impute_item, _skew_item, _cardinality_item, _date_item)
    return [item for rule in rules if (item := rule(col)) is not None]
