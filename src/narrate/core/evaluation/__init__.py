"""The Evaluate stage: held-out metrics with intervals, curves, slices, fairness, model cards."""

from narrate.core.evaluation.card import render_model_card
from narrate.core.evaluation.report import compare_models, evaluate

__all__ = ["compare_models", "evaluate", "render_model_card"]
