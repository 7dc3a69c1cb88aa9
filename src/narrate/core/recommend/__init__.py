"""The rule-based assistant: recommendations for a dataset and for an evaluated model.

Each recommendation says what to do, why (with the facts behind every number), what it
changes, and what one click does: recipe steps for the recipe API, training options for
the Train stage, or nothing (advice). Deterministic and offline; no LLM.
"""

from __future__ import annotations

from narrate.core.recommend.dataset import recommend_for_dataset
from narrate.core.recommend.items import KINDS
from narrate.core.recommend.model import recommend_for_model

__all__ = ["KINDS", "recommend_for_dataset", "recommend_for_model"]
