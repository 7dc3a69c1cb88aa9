"""Find columns that hold personal data, and mask or hash such values.

Patterns run vectorised in polars on a sample of each text column; checksums (Luhn for
card numbers, mod-97 for IBANs) and IP parsing run in Python on the few candidates.

Integer columns are checked too, because card and phone numbers written without
separators are read as integers: 13-19 digit values that pass the Luhn check are card
numbers, and 7-15 digit values are phone numbers when the header says so (``phone``,
``mobile``, ``tel`` ...): without separators a phone number is indistinguishable from a
quantity or an ID. Unformatted digits are weaker evidence than formatted text, so these
need a larger share (80%).
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import polars as pl

from narrate.core.data.types import ColumnKind

__all__ = [
    "PII_ACTIONS",
    "PII_KINDS",
    "detect_pii",
    "hash_value",
    "mask_profile",
    "mask_value",
    "pii_fix",
]

PII_KINDS = ("email", "phone", "credit_card", "iban", "ip_address", "national_id", "person_name")
_SAMPLE = 10_000
_MIN_SHARE = 0.3
_EXAMPLES = 3
_CHECKED_KINDS = {ColumnKind.TEXT, ColumnKind.IDENTIFIER, ColumnKind.CATEGORICAL}
PII_ACTIONS = ("drop", "mask", "hash")
# Integer columns: share of values needed, and what a digits-only phone number looks like.
_MIN_SHARE_DIGITS = 0.8
_CARD_DIGITS = r"^[0-9]{13,19}$"
_PHONE_DIGITS = r"^[0-9]{7,15}$"
_PHONE_HEADER = re.compile(r"phone|mobile|(^|_)(tel|cell|fax|msisdn)(_|$)", re.IGNORECASE)

_PATTERNS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    # International numbers start with "+"; US numbers need the 3-3-4 grouping with separators.
    "phone": (
        r"^\+[1-9][0-9 ().-]{6,18}[0-9]$"
        r"|^(1[ .-])?(\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}$"
    ),
    "credit_card": r"^[0-9]{4}([ -]?[0-9]{4}){2}[ -]?[0-9]{1,7}$|^[0-9]{13,19}$",
    "iban": r"^[A-Z]{2}[0-9]{2}( ?[A-Z0-9]){11,30}$",
    "ip_address": r"^([0-9]{1,3}\.){3}[0-9]{1,3}$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$",
    # US SSN (not 000/666/9xx areas) and UK National Insurance numbers.
    "national_id": (
        r"^(00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])-"
        r"(0[1-9]|[1-9][0-9])-([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})$"
        r"|^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]$"
    ),
}
_NAME_HEADER = re.compile(
    r"^(name|full_?name|first_?name|last_?name|given_?name|family_?name|surname|forename|"
    r"middle_?name|maiden_?name|(customer|client|contact|person|patient|employee|user|owner|"
    r"account_?holder|cardholder)_?name)$",
    re.IGNORECASE,
)
_NAME_VALUE = r"^[A-ZÀ-Þ][a-zß-ÿ'’.-]+( [A-ZÀ-Þ][A-Za-zß-ÿ'’.-]+){0,3}$"


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _luhn_ok(value: str) -> bool:
    digits = _digits(value)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def _iban_ok(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    as_number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(as_number) % 97 == 1


def _ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _phone_ok(value: str) -> bool:
    return 7 <= len(_digits(value)) <= 15


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "credit_card": _luhn_ok,
    "iban": _iban_ok,
    "ip_address": _ip_ok,
    "phone": _phone_ok,
}


def pii_fix(column: str, action: str) -> dict[str, Any]:
    """The recipe step that protects a personal-data column.

    Args:
        column: The column.
        action: ``drop``, ``mask`` or ``hash`` (one of ``PII_ACTIONS``).

    Returns:
        A ``drop_columns`` step, or a ``pii`` step with ``method`` mask or hash.

    Raises:
        ValueError: ``action`` is not one of ``PII_ACTIONS``.
    """
    if action == "drop":
        return {"step": "drop_columns", "columns": [column]}
    if action in ("mask", "hash"):
        return {"step": "pii", "columns": [column], "method": action}
    raise ValueError(f"Unknown PII action '{action}'; use one of {', '.join(PII_ACTIONS)}.")


def detect_pii(df: pl.DataFrame, kinds: dict[str, ColumnKind]) -> list[dict[str, Any]]:
    """Find columns whose values (or names) say they hold personal data.

    Args:
        df: The table.
        kinds: Column name -> kind; text, identifier, categorical and integer columns
            are checked.

    Returns:
        One ``{"column", "kind", "share", "matches", "examples_masked", "actions",
        "fixes"}`` per column where at least 30% of up to 10,000 sampled values match a
        kind (or, for person names, where the column name says so); for integer columns
        80% must be valid card or phone numbers. ``fixes`` maps each action to its
        recipe step.
    """
    found = []
    schema = dict(df.schema)  # once: each ``.schema`` call walks every column
    for name in _candidate_columns(df, schema, kinds):
        is_integer = kinds.get(name) == ColumnKind.INTEGER
        values = df.get_column(name).drop_nulls()
        if values.len() > _SAMPLE:
            # Sample before the cast: turning a million numbers into text is the slow part.
            values = values.sample(_SAMPLE, seed=0)
        values = values.cast(pl.String).str.strip_chars()
        hit = _integer_pii(name, values) if is_integer else _column_pii(name, values)
        if hit is not None:
            found.append(hit)
    return found


def _candidate_columns(
    df: pl.DataFrame, schema: dict[str, pl.DataType], kinds: dict[str, ColumnKind]
) -> list[str]:
    """The columns worth the per-column checks, found in a few multi-column passes.

    On a file with thousands of columns the per-column work (sampling, casting,
    checksums) dominates; most columns match no pattern at all. A pattern count over a
    row sample keeps only columns that could reach the share needed (with a wide margin
    for sampling noise), plus those whose name alone is a reason (names, phones).
    """
    text = [name for name in schema if kinds.get(name) in _CHECKED_KINDS]
    ints = [
        name
        for name, dtype in schema.items()
        if kinds.get(name) == ColumnKind.INTEGER and dtype.is_integer()
    ]
    rows = df if df.height <= _SAMPLE else df.sample(_SAMPLE, seed=0)
    keep = {name for name in text if _NAME_HEADER.match(name.strip().replace(" ", "_"))}
    keep |= {name for name in ints if _PHONE_HEADER.search(_header_words(name))}
    exact = rows.height == df.height  # the counts are then exact, no margin needed
    if text:
        values = pl.col(text).cast(pl.String).str.strip_chars()
        present = rows.select(values.count()).row(0, named=True)
        for pattern in _PATTERNS.values():
            hits = rows.select(values.str.contains(pattern).sum()).row(0, named=True)
            keep |= {n for n in text if _may_reach(hits[n], present[n], _MIN_SHARE, exact)}
    if ints:
        present = rows.select(pl.col(ints).count()).row(0, named=True)
        # 13+ digits without a sign: what the card pattern needs of an integer.
        hits = rows.select((pl.col(ints) >= 10**12).sum()).row(0, named=True)
        keep |= {n for n in ints if _may_reach(hits[n], present[n], _MIN_SHARE_DIGITS, exact)}
    return [name for name in schema if name in keep]


def _may_reach(hits: int, present: int, share: float, exact: bool) -> bool:
    if present == 0:
        return False
    if exact:
        return hits >= share * present
    return present < 200 or hits >= share / 2 * present


def _header_words(name: str) -> str:
    return name.strip().replace(" ", "_").replace("-", "_")


def _integer_pii(name: str, values: pl.Series) -> dict[str, Any] | None:
    """Card numbers (13-19 digits, Luhn) and phone numbers written as plain integers."""
    if values.len() == 0:
        return None
    cards = [v for v in values.filter(values.str.contains(_CARD_DIGITS)).to_list() if _luhn_ok(v)]
    if len(cards) >= _MIN_SHARE_DIGITS * values.len():
        return _finding(name, "credit_card", cards, values.len())
    if _PHONE_HEADER.search(name.strip().replace(" ", "_").replace("-", "_")):
        phones = values.filter(values.str.contains(_PHONE_DIGITS)).to_list()
        if len(phones) >= _MIN_SHARE_DIGITS * values.len():
            return _finding(name, "phone", phones, values.len())
    return None


def _column_pii(name: str, values: pl.Series) -> dict[str, Any] | None:
    if values.len() == 0:
        return None
    frame = values.to_frame("v")
    masks = frame.select(
        pl.col("v").str.contains(pattern).alias(kind) for kind, pattern in _PATTERNS.items()
    )
    best: tuple[str, list[str]] | None = None
    for kind in _PATTERNS:
        matched = values.filter(masks.get_column(kind)).to_list()
        if kind in _VALIDATORS:
            matched = [value for value in matched if _VALIDATORS[kind](value)]
        if len(matched) >= _MIN_SHARE * values.len() and (
            best is None or len(matched) > len(best[1])
        ):
            best = (kind, matched)
    if best is None and _NAME_HEADER.match(name.strip().replace(" ", "_")):
        best = ("person_name", values.filter(values.str.contains(_NAME_VALUE)).to_list())
    if best is None:
        return None
    kind, matched = best
    return _finding(name, kind, matched, values.len())


def _finding(name: str, kind: str, matched: list[str], checked: int) -> dict[str, Any]:
    return {
        "column": name,
        "kind": kind,
        "share": round(len(matched) / checked, 4),
        "matches": len(matched),
        "examples_masked": [mask_value(value, kind) for value in matched[:_EXAMPLES]],
        "actions": list(PII_ACTIONS),
        "fixes": {action: pii_fix(name, action) for action in PII_ACTIONS},
    }


def mask_value(value: str, kind: str | None = None) -> str:
    """Hide most of a personal value, keeping just enough to recognise its shape.

    Emails keep the first letter and the domain; names keep initials; everything else
    keeps its last four letters or digits and its separators.

    Args:
        value: The value to mask.
        kind: One of ``PII_KINDS`` (None: generic masking).

    Returns:
        The masked value.
    """
    if kind == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "person_name":
        return " ".join(f"{part[:1]}." for part in value.split())
    keep = 4 if len([ch for ch in value if ch.isalnum()]) > 6 else 1
    seen, masked = 0, []
    for char in reversed(value):
        if char.isalnum():
            seen += 1
            masked.append(char if seen <= keep else "*")
        else:
            masked.append(char)
    return "".join(reversed(masked))


def hash_value(value: str, salt: str | bytes) -> str:
    """Replace a value by a salted SHA-256 digest (same value + salt -> same digest).

    Args:
        value: The value to hash.
        salt: A secret kept per dataset, so digests can't be looked up in tables.

    Returns:
        The hex digest.

    Raises:
        ValueError: ``salt`` is empty.
    """
    salt_bytes = salt.encode() if isinstance(salt, str) else salt
    if not salt_bytes:
        raise ValueError("hash_value needs a non-empty salt")
    return hashlib.sha256(salt_bytes + b"\x00" + value.encode()).hexdigest()


# Statistics of a numeric personal-data column (card or phone numbers stored as integers)
# that are, or bound, actual values: the histogram's edges start and end at min and max.
_VALUE_STATISTICS = ("mean", "std", "skew", "quantiles", "histogram", "outlier_bounds")
# Shorter raw values are not searched for in sentences: "1" would mangle every count.
_MIN_REPLACED_CHARS = 4


def mask_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """Mask every value of the profile's personal-data columns, wherever the profile shows it.

    The column's top values, min/max, non-number examples and the target's classes
    are masked with :func:`mask_value` (as the PII findings' examples are);
    statistics that reveal numeric values (quantiles, histogram, ...) are left out, and
    any raw value quoted in a warning or the narrative is replaced by its masked form.

    Args:
        profile: A stored profile (``profile_frame`` output with ``pii`` findings).

    Returns:
        A masked copy (the input is not changed), with ``pii_masked`` set to True.
    """
    # Copy only what changes: a deep copy of a wide table's profile costs far more than
    # the masking (measured 0.2-0.7 s for a 200-column profile, 400 kB; now ~0.1 s, mostly
    # JSON parsing and writing).
    masked = dict(profile)
    masked["columns"] = columns = dict(profile.get("columns") or {})
    replacements: dict[str, str] = {}
    for finding in profile.get("pii") or []:
        name, kind = finding.get("column"), finding.get("kind")
        if name in columns:
            columns[name] = column = copy.deepcopy(columns[name])
            _mask_column(column, kind, replacements)
        target = masked.get("target")
        if isinstance(target, dict) and target.get("column") == name:
            masked["target"] = target = copy.deepcopy(target)
            _mask_entries(target.get("classes") or [], kind, replacements)
    for key in ("warnings", "narrative"):
        if key in masked:
            masked[key] = _replace_quoted(masked[key], replacements)
    masked["pii_masked"] = True
    return masked


def _mask_one(value: Any, kind: str | None, replacements: dict[str, str]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raw = str(value)
    hidden = mask_value(raw, kind)
    if len(raw) >= _MIN_REPLACED_CHARS:
        replacements[raw] = hidden
    return hidden


def _mask_entries(entries: list[dict[str, Any]], kind: str | None, found: dict[str, str]) -> None:
    for entry in entries:
        if isinstance(entry, dict) and "value" in entry:
            entry["value"] = _mask_one(entry["value"], kind, found)


def _mask_column(column: dict[str, Any], kind: str | None, found: dict[str, str]) -> None:
    _mask_entries(column.get("top_values") or [], kind, found)
    for key in ("min", "max"):
        if key in column:
            column[key] = _mask_one(column[key], kind, found)
    for key in _VALUE_STATISTICS:
        column.pop(key, None)
    numeric_text = column.get("numeric_text")
    if isinstance(numeric_text, dict):
        numeric_text["examples"] = [
            _mask_one(v, kind, found) for v in numeric_text.get("examples") or []
        ]


def _replace_quoted(value: Any, replacements: dict[str, str]) -> Any:
    """``value`` with every raw personal value inside its strings replaced (longest first,
    so a value that contains another is replaced whole)."""
    if not replacements:
        return value
    if isinstance(value, str):
        for raw in sorted(replacements, key=len, reverse=True):
            value = value.replace(raw, replacements[raw])
        return value
    if isinstance(value, list):
        return [_replace_quoted(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _replace_quoted(item, replacements) for key, item in value.items()}
    return value
