"""Is a text grounded in its facts? Every number in it must be one of the facts' values.

Narratives are returned with the facts they use (``{"name", "value", "source"}``); a
reworded narrative (by the optional LLM) is accepted only when it passes the same check,
so a rewording can change words but never a number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["numbers_in", "ungrounded_numbers"]

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?P<pct>\s?%)?")
_REL_TOL = 1e-9


def _words(facts: Iterable[dict[str, Any]]) -> list[str]:
    """Fact names and text values, longest first: digits inside them are not numbers of
    the text (a column called ``x1``, a class called ``2 doors``)."""
    words = {str(f.get("name", "")) for f in facts}
    words |= {str(f["value"]) for f in facts if isinstance(f.get("value"), str)}
    return sorted((w for w in words if w), key=len, reverse=True)


def numbers_in(text: str, facts: Iterable[dict[str, Any]]) -> list[tuple[str, float, bool]]:
    """The numbers of a text once every fact name and text value is taken out.

    Returns:
        ``(as written, value, followed by %)`` for each number, in order.
    """
    for word in _words(list(facts)):
        text = text.replace(word, " ")
    found = []
    for match in _NUMBER.finditer(text):
        shown = match.group(0).rstrip("% ")
        try:
            value = float(shown.replace(",", ""))
        except ValueError:  # pragma: no cover - the pattern only matches numbers
            continue
        found.append((match.group(0).strip(), value, match.group("pct") is not None))
    return found


def _fact_values(facts: Iterable[dict[str, Any]]) -> list[float]:
    values = []
    for fact in facts:
        value = fact.get("value")
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            values.append(float(value))
        elif isinstance(value, str):
            values += [v for _, v, _ in numbers_in(value, [])]
    return values


def _matches(number: float, values: list[float]) -> bool:
    return any(math.isclose(abs(number), abs(v), rel_tol=_REL_TOL, abs_tol=1e-12) for v in values)


def ungrounded_numbers(text: str, facts: list[dict[str, Any]]) -> list[str]:
    """The numbers of ``text`` that are not among the facts' values.

    A number matches a fact with the same absolute value (a narrative says "pulls it down
    5 points" for a fact of -5); a percentage such as ``28.2%`` also matches a share
    fact of ``0.282``.

    Args:
        text: The sentence(s) to check.
        facts: ``[{"name", "value", ...}]``.

    Returns:
        The numbers as written in the text that no fact backs; empty when grounded.
    """
    values = _fact_values(facts)
    missing = []
    for shown, number, is_percent in numbers_in(text, facts):
        if _matches(number, values) or (is_percent and _matches(number / 100, values)):
            continue
        missing.append(shown)
    return missing
