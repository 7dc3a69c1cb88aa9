"""Transform stage core: typed recipe steps with fit/apply, validation, preview and diff.

A recipe is plain JSON/YAML ``{"steps": [{"step": "impute", ...}, ...]}``. Steps are
pydantic models (:data:`Step`); :func:`validate_recipe` checks a recipe against a schema
without data; :func:`fit_recipe` learns each step's parameters and returns a
:class:`FittedRecipe` that replays them on new rows. Steps that remove or reorder rows
are training-only: ``FittedRecipe.apply(df, for_prediction=True)`` skips them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from narrate.core.recipes.catalog import step_catalog
from narrate.core.recipes.diff import diff_frames
from narrate.core.recipes.fit import FittedRecipe, fit_recipe
from narrate.core.recipes.model import STEP_ALIASES, Recipe, Step, load_document, step_names
from narrate.core.recipes.preview import check_data_loss, preview_recipe
from narrate.core.recipes.stats import column_stats
from narrate.core.recipes.validate import RecipeIssue, raise_if_invalid, validate_recipe

if TYPE_CHECKING:
    from narrate.core.recipes.sklearn import RecipeTransformer

__all__ = [
    "STEP_ALIASES",
    "FittedRecipe",
    "Recipe",
    "RecipeIssue",
    "RecipeTransformer",
    "Step",
    "check_data_loss",
    "column_stats",
    "diff_frames",
    "fit_recipe",
    "load_document",
    "preview_recipe",
    "raise_if_invalid",
    "step_catalog",
    "step_names",
    "validate_recipe",
]


def __getattr__(name: str) -> Any:
    # The scikit-learn wrapper loads on first use: a served model runs recipes with Polars
    # alone and must not pay for importing scikit-learn (see narrate.core.serving).
    if name == "RecipeTransformer":
        from narrate.core.recipes.sklearn import RecipeTransformer

        return RecipeTransformer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
