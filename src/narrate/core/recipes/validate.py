"""Symbolic validation: push a schema through the recipe and collect every issue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from narrate.core.recipes.model import Recipe
from narrate.core.recipes.steps.base import Problem, SchemaState
from narrate.errors import InvalidInput

__all__ = ["RecipeIssue", "raise_if_invalid", "validate_recipe"]


@dataclass(frozen=True)
class RecipeIssue:
    """One problem with a recipe, located by step index, parameter and column."""

    step_index: int | None
    step: str | None
    parameter: str | None
    column: str | None
    message: str
    code: str

    def to_dict(self) -> dict[str, Any]:
        """Return the issue as plain JSON data."""
        return asdict(self)


def validate_recipe(
    recipe: Recipe | dict[str, Any] | str,
    schema: Mapping[str, pl.DataType] | pl.Schema,
    *,
    target: str | None = None,
) -> list[RecipeIssue]:
    """Check a recipe against a schema without touching data.

    The schema is propagated step by step, so a step reading a column an earlier step
    removed is reported with both steps named. SQL expressions are compiled against an
    empty frame of the schema at that step. Disabled steps are skipped.

    Args:
        recipe: The recipe (or its dict / JSON / YAML form).
        schema: Column names and types of the input data.
        target: The column to predict, if chosen.

    Returns:
        Every issue found, in step order; empty when the recipe is valid.
    """
    try:
        parsed = Recipe.parse(recipe)
    except InvalidInput as exc:
        raw = exc.details.get("issues") or [
            {
                "step_index": None,
                "step": None,
                "parameter": None,
                "column": None,
                "message": exc.message,
                "code": exc.code,
            }
        ]
        return [RecipeIssue(**issue) for issue in raw]
    state = SchemaState(columns=dict(schema.items()), target=target)
    removed_by: dict[str, int] = {}
    issues: list[RecipeIssue] = []
    for index, step in enumerate(parsed.steps):
        if not step.enabled:
            continue
        before = set(state.columns)
        problems = step.check(state)
        issues += [_issue(index, step.step, p, removed_by, parsed) for p in problems]
        for column in before - set(state.columns):
            removed_by.setdefault(column, index)
        for column in set(state.columns) - before:
            removed_by.pop(column, None)
    return issues


def _issue(
    index: int, name: str, problem: Problem, removed_by: dict[str, int], recipe: Recipe
) -> RecipeIssue:
    message, code = problem.message, problem.code
    if code == "unknown_column" and problem.column in removed_by:
        earlier = removed_by[problem.column]
        message = (
            f"Column '{problem.column}' was removed by step {earlier + 1} "
            f"({recipe.steps[earlier].step}), so step {index + 1} ({name}) cannot use it. "
            "Reorder the steps or change them."
        )
        code = "column_removed"
    elif code == "unknown_column":
        message = f"Step {index + 1} ({name}): {message} Check the spelling or earlier steps."
    else:
        message = f"Step {index + 1} ({name}): {message}"
    return RecipeIssue(index, name, problem.parameter, problem.column, message, code)


def raise_if_invalid(issues: list[RecipeIssue]) -> None:
    """Raise when there are issues.

    Args:
        issues: What :func:`validate_recipe` returned.

    Raises:
        InvalidInput: ``code="invalid_recipe"``, the first issue's message, and
            ``details={"issues": [...]}`` with all of them.
    """
    if not issues:
        return
    first = issues[0]
    more = f" ({len(issues) - 1} more issue(s))" if len(issues) > 1 else ""
    raise InvalidInput(
        f"{first.message}{more}",
        code="invalid_recipe",
        hint="Fix the named step and preview again.",
        details={"issues": [i.to_dict() for i in issues]},
    )
