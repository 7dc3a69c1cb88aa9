"""The drift narrative: plain sentences whose every number is a returned fact."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from narrate.core.monitor.drift import compute_drift
from narrate.core.narrative.drift import describe_drift

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text)]


def _assert_grounded(story: dict) -> None:
    values = {float(f["value"]) for f in story["facts"]}
    for number in _numbers(story["text"]):
        assert number in values, (number, story["text"], story["facts"])
    for fact in story["facts"]:
        assert set(fact) == {"name", "value", "source"}


@pytest.fixture(scope="module")
def shifted() -> dict:
    rng = np.random.default_rng(1)
    n = 5_000
    ref = pl.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "age": rng.normal(40, 10, n),
            "home": rng.choice(["rent", "own"], n).tolist(),
            "score": rng.normal(0, 1, n),
            "prediction": rng.choice(["yes", "no"], n).tolist(),
        }
    )
    home = rng.choice(["rent", "own", "boat"], n, p=[0.45, 0.45, 0.1]).tolist()
    cur = ref.with_columns(
        (pl.col("income") * 1.3).alias("income"),
        (pl.col("age") + 3).alias("age"),
        pl.Series("home", home),
        pl.Series("prediction", rng.choice(["yes", "no"], n, p=[0.8, 0.2]).tolist()),
    )
    return compute_drift(ref, cur, prediction="prediction")


def test_narrative_names_the_column_that_moved_most_with_its_psi(shifted: dict) -> None:
    story = describe_drift(shifted)
    top = shifted["columns"][0]
    assert top["column"] == "income"
    assert f"'income' (PSI {top['psi']:.2f}, high) moved most" in story["text"]
    assert "of 4 columns drifted" in story["text"]
    assert "The predictions moved too" in story["text"]
    assert "never seen before ('boat')" in story["text"]
    _assert_grounded(story)


def test_narrative_uses_importance_when_known(shifted: dict) -> None:
    story = describe_drift(shifted, importance={"income": 2, "age": 1})
    assert (
        "it is the model's 2nd most important input, so predictions are likely affected"
        in (story["text"])
    )
    assert {"name": "importance rank of income", "value": 2, "source": "importance.income"} in (
        story["facts"]
    )
    _assert_grounded(story)


def test_no_drift_says_so_with_the_largest_move() -> None:
    frame = pl.DataFrame({"x": [float(i % 7) for i in range(700)], "k": ["a", "b"] * 350})
    story = describe_drift(compute_drift(frame, frame))
    assert story["text"].startswith("Compared 700 reference rows with 700 current rows.")
    assert "No drift: none of the 2 columns moved past the thresholds" in story["text"]
    _assert_grounded(story)


def test_missing_values_are_told_in_words() -> None:
    ref = pl.DataFrame({"x": [float(i) for i in range(200)]})
    cur = pl.DataFrame({"x": [None if i % 4 == 0 else float(i) for i in range(200)]})
    story = describe_drift(compute_drift(ref, cur))
    assert "missing in 25.0% of rows, 0.0% before" in story["text"]
    _assert_grounded(story)


def test_every_fact_points_into_the_report(shifted: dict) -> None:
    story = describe_drift(shifted)
    sources = {f["source"] for f in story["facts"]}
    assert "columns[income].psi" in sources
    assert "overall.drifted" in sources
    assert "prediction.psi" in sources
