"""A sentence per prediction, every number in it traceable to a fact."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from narrate.core.explain import Explainer, RowExplanation
from narrate.core.explain.narrative import describe_prediction, say_number

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def _numbers_in(text: str, facts: list[dict[str, Any]]) -> list[float]:
    """The numbers of the text once every fact name and text value is taken out."""
    words = [str(f["name"]) for f in facts] + [
        str(f["value"]) for f in facts if isinstance(f["value"], str)
    ]
    for word in sorted(set(words), key=len, reverse=True):
        text = text.replace(word, " ")
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text)]


def _assert_grounded(narrative: dict[str, Any]) -> None:
    values = {float(f["value"]) for f in narrative["facts"] if isinstance(f["value"], int | float)}
    found = _numbers_in(narrative["text"], narrative["facts"])
    assert found, narrative["text"]
    for number in found:
        assert number in values or -number in values, (number, narrative)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("credit_data", "lightgbm"),
        ("credit_data", "linear"),
        ("penguins", "random_forest"),
        ("hitters", "xgboost"),
        ("hitters", "linear"),
        ("credit_data", "baseline"),
    ],
)
def test_every_number_in_the_sentence_is_a_fact(
    fitted: Callable[..., Any], name: str, family: str
) -> None:
    model, X, _, task = fitted(name, family)
    rows = X.sample(10, random_state=7)
    _, explained = Explainer(model, X.sample(100, random_state=0)).explain(rows)
    for e, row in zip(explained, rows.to_dict("records"), strict=True):
        narrative = describe_prediction(e, row, target="Salary" if task == "regression" else None)
        _assert_grounded(narrative)
        if task == "regression":
            assert narrative["text"].startswith("Predicted Salary is ")
        else:
            assert f"likely '{e.explained_class}'" in narrative["text"]


def _explanation(contributions: dict[str, float], output: float, base: float) -> RowExplanation:
    natural = {
        "scale": "probability",
        "output": output,
        "base_value": base,
        "contributions": contributions,
    }
    return RowExplanation("bad", "bad", output, base, contributions, {}, natural)


def test_sentence_names_the_top_reasons_with_points() -> None:
    explanation = _explanation(
        {"Income": 0.14, "Records": 0.09, "Age": 0.01, "Debt": -0.05}, 0.82, 0.63
    )
    row = {"Income": 45.0, "Records": "yes", "Age": 30, "Debt": None}
    narrative = describe_prediction(explanation, row)
    assert narrative["text"] == (
        "82% likely 'bad' (the average is 63%), mainly because Income is 45 (+14 points) and "
        "Records is yes (+9 points), while Debt is missing (-5 points) pulls it down."
    )
    _assert_grounded(narrative)


def test_a_prediction_no_column_moves_says_so() -> None:
    narrative = describe_prediction(_explanation({"Income": 0.0001}, 0.3, 0.3), {"Income": 3})
    assert narrative["text"] == "30% likely 'bad' (the average is 30%); no column moves it much."


@pytest.mark.parametrize(
    ("value", "said"),
    [(1234.56, 1235), (45.4, 45), (3.14159, 3.14), (0.012345, 0.0123), (0.0, 0), (-9.2, -9.2)],
)
def test_numbers_are_rounded_as_people_say_them(value: float, said: float) -> None:
    assert say_number(value) == said


def test_a_prediction_below_the_average_names_what_pulls_it_down_first() -> None:
    contributions = {"CRBI": -121.0, "Years": -40.0, "Walks": 33.0}
    natural = {"scale": "value", "output": 404.0, "base_value": 532.0}
    explanation = RowExplanation(
        404.0, None, 404.0, 532.0, contributions, {}, {**natural, "contributions": contributions}
    )
    row = {"CRBI": 34, "Years": 2, "Walks": 8}
    narrative = describe_prediction(explanation, row, target="Salary")
    assert narrative["text"] == (
        "Predicted Salary is 404 (the average is 532), mainly because CRBI is 34 (-121) and "
        "Years is 2 (-40), while Walks is 8 (+33) pulls it up."
    )
    _assert_grounded(narrative)


def test_an_almost_certain_class_is_not_said_to_be_certain() -> None:
    narrative = describe_prediction(_explanation({"Income": 0.5}, 0.99962, 0.49962), {"Income": 3})
    assert narrative["text"].startswith("99.9% likely 'bad' (the average is 50%)")
    _assert_grounded(narrative)
