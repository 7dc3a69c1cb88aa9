"""The recipe model: an ordered list of typed steps, read from JSON or YAML."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from narrate.core.recipes.steps import (
    STEP_TYPES,
    BinStep,
    CastStep,
    ClipOutliersStep,
    DatetimePartsStep,
    DeduplicateStep,
    DeriveStep,
    DropColumnsStep,
    DropMissingStep,
    EncodeStep,
    FilterStep,
    ImputeStep,
    KeepColumnsStep,
    PiiStep,
    RareCategoriesStep,
    RenameStep,
    ReorderStep,
    SampleStep,
    ScaleStep,
    SortStep,
    TextStep,
    TransformStep,
)
from narrate.errors import InvalidInput

__all__ = ["STEP_ALIASES", "Recipe", "Step", "load_document", "step_names"]

Step = Annotated[
    DropColumnsStep
    | KeepColumnsStep
    | RenameStep
    | ReorderStep
    | CastStep
    | DropMissingStep
    | ImputeStep
    | FilterStep
    | DeriveStep
    | DeduplicateStep
    | ClipOutliersStep
    | ScaleStep
    | TransformStep
    | BinStep
    | EncodeStep
    | DatetimePartsStep
    | TextStep
    | RareCategoriesStep
    | PiiStep
    | SampleStep
    | SortStep,
    Field(discriminator="step"),
]

#: Other names accepted for a step type.
STEP_ALIASES: dict[str, str] = {"drop": "drop_columns"}


def step_names() -> list[str]:
    """Return every valid step type name."""
    return [t.step_name() for t in STEP_TYPES]


class Recipe(BaseModel):
    """An ordered list of transformation steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(default_factory=list)

    @classmethod
    def parse(cls, obj: Recipe | dict[str, Any] | str) -> Recipe:
        """Read a recipe from a dict or JSON/YAML text.

        Args:
            obj: ``{"steps": [...]}`` as a dict, JSON or YAML text (or a recipe).

        Returns:
            The validated recipe.

        Raises:
            InvalidInput: Unreadable text, an unknown step type (the message lists the
                valid ones) or invalid parameters; ``details["issues"]`` names the step
                index and parameter of each.
        """
        if isinstance(obj, Recipe):
            return obj
        data = load_document(obj) if isinstance(obj, str) else obj
        data = _normalise(data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            issues = [_issue_from_error(err) for err in exc.errors()]
            first = issues[0]
            where = (
                f"step {first['step_index'] + 1}" if first["step_index"] is not None else "recipe"
            )
            param = f" parameter '{first['parameter']}'" if first["parameter"] else ""
            raise InvalidInput(
                f"The recipe is not valid: {where}{param}: {first['message']}",
                code="invalid_recipe",
                details={"issues": issues},
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as plain JSON data."""
        return self.model_dump(mode="json")


def load_document(text: str, *, syntax: Literal["json", "yaml"] | None = None) -> Any:
    """Read a recipe document's text as JSON or YAML (``yaml.safe_load``, no tags).

    Args:
        text: The document.
        syntax: ``"json"`` or ``"yaml"``; when ``None`` JSON is tried first, then YAML.

    Returns:
        The parsed data (not yet checked as a recipe).

    Raises:
        InvalidInput: A syntax error, ``code="invalid_json"`` or ``"invalid_yaml"``, with
            the 1-based ``line`` and ``column`` in ``details`` and the message.
    """
    if syntax != "yaml":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if syntax == "json":
                raise InvalidInput(
                    f"The recipe is not valid JSON: {exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}.",
                    code="invalid_json",
                    details={"line": exc.lineno, "column": exc.colno},
                ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, tried_json=syntax is None) from exc


def _yaml_error(exc: yaml.YAMLError, *, tried_json: bool) -> InvalidInput:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    kind = "neither valid JSON nor YAML" if tried_json else "not valid YAML"
    if mark is None:
        return InvalidInput(f"The recipe is {kind}: {problem}.", code="invalid_yaml")
    line, column = mark.line + 1, mark.column + 1
    return InvalidInput(
        f"The recipe is {kind}: {problem} at line {line}, column {column}.",
        code="invalid_yaml",
        hint="Check the indentation and the ':' after each key on that line.",
        details={"line": line, "column": column},
    )


def _normalise(data: Any) -> dict[str, Any]:
    """Check the outer shape, resolve aliases and reject unknown step types early."""
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict) or not isinstance(data.get("steps", []), list):
        raise InvalidInput(
            'A recipe is an object with a "steps" list, e.g. {"steps": [{"step": "drop", ...}]}.',
            code="invalid_recipe",
        )
    names = step_names()
    steps = []
    for index, step in enumerate(data.get("steps", [])):
        if not isinstance(step, dict) or "step" not in step:
            raise _step_error(index, 'each step is an object with a "step" field', names)
        name = STEP_ALIASES.get(step["step"], step["step"])
        if name not in names:
            raise _step_error(index, f"unknown step type '{step['step']}'", names)
        steps.append({**step, "step": name})
    return {**data, "steps": steps}


def _step_error(index: int, problem: str, names: list[str]) -> InvalidInput:
    message = f"Step {index + 1}: {problem}. Valid step types: {', '.join(names)}."
    issue = {
        "step_index": index,
        "step": None,
        "parameter": "step",
        "column": None,
        "message": message,
        "code": "unknown_step",
    }
    return InvalidInput(
        message, code="unknown_step", details={"issues": [issue], "valid_steps": names}
    )


def _issue_from_error(err: Any) -> dict[str, Any]:
    """Turn one pydantic error into an issue naming the step and parameter."""
    loc = list(err["loc"])
    index = loc[1] if len(loc) > 1 and loc[0] == "steps" and isinstance(loc[1], int) else None
    rest = [str(p) for p in loc[3:]] if index is not None else [str(p) for p in loc]
    parameter = rest[0] if rest else None
    step = str(loc[2]) if index is not None and len(loc) > 2 else None
    message = str(err["msg"]).removeprefix("Value error, ")
    return {
        "step_index": index,
        "step": step,
        "parameter": parameter,
        "column": None,
        "message": message,
        "code": "invalid_parameter",
    }
