"""One place for what each metric means in plain words, which way is better, and how its
numbers are written in a narrative.

Narratives use :func:`gloss` for the one-line explanation after a metric's name and
:func:`rounded` / :func:`say` for the figure, so the number in the text and the number in
the facts are the same value (see :mod:`narrate.core.narrative.grounding`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["GLOSSARY", "Term", "gloss", "label", "lower_is_better", "rounded", "say", "term"]

Style = Literal["score", "error"]


@dataclass(frozen=True)
class Term:
    """A metric: its label, a one-line gloss, its direction and its formatting rule.

    ``style`` is the formatting rule: a ``score`` (bounded, 0-1 or so) is written with two
    decimals ("0.81"); an ``error`` in the target's units with three significant digits
    and thousands separators ("1,230", "0.0412").
    """

    name: str
    label: str
    gloss: str
    higher_is_better: bool
    style: Style = "score"

    @property
    def direction(self) -> str:
        """``"higher is better"`` or ``"lower is better"``."""
        return "higher is better" if self.higher_is_better else "lower is better"


GLOSSARY: dict[str, Term] = {
    t.name: t
    for t in (
        Term(
            "roc_auc",
            "ROC AUC",
            "how well the model ranks a likely case above an unlikely one; 0.5 is guessing",
            True,
        ),
        Term(
            "pr_auc",
            "PR AUC",
            "how precise the model stays as it finds more of the positive cases",
            True,
        ),
        Term("accuracy", "accuracy", "the share of rows predicted correctly", True),
        Term(
            "balanced_accuracy",
            "balanced accuracy",
            "accuracy averaged over the classes, so a rare class counts as much",
            True,
        ),
        Term("f1", "F1", "a balance of precision and recall for the positive class", True),
        Term("macro_f1", "macro F1", "F1 averaged over the classes", True),
        Term("precision", "precision", "of the rows flagged, the share that are right", True),
        Term("recall", "recall", "of the real cases, the share the model finds", True),
        Term(
            "log_loss",
            "log loss",
            "how far the predicted probabilities are from what happened",
            False,
        ),
        Term("brier", "Brier score", "the squared error of the predicted probabilities", False),
        Term("rmse", "RMSE", "the typical size of an error, in the target's units", False, "error"),
        Term("mae", "MAE", "the average size of an error, in the target's units", False, "error"),
        Term(
            "mape",
            "MAPE",
            "the average error as a share of the true value",
            False,
        ),
        Term("r2", "R²", "the share of the target's variation the model explains", True),
    )
}


def term(name: str) -> Term:
    """The glossary entry of a metric (a plain one for a metric not in the glossary)."""
    return GLOSSARY.get(name) or Term(name, name, "a model quality score", True)


def label(name: str) -> str:
    """The metric's name as people read it ("ROC AUC")."""
    return term(name).label


def gloss(name: str) -> str:
    """``"ROC AUC — how well ...; 0.5 is guessing"``: the label and its one-line gloss."""
    entry = term(name)
    return f"{entry.label} — {entry.gloss}"


def lower_is_better(name: str) -> bool:
    """True for errors and losses."""
    return not term(name).higher_is_better


def rounded(name: str, value: float) -> float:
    """The value as it is said in a narrative (and stored as a fact)."""
    if not math.isfinite(value):
        return value
    if term(name).style == "error":
        if value == 0:
            return 0.0
        digits = 2 - math.floor(math.log10(abs(value)))
        return round(value, digits)
    return round(value, 2)


def say(name: str, value: float) -> str:
    """The rounded value written for people: "0.81", "1,230", "0.0412"."""
    value = rounded(name, value)
    if term(name).style == "score":
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
