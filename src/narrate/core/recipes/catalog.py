"""The step catalog the UI builds its forms from."""

from __future__ import annotations

from typing import Any

from narrate.core.recipes.steps import STEP_TYPES

__all__ = ["step_catalog"]


def step_catalog() -> list[dict[str, Any]]:
    """Describe every step type.

    Returns:
        One dict per step type with ``name``, ``title``, ``description``, ``category``
        and ``json_schema`` — the pydantic JSON schema of its parameters.
    """
    catalog = []
    for step_type in STEP_TYPES:
        schema = step_type.model_json_schema()
        catalog.append(
            {
                "name": step_type.step_name(),
                "title": step_type.title,
                "description": step_type.summary,
                "category": step_type.category,
                "json_schema": schema,
            }
        )
    return catalog
