"""Explanations in the user's raw input columns: reasons for single predictions (local
contributions), importances over many rows (global), and a sentence per prediction.

Pure: no web, no database. See docs/interpret.md.
"""

from narrate.core.explain.local import Explainer, RowExplanation

__all__ = ["Explainer", "RowExplanation"]
