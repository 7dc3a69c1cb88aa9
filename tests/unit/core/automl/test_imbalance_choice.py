"""How `imbalance="auto"` chooses, by the minority share."""

from __future__ import annotations

import pytest

from narrate.core.automl.imbalance import choose_imbalance_strategy
from narrate.core.automl.problem import ProblemInfo


def _problem(share: float, rows: int = 5_000) -> ProblemInfo:
    return ProblemInfo(
        target="y",
        task="binary",
        reasoning="",
        classes=["a", "b"],
        positive_class="b",
        minority_share=share,
        n_rows=rows,
        warnings=[],
    )


@pytest.mark.parametrize(
    ("share", "rows", "expected"),
    [
        (0.4, 5_000, "none"),
        (0.15, 5_000, "none"),
        (0.12, 5_000, "class_weight"),
        (0.03, 5_000, "smote"),
        (0.01, 500_000, "random_under"),
    ],
    ids=["balanced", "mild", "moderate", "rare", "rare-and-large"],
)
def test_auto_strategy_by_minority_share(share: float, rows: int, expected: str) -> None:
    strategy, reason = choose_imbalance_strategy(_problem(share, rows), "auto", "f1")
    assert strategy == expected
    assert f"{share:.0%}"[:2] in reason or f"{share:.1%}"[:2] in reason


def test_an_explicit_choice_wins() -> None:
    assert choose_imbalance_strategy(_problem(0.4), "smote") == ("smote", "you chose smote")


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc", "log_loss"])
def test_auto_keeps_classes_as_they_are_for_probability_metrics(metric: str) -> None:
    strategy, reason = choose_imbalance_strategy(_problem(0.01), "auto", metric)
    assert strategy == "none"
    assert "1.0%" in reason and "threshold is tuned" in reason


def test_auto_balances_for_label_metrics_even_at_1_to_100() -> None:
    strategy, _ = choose_imbalance_strategy(_problem(0.01), "auto", "balanced_accuracy")
    assert strategy == "smote"
