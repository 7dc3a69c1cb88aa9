"""The grounding check: every number of a text must be one of its facts' values."""

from __future__ import annotations

from typing import Any

import pytest

from narrate.core.narrative.grounding import numbers_in, ungrounded_numbers

FACTS: list[dict[str, Any]] = [
    {"name": "rows", "value": 4454, "source": "profile.table"},
    {"name": "Income missing share", "value": 0.086, "source": "profile.columns.Income"},
    {"name": "points", "value": -5, "source": "contribution"},
    {"name": "x1", "value": "class 2 doors", "source": "row"},
    {"name": "mean", "value": 7.987, "source": "profile.columns.Seniority"},
]


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("The table has 4,454 rows.", []),
        ("Income is empty in 8.6% of rows.", []),
        ("Debt pulls it down 5 points.", []),
        ("x1 is class 2 doors and its mean is 7.987.", []),
        ("The table has 4,455 rows.", ["4,455"]),
        ("Income is empty in 9% of rows.", ["9%"]),
        ("The mean is 7.99.", ["7.99"]),
        ("About 3 in 4 rows.", ["3", "4"]),
    ],
    ids=[
        "thousands",
        "percent-of-share",
        "sign-dropped",
        "digits-in-names",
        "changed",
        "rounded-percent",
        "rounded",
        "added",
    ],
)
def test_ungrounded_numbers_lists_what_no_fact_backs(text: str, missing: list[str]) -> None:
    assert ungrounded_numbers(text, FACTS) == missing


def test_numbers_in_reads_signs_commas_and_percent() -> None:
    found = numbers_in("-5 points, 1,234 rows, 12.5 %", [])
    assert found == [("-5", -5.0, False), ("1,234", 1234.0, False), ("12.5 %", 12.5, True)]
