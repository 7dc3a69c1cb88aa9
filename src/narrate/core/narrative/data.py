"""Narratives of the Upload and Clean stages: a dataset and its columns in plain words.

Everything here is deterministic: the same profile always gives the same text.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dataset_narrative", "describe_column", "describe_dataset"]

_SHOWN_PROBLEMS = 3


def _number(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1_000 else f"{value:,.0f}"


def _names(items: list[str]) -> str:
    quoted = [f"`{item}`" for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


class _Facts:
    """The facts a narrative collects as it writes its sentences."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, value: Any, source: str) -> Any:
        self.items.append({"name": name, "value": value, "source": source})
        return value


def _pct(share: float) -> float:
    """A share as the percentage people read (one decimal)."""
    return round(float(share) * 100, 1)


def describe_dataset(
    profile: dict[str, Any],
    warnings: list[dict[str, Any]],
    pii: list[dict[str, Any]],
    *,
    name: str,
    target: str | None = None,
) -> str:
    """Summarise a dataset in a short paragraph (the text of :func:`dataset_narrative`).

    Args:
        profile: The output of ``profile_frame``.
        warnings: The output of ``find_warnings``.
        pii: The output of ``detect_pii``.
        name: The dataset's name.
        target: The chosen target column, if any.

    Returns:
        A few sentences built from the numbers.
    """
    return str(dataset_narrative(profile, warnings, pii, name=name, target=target)["text"])


def dataset_narrative(
    profile: dict[str, Any],
    warnings: list[dict[str, Any]],
    pii: list[dict[str, Any]],
    *,
    name: str,
    target: str | None = None,
) -> dict[str, Any]:
    """The data narrative with the facts it uses: rows, columns, missing shares, the
    target's balance, mixed-type columns, duplicates, personal data and the checks.

    Returns:
        ``{"text", "facts": [{"name", "value", "source"}]}``; every number of the text is
        among the facts' values (sources are paths in the stored profile).
    """
    facts = _Facts()
    table = profile["table"]
    facts.add("dataset", name, "dataset.name")
    rows = facts.add("rows", int(table["rows"]), "table.rows")
    columns = facts.add("columns", int(table["columns"]), "table.columns")
    sentences = [f"{name} has {rows:,} rows and {columns:,} columns."]
    if target is not None and profile.get("target"):
        sentences.append(_target_sentence(profile["target"], facts))
    missing = sorted(
        (c for c in profile["columns"].values() if c["missing"]),
        key=lambda c: -float(c["missing_share"]),
    )
    if missing:
        worst = missing[0]
        count = facts.add("columns with empty values", len(missing), "columns.*.missing")
        facts.add("most empty column", worst["name"], f"columns.{worst['name']}.name")
        share = facts.add(
            f"empty in {worst['name']} (%)",
            _pct(worst["missing_share"]),
            f"columns.{worst['name']}.missing_share",
        )
        sentences.append(
            f"{count} column(s) have empty values, most of all `{worst['name']}` ({share:.1f}%)."
        )
    else:
        sentences.append("No values are missing.")
    for warning in [w for w in warnings if w["code"] == "mixed_types"][:2]:
        sentences.append(_mixed_sentence(profile["columns"][warning["column"]], facts))
    if table["duplicate_rows"]:
        dupes = facts.add("duplicate rows", int(table["duplicate_rows"]), "table.duplicate_rows")
        sentences.append(f"{dupes:,} rows are exact duplicates.")
    if pii:
        kinds = sorted({item["kind"].replace("_", " ") for item in pii})
        count = facts.add("personal-data columns", len(pii), "pii")
        for i, item in enumerate(pii):
            facts.add("personal-data column", item["column"], f"pii[{i}].column")
        sentences.append(
            f"{count} column(s) look like personal data ({', '.join(kinds)}): "
            f"{_names([item['column'] for item in pii])}."
        )
    sentences.append(_problems_sentence(warnings, facts))
    return {"text": " ".join(sentences), "facts": facts.items}


