"""Checks shared by the recommendation tests: every number is a fact, every action applies."""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from narrate.core.automl.config import TrainConfig
from narrate.core.recipes.fit import fit_recipe
from narrate.core.recipes.validate import validate_recipe

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def numbers_in(text: str, facts: list[dict[str, Any]]) -> list[float]:
    """The numbers of a text once every quoted text fact ('a column name') is taken out."""
    words = {f"'{f['value']}'" for f in facts if isinstance(f["value"], str)}
    for word in sorted(words, key=len, reverse=True):
        text = text.replace(word, " ")
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text)]


def assert_grounded(item: dict[str, Any]) -> None:
    """Every number in the title, reason and effect appears among the item's facts."""
    values = {float(f["value"]) for f in item["facts"] if isinstance(f["value"], int | float)}
    for part in ("title", "reason", "effect"):
        for number in numbers_in(item[part], item["facts"]):
            assert abs(number) in values, (part, number, item)
    for fact in item["facts"]:
        assert set(fact) == {"name", "value", "source"}, fact
        assert fact["name"] and fact["source"], fact


def assert_applies(item: dict[str, Any], frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
    """The item's action is accepted by the recipe validator (and fits) or by TrainConfig."""
    action = item["action"]
    if action["type"] == "recipe_steps":
        recipe = {"steps": action["steps"]}
        assert validate_recipe(recipe, frame.schema, target=target) == [], item
        out, _ = fit_recipe(frame, recipe, target=target)
        return out
    if action["type"] == "training_options":
        TrainConfig.model_validate({"target": target or "t", **action["options"]})
    else:
        assert action == {"type": "none"}, item
    return frame
