"""One plain sentence per prediction, built only from the numbers it shows.

"82% likely 'bad' (the average is 28%), mainly because Income is 45 (+14 points) and
Records is yes (+9 points)." Classifiers speak in probability points, regressors in the
target's units, both from the natural-scale contributions. Every number in the text is
returned as a fact (name, value as shown, source), so a reader, or a test, can trace it.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np

from narrate.core.explain.local import RowExplanation

__all__ = ["describe_prediction", "say_number"]

#: Reasons named in "mainly because ...".
TOP_REASONS = 2


def say_number(value: float) -> float | int:
    """Round a number as people say it: whole numbers from 10 up, else 3 significant."""
    if not math.isfinite(value):
        return value
    if abs(value) >= 10:
        return round(value)
    if value == 0:
        return 0
    digits = 2 - math.floor(math.log10(abs(value)))
    rounded = round(value, digits)
    return int(rounded) if float(rounded).is_integer() else rounded


def _percent(value: float) -> float | int:
    """A percentage as said, never rounded up to 100 (or down to 0) when it is not."""
    said = say_number(value)
    if 99 < value < 100:
        return min(said, math.floor(value * 10) / 10)
    if 0 < value < 1:
        return max(said, 0.001)
    return said


def _points(value: float) -> float | int:
    """Probability points: whole from 1 up, one decimal below (0 means "hardly")."""
    if abs(value) >= 1:
        return round(value)
    rounded = round(value, 1)
    return 0 if rounded == 0 else rounded


def _shown(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{_decimals(value)}f}"


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def _raw_value(value: Any) -> Any:
    """A row value as said: numbers rounded, booleans yes/no, missing as 'missing'."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return say_number(float(value))
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    text = str(value)
    return "missing" if text in ("NaT", "nan", "<NA>") else text


def _reason(column: str, value: Any, amount: float, unit: str) -> tuple[str, list[dict[str, Any]]]:
    said = _raw_value(value)
    change = _points(amount) if unit else say_number(amount)
    sign = "+" if amount >= 0 else "-"
    shown_value = _shown(said) if isinstance(said, int | float) else said
    text = f"{column} is {shown_value} ({sign}{_shown(abs(change))}{unit})"
    facts = [
        {"name": column, "value": said, "source": "input row"},
        {"name": f"{column} contribution", "value": change, "source": "local contribution"},
    ]
    return text, facts


def describe_prediction(
    explanation: RowExplanation, row: dict[str, Any], *, target: str | None = None
) -> dict[str, Any]:
    """The sentence for one explained prediction and the facts it uses.

    Args:
        explanation: The row's explanation (its ``natural`` scale is used).
        row: The row's raw values by column.
        target: The target's name, for regressors ("Predicted Salary is ...").

    Returns:
        ``{"text", "facts": [{"name", "value", "source"}]}``.
    """
    natural = explanation.natural
    classify = natural["scale"] == "probability"
    scale = 100.0 if classify else 1.0
    unit = " points" if classify else ""
    facts: list[dict[str, Any]] = []
    say = _percent if classify else say_number
    output, base = say(natural["output"] * scale), say(natural["base_value"] * scale)
    if classify:
        label = explanation.explained_class
        head = f"{_shown(output)}% likely '{label}' (the average is {_shown(base)}%)"
        facts += [
            {"name": f"probability of '{label}' (%)", "value": output, "source": "model output"},
            {"name": "average probability (%)", "value": base, "source": "base value"},
            {"name": "predicted class", "value": label, "source": "model output"},
        ]
    else:
        what = target or "value"
        head = f"Predicted {what} is {_shown(output)} (the average is {_shown(base)})"
        facts += [
            {"name": f"predicted {what}", "value": output, "source": "model output"},
            {"name": "average prediction", "value": base, "source": "base value"},
        ]
    ranked = sorted(natural["contributions"].items(), key=lambda kv: -abs(kv[1]))
    rounding = _points if classify else say_number
    shown = [(c, v) for c, v in ranked if rounding(abs(v) * scale) != 0]
    # The reasons named first are those that move the answer the way it went from the
    # average; the strongest one the other way is named after "while".
    sign = 1.0 if natural["output"] >= natural["base_value"] else -1.0
    along = [(c, v) for c, v in shown if v * sign > 0][:TOP_REASONS]
    against = [(c, v) for c, v in shown if v * sign < 0][:1]
    clauses = []
    for column, value in along + against:
        text, used = _reason(column, row.get(column), value * scale, unit)
        clauses.append(text)
        facts += used
    if not clauses:
        return {"text": head + "; no column moves it much.", "facts": facts}
    because = " and ".join(clauses[: len(along)])
    other = clauses[len(along) :]
    pulls = "pulls it down" if sign > 0 else "pulls it up"
    if because and other:
        sentence = f"{head}, mainly because {because}, while {other[0]} {pulls}."
    elif because:
        sentence = f"{head}, mainly because {because}."
    else:
        sentence = f"{head}; {other[0]} {pulls} the most."
    return {"text": sentence, "facts": facts}