def _target_sentence(summary: dict[str, Any], facts: _Facts) -> str:
    column = summary["column"]
    facts.add("target", column, "target.column")
    classes = summary.get("classes")
    if summary["problem_type"] == "classification" and classes:
        rare = classes[-1]
        count = facts.add("classes", len(classes), "target.classes")
        facts.add("rarest class", repr(rare["value"]), f"target.classes[{len(classes) - 1}].value")
        share = facts.add(
            "rarest class share (%)",
            _pct(rare["share"]),
            f"target.classes[{len(classes) - 1}].share",
        )
        return (
            f"The target `{column}` has {count} classes; the rarest, "
            f"{rare['value']!r}, is {share:.1f}% of rows."
        )
    if summary["problem_type"] == "regression":
        return f"The target `{column}` is a number, so this is a regression problem."
    return f"The target `{column}` can't be predicted as it stands."


def _mixed_sentence(column: dict[str, Any], facts: _Facts) -> str:
    info = column["numeric_text"]
    name = column["name"]
    facts.add("mixed-type column", name, f"columns.{name}.name")
    extras = []
    if info["blank_count"]:
        blanks = facts.add(
            f"blanks in {name}",
            int(info["blank_count"]),
            f"columns.{name}.numeric_text.blank_count",
        )
        extras.append(f"{blanks:,} blanks")
    if info["non_numeric_count"]:
        other = facts.add(
            f"non-numbers in {name}",
            int(info["non_numeric_count"]),
            f"columns.{name}.numeric_text.non_numeric_count",
        )
        extras.append(f"{other:,} values that are not numbers")
    return f"`{name}` holds numbers but is stored as text and has {' and '.join(extras)}."


def _problems_sentence(warnings: list[dict[str, Any]], facts: _Facts) -> str:
    critical = [w for w in warnings if w["severity"] == "critical"]
    other = [w for w in warnings if w["severity"] == "warning"]
    if not critical and not other:
        return "No serious data-quality problems were found."
    parts = []
    if critical:
        parts.append(
            f"{facts.add('critical problems', len(critical), 'warnings')} critical problem(s)"
        )
    if other:
        parts.append(f"{facts.add('warnings', len(other), 'warnings')} warning(s)")
    shown = []
    for w in (critical + other)[:_SHOWN_PROBLEMS]:
        index = warnings.index(w)
        shown.append(
            facts.add(f"check {w['code']}", str(w["message"]), f"warnings[{index}].message")
        )
    return f"Checks found {' and '.join(parts)}, for example: " + " ".join(shown)


def describe_column(profile_col: dict[str, Any]) -> str:
    """Describe one column in a sentence or two.

    Args:
        profile_col: One entry of ``profile["columns"]``.

    Returns:
        The description.
    """
    kind, name = profile_col["kind"], profile_col["name"]
    head = f"`{name}` ({kind}) has {profile_col['count']:,} values"
    head += (
        f" and {profile_col['missing']:,} empty ({profile_col['missing_share']:.1%})."
        if profile_col["missing"]
        else " and none empty."
    )
    return f"{head} {_kind_detail(profile_col)}".strip()


def _kind_detail(col: dict[str, Any]) -> str:
    kind = col["kind"]
    if kind in {"integer", "float"} and col.get("quantiles"):
        text = (
            f"It ranges from {_number(col['min'])} to {_number(col['max'])} "
            f"(median {_number(col['quantiles']['50'])}, mean {_number(col['mean'])})."
        )
        skew = col.get("skew")
        if skew is not None and abs(skew) >= 2:
            text += f" It is strongly skewed to the {'right' if skew > 0 else 'left'}."
        return text
    if kind in {"date", "datetime"} and col.get("min") is not None:
        return f"It runs from {col['min']} to {col['max']}."
    if kind == "identifier":
        return f"It looks like an ID: {col['distinct']:,} distinct values."
    top = (col.get("top_values") or [None])[0]
    if kind == "text":
        length = col.get("length") or {}
        mean = length.get("mean")
        return f"It is free text, {_number(mean)} characters long on average." if mean else ""
    if top is None:
        return ""
    return (
        f"It has {col['distinct']:,} distinct value(s); the most common is {top['value']!r} "
        f"({top['share']:.1%})."
    )
