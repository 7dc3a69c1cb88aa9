"""Column names as users will see them: trimmed, never empty, never repeated."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["describe_renames", "make_unique_names"]


def make_unique_names(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Trim names, name empty ones ``column_<position>`` and suffix repeats ``_2``, ``_3``...

    Args:
        names: Column names as found in the file, in order.

    Returns:
        The new names, and a map from each changed *new* name to the name in the file
        (keyed by the new name because repeated file names are not unique keys).
    """
    wanted = [name.strip() or f"column_{index}" for index, name in enumerate(names, start=1)]
    wanted_set = set(wanted)  # a set: a list lookup per name is quadratic in the width
    taken: set[str] = set()
    result: list[str] = []
    renamed: dict[str, str] = {}
    for original, base in zip(names, wanted, strict=True):
        name, suffix = base, 2
        while name in taken or (name != base and name in wanted_set):
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        result.append(name)
        if name != original:
            renamed[name] = original
    return result, renamed


def describe_renames(renamed: dict[str, str]) -> str | None:
    """Say in plain language which columns were renamed, or None when none were.

    Args:
        renamed: A map from new name to the name in the file.

    Returns:
        A sentence for the upload warnings, or None.
    """
    if not renamed:
        return None
    parts = [
        f"'{new}' (was {'empty' if not old.strip() else repr(old)})"
        for new, old in list(renamed.items())[:10]
    ]
    more = f" and {len(renamed) - 10} more" if len(renamed) > 10 else ""
    return (
        f"{len(renamed)} column name(s) were empty, repeated or padded with spaces and "
        f"were renamed: {', '.join(parts)}{more}."
    )
