"""The narrative of a drift report: which columns moved, how far, and what it may mean.

Deterministic and grounded: every number in the text is one of the returned facts, each
naming the place in the report it came from, so a reader (or a test) can check it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["describe_drift"]

_SHOWN = 3


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Facts:
    """Collects the facts a text uses while it is written."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, value: float | int, source: str) -> None:
        fact = {"name": name, "value": value, "source": source}
        if fact not in self.items:
            self.items.append(fact)

    def psi(self, entry: dict[str, Any], source: str) -> str:
        value = round(float(entry["psi"]), 2)
        self.add(f"psi of {entry['column']}", value, f"{source}.psi")
        return f"{value:.2f}"

    def percent(self, name: str, share: float, source: str) -> str:
        value = round(share * 100, 1)
        self.add(name, value, source)
        return f"{value:.1f}%"

    def count(self, name: str, value: int, source: str) -> str:
        self.add(name, int(value), source)
        return f"{int(value):,}"


def _moved(entry: dict[str, Any], facts: _Facts, source: str) -> str:
    """ "'income' (PSI 0.31, high)", or why it drifted when PSI does not say it."""
    name = f"'{entry['column']}'"
    parts = []
    if entry.get("psi") is not None:
        parts.append(f"PSI {facts.psi(entry, source)}")
    if "missing_rate" in entry.get("reasons", []):
        before = facts.percent(
            f"missing rate of {entry['column']} in the reference",
            entry["missing_rate_reference"],
            f"{source}.missing_rate_reference",
        )
        now = facts.percent(
            f"missing rate of {entry['column']} now",
            entry["missing_rate_current"],
            f"{source}.missing_rate_current",
        )
        parts.append(f"missing in {now} of rows, {before} before")
    if "new_category_rate" in entry.get("reasons", []):
        rate = facts.percent(
            f"new category rate of {entry['column']}",
            entry["new_category_rate"],
            f"{source}.new_category_rate",
        )
        examples = ", ".join(f"'{v}'" for v in entry.get("new_categories", [])[:2])
        parts.append(f"{rate} of values in categories never seen before ({examples})")
    parts.append(entry["level"])
    return f"{name} ({', '.join(parts)})"


def _importance(entry: dict[str, Any], importance: Mapping[str, int] | None, facts: _Facts) -> str:
    rank = (importance or {}).get(entry["column"])
    if rank is None:
        return ""
    facts.add(f"importance rank of {entry['column']}", rank, f"importance.{entry['column']}")
    which = "most important input" if rank == 1 else f"{_ordinal(rank)} most important input"
    if rank <= _SHOWN:
        return f"; it is the model's {which}, so predictions are likely affected"
    return f"; it is only the model's {which}, so predictions may be little affected"


def describe_drift(
    report: dict[str, Any], *, importance: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Summarise a drift report in a few sentences, with the facts behind them.

    Args:
        report: The output of :func:`narrate.core.monitor.drift.compute_drift`.
        importance: Each input's importance rank to the model (1 = most), when known.

    Returns:
        ``{"text", "facts": [{"name", "value", "source"}]}``; every number in the text
        is a fact's value (``source`` is its path in the report).
    """
    facts = _Facts()
    columns, overall = report["columns"], report["overall"]
    sentences = [
        f"Compared {facts.count('reference rows', report['reference_rows'], 'reference_rows')} "
        f"reference rows with "
        f"{facts.count('current rows', report['current_rows'], 'current_rows')} current rows."
    ]
    drifted = [e for e in columns if e["level"] != "none"]
    if not columns:
        sentences.append("No columns were compared.")
    elif not drifted:
        total = facts.count("columns compared", overall["columns"], "overall.columns")
        text = f"No drift: none of the {total} columns moved past the thresholds"
        top = max(columns, key=lambda e: e["psi"] if e.get("psi") is not None else -1.0)
        if top.get("psi") is not None:
            text += f" (the largest move is '{top['column']}', PSI {facts.psi(top, _src(top))})"
        sentences.append(text + ".")
    else:
        n = facts.count("drifted columns", overall["drifted"], "overall.drifted")
        total = facts.count("columns compared", overall["columns"], "overall.columns")
        sentences.append(f"{n} of {total} columns drifted (overall level {overall['level']}).")
        first = drifted[0]
        sentences.append(
            f"{_moved(first, facts, _src(first))} moved most"
            f"{_importance(first, importance, facts)}."
        )
        rest = drifted[1:_SHOWN]
        if rest:
            listed = "; ".join(_moved(e, facts, _src(e)) for e in rest)
            sentences.append(f"Next: {listed}.")
    prediction = report.get("prediction")
    if prediction is not None and prediction.get("psi") is not None:
        value = facts.psi(prediction, "prediction")
        if prediction["level"] == "none":
            sentences.append(f"The predictions are stable (PSI {value}).")
        else:
            sentences.append(f"The predictions moved too (PSI {value}, {prediction['level']}).")
    return {"text": " ".join(sentences), "facts": facts.items}


def _src(entry: dict[str, Any]) -> str:
    return f"columns[{entry['column']}]"
