"""The narrative of a recipe's impact: what applying it did to the parent version.

Built from the recipe's steps and two cheap summaries of the frames before and after (row
count, column names, empty values per column), so it costs one ``null_count`` per frame.
Deterministic and grounded like the other narratives: every number of the text is one of
the returned facts.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["describe_recipe_impact", "frame_summary"]

_SHOWN_COLUMNS = 5
_ROW_STEPS = {
    "drop_missing": "dropping rows with empty values",
    "filter": "a filter",
    "deduplicate": "removing duplicates",
    "sample": "sampling",
}
_FILLS = {
    "median": "median-filled",
    "mean": "mean-filled",
    "mode": "filled with its most common value",
    "most_frequent": "filled with its most common value",
    "constant": "filled with a fixed value",
    "knn": "filled from similar rows",
}
_VERBS = {
    "scale": "scaled",
    "transform": "transformed",
    "bin": "binned",
    "encode": "encoded",
    "clip_outliers": "clipped at outliers",
    "cast": "converted to another type",
    "rare_categories": "had rare categories grouped",
    "text": "turned into text features",
    "pii": "masked as personal data",
}


def frame_summary(frame: pl.DataFrame) -> dict[str, Any]:
    """Rows, column names and empty values per column of a frame."""
    nulls = frame.null_count().row(0) if frame.width else ()
    return {
        "rows": frame.height,
        "columns": list(frame.columns),
        "missing": {c: int(n) for c, n in zip(frame.columns, nulls, strict=True)},
    }


class _Facts:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, value: Any, source: str) -> Any:
        self.items.append({"name": name, "value": value, "source": source})
        return value


def _names(facts: _Facts, label: str, columns: list[str], source: str) -> str:
    shown = columns[:_SHOWN_COLUMNS]
    for column in shown:
        facts.add(label, column, source)
    quoted = [f"'{c}'" for c in shown]
    text = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    rest = len(columns) - len(shown)
    if rest:
        text += f" and {facts.add(f'other {label}s', rest, source):,} more"
    return text


def _step_columns(step: dict[str, Any]) -> list[str]:
    columns = step.get("columns")
    return [str(c) for c in columns] if isinstance(columns, list) else []


def describe_recipe_impact(
    steps: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """Say what a recipe did: rows removed and why, columns filled, added and dropped.

    Args:
        steps: The recipe's steps as JSON (``{"step": ..., ...}``).
        before: :func:`frame_summary` of the parent version.
        after: :func:`frame_summary` of the new version.

    Returns:
        ``{"text", "facts": [{"name", "value", "source"}]}``; sources are ``parent.*``,
        ``version.*`` and ``recipe.steps[i]``.
    """
    facts = _Facts()
    sentences = [_rows_sentence(steps, before, after, facts)]
    sentences += _fill_sentences(steps, before, after, facts)
    added = [c for c in after["columns"] if c not in before["columns"]]
    removed = [c for c in before["columns"] if c not in after["columns"]]
    if added:
        count = facts.add("columns added", len(added), "version.columns")
        dates = any(s.get("step") == "datetime_parts" for s in steps)
        kind = " date-part" if dates and all(s.get("step") != "encode" for s in steps) else ""
        sentences.append(
            f"Added {count:,}{kind} column(s): "
            f"{_names(facts, 'added column', added, 'version.columns')}."
        )
    if removed:
        facts.add("columns dropped", len(removed), "parent.columns")
        sentences.append(f"Dropped {_names(facts, 'dropped column', removed, 'parent.columns')}.")
    sentences += _other_sentences(steps, after, facts)
    total_before = facts.add("empty values before", sum(before["missing"].values()), "parent")
    total_after = facts.add("empty values after", sum(after["missing"].values()), "version")
    if total_before or total_after:
        sentences.append(
            f"Empty values: {total_before:,} before, {total_after:,} after."
            if total_before != total_after
            else f"Empty values are unchanged ({total_after:,})."
        )
    return {"text": " ".join(sentences), "facts": facts.items}


def _rows_sentence(
    steps: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any], facts: _Facts
) -> str:
    rows_before = facts.add("rows before", int(before["rows"]), "parent.n_rows")
    rows_after = facts.add("rows after", int(after["rows"]), "version.n_rows")
    if rows_after == rows_before:
        return f"The row count is unchanged ({rows_after:,})."
    if rows_after > rows_before:
        more = facts.add("rows added", rows_after - rows_before, "version.n_rows - parent.n_rows")
        return f"Added {more:,} rows ({rows_before:,} → {rows_after:,})."
    gone = facts.add("rows removed", rows_before - rows_after, "parent.n_rows - version.n_rows")
    share = facts.add(
        "rows removed (%)", round(gone / rows_before * 100, 1), "rows removed / parent.n_rows"
    )
    causes = []
    for i, step in enumerate(steps):
        kind = str(step.get("step"))
        if kind not in _ROW_STEPS or (kind == "drop_missing" and step.get("axis") == "columns"):
            continue
        cause = _ROW_STEPS[kind]
        columns = _step_columns(step)
        if kind == "drop_missing" and columns:
            cause = (
                f"dropping rows with empty {_names(facts, 'column', columns, f'recipe.steps[{i}]')}"
            )
        elif kind == "filter":
            expression = facts.add("filter", str(step.get("expression")), f"recipe.steps[{i}]")
            cause = f"the filter `{expression}`"
        causes.append(cause)
    why = f", by {' and '.join(causes)}" if causes else ""
    return f"Removed {gone:,} rows ({share:.1f}%){why}; {rows_after:,} remain."


def _fill_sentences(
    steps: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any], facts: _Facts
) -> list[str]:
    sentences = []
    for i, step in enumerate(steps):
        if step.get("step") != "impute":
            continue
        how = _FILLS.get(str(step.get("strategy", "median")), "filled in")
        for column in _step_columns(step):
            facts.add("filled column", column, f"recipe.steps[{i}].columns")
            was = before["missing"].get(column)
            now = after["missing"].get(column)
            text = f"'{column}' is now {how}"
            if was and now is not None:
                filled = facts.add(f"filled in {column}", was - now, f"parent.missing.{column}")
                text += f" ({filled:,} empty values filled)"
            sentences.append(text + ".")
    return sentences


def _other_sentences(
    steps: list[dict[str, Any]], after: dict[str, Any], facts: _Facts
) -> list[str]:
    sentences = []
    for i, step in enumerate(steps):
        verb = _VERBS.get(str(step.get("step")))
        columns = [c for c in _step_columns(step) if c in after["columns"]]
        if verb and columns:
            listed = _names(facts, "changed column", columns, f"recipe.steps[{i}].columns")
            sentences.append(f"{listed} {'is' if len(columns) == 1 else 'are'} {verb}.")
        elif step.get("step") == "rename" and isinstance(step.get("mapping"), dict):
            pairs = list(step["mapping"].items())[:_SHOWN_COLUMNS]
            for old, new in pairs:
                facts.add("renamed from", str(old), f"recipe.steps[{i}].mapping")
                facts.add("renamed to", str(new), f"recipe.steps[{i}].mapping")
            sentences.append(
                "Renamed " + ", ".join(f"'{old}' to '{new}'" for old, new in pairs) + "."
            )
    return sentences
