"""The metric glossary: labels, glosses, directions and the way numbers are said."""

from __future__ import annotations

import pytest

from narrate.core import glossary
from narrate.core.narrative.grounding import ungrounded_numbers


def test_every_entry_has_a_label_a_one_line_gloss_and_a_direction() -> None:
    for name, entry in glossary.GLOSSARY.items():
        assert entry.name == name and entry.label and "\n" not in entry.gloss
        assert entry.direction in {"higher is better", "lower is better"}
    assert glossary.gloss("roc_auc") == (
        "ROC AUC — how well the model ranks a likely case above an unlikely one; 0.5 is guessing"
    )
    assert glossary.lower_is_better("rmse") and glossary.lower_is_better("log_loss")
    assert not glossary.lower_is_better("r2")
    assert glossary.term("custom_score").label == "custom_score"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("roc_auc", 0.81234, "0.81"),
        ("accuracy", 0.8, "0.80"),
        ("rmse", 1234.5, "1,230"),
        ("rmse", 376.9, "377"),
        ("mae", 12.345, "12.3"),
        ("mae", 0.041234, "0.0412"),
        ("rmse", 0.0, "0"),
    ],
)
def test_numbers_are_said_rounded_and_the_said_number_is_the_rounded_fact(
    name: str, value: float, said: str
) -> None:
    assert glossary.say(name, value) == said
    fact = [{"name": name, "value": glossary.rounded(name, value), "source": "test"}]
    assert ungrounded_numbers(f"The score is {said}.", fact) == []
