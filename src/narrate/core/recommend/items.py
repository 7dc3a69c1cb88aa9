"""The shape of one recommendation, and the facts every number in its text comes from.

A rule writes its sentences through a :class:`Facts` collector: each number is formatted
once, as it is shown, and recorded with its name and source, so the text can't hold a
number that is not among the facts (tests check this for every rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Facts",
    "Item",
    "Kind",
    "Severity",
    "none_action",
    "recipe_action",
    "sort_items",
    "training_action",
]

Kind = Literal["target", "problem_type", "clean", "transform", "exclude", "train", "evaluate"]
Severity = Literal["critical", "warning", "info"]
#: The order items are shown in: the choices a user makes first come first.
KINDS: tuple[str, ...] = (
    "target",
    "problem_type",
    "exclude",
    "clean",
    "transform",
    "train",
    "evaluate",
)
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")


def _percent(share: float) -> float | int:
    """A share as the percentage people say: one decimal below 10%, whole above."""
    value = share * 100
    if 0 < value < 1:
        return float(f"{value:.1g}")  # "0.04%", never "0%" for something that is there
    shown: float | int = round(value, 1) if abs(value) < 10 else round(value)
    if shown == 100 and value < 100:
        return 99.9
    return int(shown) if float(shown).is_integer() else shown


def _said(value: float) -> float | int:
    """A number as said: whole from 100 up, else up to three significant digits."""
    if abs(value) >= 100 or float(value).is_integer():
        return round(value)
    rounded = float(f"{value:.3g}")
    return int(rounded) if rounded.is_integer() else rounded


def _shown(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,g}"


@dataclass
class Facts:
    """Collects the facts a recommendation's text uses, formatting each number once."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def _add(self, name: str, value: Any, source: str) -> None:
        fact = {"name": name, "value": value, "source": source}
        if fact not in self.items:
            self.items.append(fact)

    def count(self, name: str, value: int, source: str) -> str:
        """A whole number, shown with thousands separators."""
        self._add(name, int(value), source)
        return f"{int(value):,}"

    def number(self, name: str, value: float, source: str) -> str:
        """A measurement, rounded as people say it."""
        said = _said(float(value))
        self._add(name, said, source)
        return _shown(said)

    def percent(self, name: str, share: float, source: str) -> str:
        """A share (0-1) shown as a percentage; the fact holds the percentage shown."""
        said = _percent(float(share))
        self._add(name, said, source)
        return f"{_shown(said)}%"

    def text(self, name: str, value: str, source: str) -> str:
        """A name or label (a column, a class) shown as it is."""
        self._add(name, str(value), source)
        return str(value)


@dataclass
class Item:
    """One recommendation: what, why, what it changes, and what one click does."""

    rule: str
    kind: Kind
    title: str
    reason: str
    effect: str
    action: dict[str, Any]
    facts: Facts
    severity: Severity = "info"
    subject: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON view; ``id`` is the rule id, plus the column it is about if any."""
        return {
            "id": self.rule if self.subject is None else f"{self.rule}:{self.subject}",
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "reason": self.reason,
            "effect": self.effect,
            "action": self.action,
            "facts": list(self.facts.items),
        }


def recipe_action(*steps: dict[str, Any]) -> dict[str, Any]:
    """An action that applies recipe steps (the recipe API's format) as a new version."""
    return {"type": "recipe_steps", "steps": list(steps)}


def training_action(**options: Any) -> dict[str, Any]:
    """An action that fills in training options (``TrainConfig`` fields)."""
    return {"type": "training_options", "options": options}


def none_action() -> dict[str, Any]:
    """Advice with nothing to apply."""
    return {"type": "none"}


def sort_items(items: list[Item]) -> list[dict[str, Any]]:
    """Items as JSON, by kind (the order of the stages), then severity, then rule order."""
    ordered = sorted(
        enumerate(items),
        key=lambda pair: (KINDS.index(pair[1].kind), SEVERITIES.index(pair[1].severity), pair[0]),
    )
    return [item.to_dict() for _, item in ordered]
