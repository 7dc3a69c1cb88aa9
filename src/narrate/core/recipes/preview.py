"""Live preview of a recipe on a sample: before/after counts, stats, rows and warnings."""

from __future__ import annotations

from typing import Any

import polars as pl

from narrate.core.recipes.fit import check_target, run_fit
from narrate.core.recipes.model import Recipe
from narrate.core.recipes.sampling import sample_rows as sample_frame
from narrate.core.recipes.stats import column_stats, json_rows, json_value
from narrate.core.recipes.validate import raise_if_invalid, validate_recipe

__all__ = ["DATA_LOSS_SHARE", "PREVIEW_ROWS", "check_data_loss", "preview_recipe"]

#: Removing more than this share of rows triggers a ``data_loss`` warning.
DATA_LOSS_SHARE = 0.5
#: How many transformed rows a preview shows.
PREVIEW_ROWS = 20
_ROW = "__narrate_row__"


def check_data_loss(
    rows_before: int, rows_after: int, removed_columns: list[str], target: str | None
) -> list[dict[str, Any]]:
    """Warn when a transformation loses much of the data.

    Args:
        rows_before: Rows going in.
        rows_after: Rows coming out.
        removed_columns: Columns the transformation removed.
        target: The column to predict, if chosen.

    Returns:
        Warnings as ``{"code", "message", "details"}``: ``empty_result`` when no rows are
        left, ``data_loss`` when more than half the rows or the target column go.
    """
    warnings: list[dict[str, Any]] = []
    dropped = rows_before - rows_after
    if rows_before > 0 and rows_after == 0:
        warnings.append(
            {
                "code": "empty_result",
                "message": f"The recipe removes all {rows_before:,} rows; nothing would be left.",
                "details": {"rows_before": rows_before, "rows_after": 0},
            }
        )
    elif rows_before > 0 and dropped / rows_before > DATA_LOSS_SHARE:
        warnings.append(
            {
                "code": "data_loss",
                "message": f"The recipe removes {dropped:,} of {rows_before:,} rows "
                f"({dropped / rows_before:.0%}). Check the filters and missing-value steps.",
                "details": {"rows_before": rows_before, "rows_after": rows_after},
            }
        )
    if target is not None and target in removed_columns:
        warnings.append(
            {
                "code": "data_loss",
                "message": f"The recipe removes the target column '{target}'; no model could "
                "be trained on the result.",
                "details": {"column": target},
            }
        )
    return warnings


def preview_recipe(
    df: pl.DataFrame,
    recipe: Recipe | dict[str, Any] | str,
    *,
    target: str | None = None,
    sample_rows: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit a recipe on a sample and describe what it changes.

    When ``df`` has at most ``sample_rows`` rows the whole frame is used, so the preview
    equals :func:`~narrate.core.recipes.fit_recipe` output.

    Args:
        df: The data.
        recipe: The recipe (or its dict / JSON / YAML form).
        target: The column to predict; the sample is stratified by it.
        sample_rows: Most rows to fit on.
        seed: Seed for the sample and the recipe.

    Returns:
        JSON-serialisable dict with ``rows`` (before/after/dropped), ``columns``
        (added/removed/changed), ``stats`` (per column, before and after), ``sample``
        (first rows after, with ``changed_cells``), ``steps`` and ``warnings``.

    Raises:
        InvalidInput: Invalid recipe for this data (``details["issues"]``).
        DataProblem: A step cannot learn from the sample.
    """
    parsed = Recipe.parse(recipe)
    check_target(df, target)
    raise_if_invalid(validate_recipe(parsed, df.schema, target=target))
    sample = df
    if df.height > sample_rows:
        sample = sample_frame(df, n=sample_rows, stratify=target, seed=seed)
    before = sample.with_row_index(_ROW)
    after, _ = run_fit(before, parsed, target=target, seed=seed, protected=frozenset({_ROW}))
    columns = _column_changes(sample.schema, after.drop(_ROW).schema)
    return {
        "rows": {
            "total": df.height,
            "sampled": sample.height < df.height,
            "before": sample.height,
            "after": after.height,
            "dropped": sample.height - after.height,
        },
        "columns": columns,
        "stats": _stats(sample, after.drop(_ROW)),
        "sample": _sample_rows(before, after),
        "steps": _steps_summary(parsed),
        "warnings": check_data_loss(sample.height, after.height, columns["removed"], target),
    }


def _steps_summary(recipe: Recipe) -> list[dict[str, Any]]:
    return [
        {
            "index": i,
            "step": step.step,
            "enabled": step.enabled,
            "description": step.describe(),
            "training_only": step.is_training_only(),
        }
        for i, step in enumerate(recipe.steps)
    ]


def _column_changes(before: pl.Schema, after: pl.Schema) -> dict[str, Any]:
    return {
        "before": list(before.names()),
        "after": list(after.names()),
        "added": [c for c in after.names() if c not in before],
        "removed": [c for c in before.names() if c not in after],
        "changed": [
            {"column": c, "before": str(before[c]), "after": str(after[c])}
            for c in after.names()
            if c in before and before[c] != after[c]
        ],
    }


def _stats(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, dict[str, Any]]:
    old, new = column_stats(before), column_stats(after)
    names = [*before.columns, *(c for c in after.columns if c not in old)]
    return {c: {"before": old.get(c), "after": new.get(c)} for c in names}


def _sample_rows(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, Any]:
    """First rows after the recipe, marking cells whose value differs from the input row."""
    head = after.head(PREVIEW_ROWS)
    ids = head[_ROW]
    source = pl.DataFrame({_ROW: ids}).join(before, on=_ROW, how="left", maintain_order="left")
    rows, originals = json_rows(head.drop(_ROW)), json_rows(source.drop(_ROW))
    common = [c for c in head.columns if c in before.columns and c != _ROW]
    changed = [
        {"row": i, "source_row": int(ids[i]), "column": c}
        for i, (new, old) in enumerate(zip(rows, originals, strict=True))
        for c in common
        if new[c] != old[c]
    ]
    return {
        "columns": [c for c in head.columns if c != _ROW],
        "rows": rows,
        "source_rows": [json_value(i) for i in ids.to_list()],
        "changed_cells": changed,
    }
