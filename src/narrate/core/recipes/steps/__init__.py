"""Recipe step types, grouped by family."""

from __future__ import annotations

from narrate.core.recipes.steps.base import StepBase
from narrate.core.recipes.steps.categorical import EncodeStep, RareCategoriesStep
from narrate.core.recipes.steps.columns import (
    CastStep,
    DropColumnsStep,
    KeepColumnsStep,
    RenameStep,
    ReorderStep,
    SortStep,
)
from narrate.core.recipes.steps.missing import DropMissingStep, ImputeStep
from narrate.core.recipes.steps.numeric import BinStep, ClipOutliersStep, ScaleStep, TransformStep
from narrate.core.recipes.steps.rows import DeduplicateStep, DeriveStep, FilterStep, SampleStep
from narrate.core.recipes.steps.text import DatetimePartsStep, PiiStep, TextStep

__all__ = [
    "STEP_TYPES",
    "BinStep",
    "CastStep",
    "ClipOutliersStep",
    "DatetimePartsStep",
    "DeduplicateStep",
    "DeriveStep",
    "DropColumnsStep",
    "DropMissingStep",
    "EncodeStep",
    "FilterStep",
    "ImputeStep",
    "KeepColumnsStep",
    "PiiStep",
    "RareCategoriesStep",
    "RenameStep",
    "ReorderStep",
    "SampleStep",
    "ScaleStep",
    "SortStep",
    "StepBase",
    "TextStep",
    "TransformStep",
]

#: Every step type, in the order the catalog shows them.
STEP_TYPES: tuple[type[StepBase], ...] = (
    DropColumnsStep,
    KeepColumnsStep,
    RenameStep,
    ReorderStep,
    CastStep,
    DropMissingStep,
    ImputeStep,
    FilterStep,
    DeriveStep,
    DeduplicateStep,
    ClipOutliersStep,
    ScaleStep,
    TransformStep,
    BinStep,
    EncodeStep,
    DatetimePartsStep,
    TextStep,
    RareCategoriesStep,
    PiiStep,
    SampleStep,
    SortStep,
)
