"""The retraining loop's rules: the time split and the direction-aware decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from narrate.core.monitor.retrain import describe_run, is_better, split_by_time

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _times(days_ago: list[float]) -> np.ndarray:
    return np.array([int((NOW - timedelta(days=d)).timestamp() * 1_000_000) for d in days_ago])


def test_split_takes_newest_share_of_recent_rows_and_never_trains_on_them() -> None:
    # 200 rows in the last 30 days (one every 0.1 day) and 100 older ones, shuffled.
    ages = [0.1 * i for i in range(200)] + [40 + i for i in range(100)]
    times = _times(ages)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(times))
    times = times[order]
    split = split_by_time(times, NOW, min_eval_rows=50)
    assert split.recent == 200
    assert len(split.evaluate) == 60  # 30% of the 200 recent rows
    assert len(split.train) == 240
    assert set(split.train).isdisjoint(split.evaluate)
    assert times[split.evaluate].min() > times[split.train].max()
    assert list(times[split.evaluate]) == sorted(times[split.evaluate])


def test_split_keeps_at_least_min_eval_rows() -> None:
    times = _times([0.5 * i for i in range(80)])
    split = split_by_time(times, NOW, min_eval_rows=50)
    assert len(split.evaluate) == 50  # 30% of 80 is 24, below the minimum
    assert len(split.train) == 30


def test_split_with_nothing_recent_still_evaluates_on_the_newest_rows() -> None:
    times = _times([100 + i for i in range(120)])
    split = split_by_time(times, NOW, min_eval_rows=50)
    assert split.recent == 0
    assert len(split.evaluate) == 50
    assert times[split.evaluate].min() > times[split.train].max()


def test_split_refuses_fewer_rows_than_the_window_needs() -> None:
    with pytest.raises(ValueError, match="49 labelled rows; at least 50"):
        split_by_time(_times([1.0] * 49), NOW, min_eval_rows=50)


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "margin", "expected"),
    [
        ("roc_auc", 0.81, 0.77, 0.01, True),
        ("roc_auc", 0.775, 0.77, 0.01, False),
        ("roc_auc", 0.78, 0.77, 0.01, True),  # a gain equal to the margin wins
        ("roc_auc", 0.70, 0.77, 0.0, False),
        ("rmse", 9.0, 10.0, 0.5, True),  # lower is better
        ("rmse", 11.0, 10.0, 0.5, False),
        ("rmse", 9.8, 10.0, 0.5, False),
        ("log_loss", 0.30, 0.35, 0.01, True),
        ("r2", 0.60, 0.50, 0.05, True),
        ("accuracy", float("nan"), 0.5, 0.0, False),
    ],
    ids=[
        "auc-wins",
        "auc-below-margin",
        "auc-at-margin",
        "auc-worse",
        "rmse-lower-wins",
        "rmse-higher-loses",
        "rmse-below-margin",
        "logloss-lower-wins",
        "r2-higher-wins",
        "nan-never-wins",
    ],
)
def test_decision_is_direction_aware(
    metric: str, challenger: float, champion: float, margin: float, expected: bool
) -> None:
    assert is_better(metric, challenger, champion, margin) is expected


def test_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        is_better("roc_auc", 0.8, 0.7, -0.1)


def test_narrative_states_scores_rows_and_asks() -> None:
    out = describe_run(
        metric="roc_auc",
        champion=0.77,
        challenger=0.81,
        n_eval=4120,
        recent_days=30,
        n_new_train=900,
        margin=0.01,
        decision=None,
    )
    assert out["text"].startswith(
        "The challenger scores ROC AUC 0.810 vs 0.770 on the last 30 days' 4,120 labelled cases"
    )
    assert "Promote?" in out["text"]
    assert "900 newer labelled cases" in out["text"]
    facts = {f["name"]: f["value"] for f in out["facts"]}
    assert facts["challenger"] == 0.81
    assert facts["champion"] == 0.77
    assert facts["n_eval_rows"] == 4120


def test_narrative_of_an_automatic_rejection_says_so() -> None:
    out = describe_run(
        metric="rmse",
        champion=10.0,
        challenger=10.2,
        n_eval=60,
        recent_days=30,
        n_new_train=0,
        margin=0.5,
        decision="reject",
    )
    assert "lower is better" in out["text"]
    assert "does not win" in out["text"]
    assert "rejected automatically" in out["text"]
    assert "original training rows only" in out["text"]


def test_narrative_of_a_window_reaching_past_the_recent_days_says_newest() -> None:
    out = describe_run(
        metric="accuracy",
        champion=None,
        challenger=0.7,
        n_eval=50,
        recent_days=None,
        n_new_train=10,
        margin=0.01,
        decision=None,
    )
    assert out["text"].startswith(
        "Accuracy could not be computed for both models on the newest 50 labelled cases"
    )
    assert "last" not in out["text"]
