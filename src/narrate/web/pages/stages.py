"""The eight stages of the workflow, as the UI presents them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STAGES", "Stage", "stage_by_slug"]


@dataclass(frozen=True)
class Stage:
    """One step of the workflow."""

    slug: str
    title: str
    summary: str
    empty: str


STAGES: tuple[Stage, ...] = (
    Stage(
        "upload",
        "Upload",
        "Bring in a table.",
        "Drop a CSV, TSV, Excel, Parquet or JSON file. Narrate reads it, works out each "
        "column's type and keeps it as an immutable version you can always go back to.",
    ),
    Stage(
        "clean",
        "Clean",
        "See what is in the data and what is wrong with it.",
        "A profile of every column, quality warnings in plain language, personal data "
        "found, and one-click fixes.",
    ),
    Stage(
        "transform",
        "Transform",
        "Shape the data with a recipe.",
        "Add steps (impute, filter, encode, scale ...), preview their effect instantly, and "
        "apply them as a new version with its lineage.",
    ),
    Stage(
        "train",
        "Train",
        "Find the best model within a time budget.",
        "Pick a target and a time budget; Narrate tries model families, tunes them and "
        "shows a live leaderboard.",
    ),
    Stage(
        "evaluate",
        "Evaluate",
        "How good is the model, and where does it fail?",
        "Held-out metrics with confidence intervals, curves, confusion matrix, weak "
        "segments, fairness checks and a model card.",
    ),
    Stage(
        "deploy",
        "Deploy",
        "Put a model to work.",
        "Register model versions, serve predictions over REST for single rows or files, "
        "and roll back in one click.",
    ),
    Stage(
        "monitor",
        "Monitor",
        "Know when the world changes.",
        "Prediction logs, data drift, live performance against ground truth, alerts, "
        "schedules and retraining.",
    ),
    Stage(
        "interpret",
        "Interpret",
        "Why does the model say what it says?",
        "Global and local explanations, what-if analysis and a plain-language story of "
        "each prediction.",
    ),
)

_BY_SLUG = {s.slug: s for s in STAGES}


def stage_by_slug(slug: str) -> Stage | None:
    """The stage with this slug, or None."""
    return _BY_SLUG.get(slug)
