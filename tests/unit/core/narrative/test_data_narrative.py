"""The data narrative: every branch returns facts, and every number of its text is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import narrate
from narrate.core.data.pii import detect_pii
from narrate.core.data.profile import profile_frame
from narrate.core.data.quality import find_warnings
from narrate.core.data.readers import read_table
from narrate.core.data.types import infer_types
from narrate.core.narrative.data import dataset_narrative, describe_dataset
from narrate.core.narrative.grounding import numbers_in, ungrounded_numbers

SAMPLES = Path(narrate.__file__).parent / "samples"


def _narrative(frame: pl.DataFrame, name: str, target: str | None) -> dict[str, Any]:
    frame, kinds = infer_types(frame)
    profile = profile_frame(frame, kinds, target=target)
    pii = detect_pii(frame, kinds)
    warnings = find_warnings(profile, target=target, pii=pii)
    told = dataset_narrative(profile, warnings, pii, name=name, target=target)
    assert told["text"] == describe_dataset(profile, warnings, pii, name=name, target=target)
    return told


def _sample(name: str) -> pl.DataFrame:
    return read_table(SAMPLES / f"{name}.csv", filename=f"{name}.csv").frame


def _messy() -> pl.DataFrame:
    rows = 200
    return pl.DataFrame(
        {
            "Churn": ["Yes" if i % 4 == 0 else "No" for i in range(rows)],
            "TotalCharges": [" " if i < 11 else f"{i * 3}.25" for i in range(rows)],
            "amount2": ["n/a" if i % 9 == 0 else str(i) for i in range(rows)],
            "email": [f"user{i}@example.com" for i in range(rows)],
            "tenure": [None if i % 7 == 0 else i % 70 for i in range(rows)],
        }
    )


CASES = {
    "credit, binary target": (lambda: _sample("credit_data"), "Status"),
    "penguins, three classes": (lambda: _sample("penguins"), "species"),
    "hitters, regression": (lambda: _sample("hitters"), "Salary"),
    "hitters, no target": (lambda: _sample("hitters"), None),
    "mixed types, PII, missing": (_messy, "Churn"),
    "duplicates": (lambda: pl.DataFrame({"a": [1, 1, 2] * 30, "b": ["x", "x", "y"] * 30}), None),
    "nothing wrong": (
        lambda: pl.DataFrame({"a": ["x", "y"] * 10, "b": [float(i) for i in range(20)]}),
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_number_of_the_data_narrative_is_a_fact(case: str) -> None:
    build, target = CASES[case]
    told = _narrative(build(), case, target)
    assert numbers_in(told["text"], told["facts"]), "the text states numbers"
    assert ungrounded_numbers(told["text"], told["facts"]) == []
    assert all(set(f) == {"name", "value", "source"} for f in told["facts"])


def test_the_facts_carry_the_profile_numbers() -> None:
    told = _narrative(_messy(), "telco.csv", "Churn")
    facts = {f["name"]: f for f in told["facts"]}
    assert facts["rows"] == {"name": "rows", "value": 200, "source": "table.rows"}
    assert facts["rarest class share (%)"]["value"] == 25.0
    assert facts["blanks in TotalCharges"]["value"] == 11
    assert facts["personal-data column"]["value"] == "email"
    assert "200 rows and 5 columns" in told["text"]
    # the check is not vacuous: a changed number is caught
    wrong = told["text"].replace("200 rows", "201 rows")
    assert ungrounded_numbers(wrong, told["facts"]) == ["201"]


def test_missing_share_is_said_as_rounded_and_stored_so() -> None:
    told = _narrative(_sample("credit_data"), "credit", "Status")
    facts = {f["name"]: f["value"] for f in told["facts"]}
    worst = facts["most empty column"]
    share = facts[f"empty in {worst} (%)"]
    assert f"most of all `{worst}` ({share:.1f}%)" in told["text"]
    assert facts["rows"] == 4454
