"""The retraining loop's pure rules: which labelled rows evaluate, who wins, and the words.

- **Split by time.** The evaluation window is the newest labelled rows: the newest
  :data:`EVAL_FRACTION` of those answered in the last :data:`RECENT_DAYS` days, but at
  least ``min_eval_rows`` (and never more than there are). Every older labelled row may be
  trained on; no row of the window ever is.
- **Decision.** The challenger wins when its primary metric beats the champion's by at
  least ``margin`` (absolute), in the metric's direction: higher for ROC AUC, accuracy,
  F1 and R², lower for RMSE, MAE and log loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from narrate.core.monitor.performance import LOWER_IS_BETTER

__all__ = [
    "EVAL_FRACTION",
    "METRIC_NAMES",
    "RECENT_DAYS",
    "TimeSplit",
    "describe_run",
    "is_better",
    "split_by_time",
]

EVAL_FRACTION = 0.3
"""Share of the recent labelled rows that evaluate."""
RECENT_DAYS = 30
"""How far back "recent" reaches."""
METRIC_NAMES = {
    "roc_auc": "ROC AUC",
    "accuracy": "accuracy",
    "f1": "F1",
    "macro_f1": "macro F1",
    "log_loss": "log loss",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
}


@dataclass(frozen=True)
class TimeSplit:
    """Positions (into the time-sorted rows) that train and that evaluate.

    Attributes:
        train: Older labelled rows, oldest first.
        evaluate: The evaluation window, oldest first.
        recent: Labelled rows answered in the last :data:`RECENT_DAYS` days.
    """

    train: np.ndarray
    evaluate: np.ndarray
    recent: int


def split_by_time(
    times: np.ndarray,
    now: datetime,
    *,
    min_eval_rows: int,
    fraction: float = EVAL_FRACTION,
    recent_days: int = RECENT_DAYS,
) -> TimeSplit:
    """Split labelled rows by when they were answered.

    Args:
        times: Each row's time in microseconds since 1970 (UTC), any order.
        now: The current time (aware).
        min_eval_rows: Fewest rows the window holds.
        fraction: Share of the recent rows that evaluate.
        recent_days: How far back "recent" reaches.

    Returns:
        The split; positions index ``times``.

    Raises:
        ValueError: fewer rows than ``min_eval_rows``, or a bad fraction.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1; got {fraction}")
    n = len(times)
    if n < min_eval_rows:
        raise ValueError(f"{n} labelled rows; at least {min_eval_rows} are needed")
    order = np.argsort(times, kind="stable")
    since = int((now - timedelta(days=recent_days)).timestamp() * 1_000_000)
    recent = int(np.sum(np.asarray(times) >= since))
    n_eval = min(n, max(math.ceil(fraction * recent), min_eval_rows))
    return TimeSplit(order[: n - n_eval], order[n - n_eval :], recent)


def is_better(metric: str, challenger: float, champion: float, margin: float) -> bool:
    """Whether the challenger beats the champion by at least ``margin`` on ``metric``.

    Raises:
        ValueError: a negative margin.
    """
    if margin < 0:
        raise ValueError(f"margin must be at least 0; got {margin}")
    if not (math.isfinite(challenger) and math.isfinite(champion)):
        return False
    gain = champion - challenger if metric in LOWER_IS_BETTER else challenger - champion
    # A gain equal to the margin wins; rounding must not turn 0.01 into 0.0099999.
    return gain >= margin - 1e-12


def _number(value: float) -> str:
    return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.1f}"


def describe_run(
    *,
    metric: str,
    champion: float | None,
    challenger: float | None,
    n_eval: int,
    recent_days: int | None,
    n_new_train: int,
    margin: float,
    decision: str | None,
) -> dict[str, Any]:
    """The run in plain words, with every number it uses as a fact.

    Args:
        metric: The primary metric.
        champion: The champion's score on the window (None: not defined there).
        challenger: The challenger's score on the window.
        n_eval: Rows of the evaluation window.
        recent_days: How far back the window reaches at most, or None when it reaches
            further (too few recent labelled cases): then it is "the newest" cases.
        n_new_train: Logged labelled rows added to the training data.
        margin: The margin the challenger must win by.
        decision: ``promote``, ``reject`` or None (a person decides).

    Returns:
        ``{"text", "facts": [{"name", "value", "source"}]}``.
    """
    name = METRIC_NAMES.get(metric, metric)
    cases = (
        f"the last {recent_days} days' {n_eval:,} labelled cases"
        if recent_days is not None
        else f"the newest {n_eval:,} labelled cases"
    )
    facts: list[dict[str, Any]] = [
        {"name": "n_eval_rows", "value": n_eval, "source": "n_eval_rows"},
        {"name": "n_new_train_rows", "value": n_new_train, "source": "n_train_rows"},
        {"name": "margin", "value": margin, "source": "margin"},
    ]
    learnt = (
        f"It learnt from {n_new_train:,} newer labelled cases besides the original training rows."
        if n_new_train
        else "No labelled case older than the window was left to learn from, so it learnt "
        "from the original training rows only."
    )
    if champion is None or challenger is None:
        text = (
            f"{name[:1].upper()}{name[1:]} could not be computed for both models on {cases}, "
            f"so there is no winner; {learnt}"
        )
        return {"text": text, "facts": facts}
    facts += [
        {"name": "challenger", "value": challenger, "source": f"metrics.challenger.{metric}"},
        {"name": "champion", "value": champion, "source": f"metrics.champion.{metric}"},
    ]
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    head = (
        f"The challenger scores {name} {_number(challenger)} vs {_number(champion)} on "
        f"{cases} ({direction} is better)"
    )
    wins = is_better(metric, challenger, champion, margin)
    verdict = "wins" if wins else "does not win"
    judged = f"it {verdict} by the margin of {_number(margin)}."
    if decision is None:
        ask = " Promote?" if wins else " Promote anyway, or reject?"
        text = f"{head}; {judged}{ask} {learnt}"
    elif decision == "promote":
        text = f"{head}; {judged} It was promoted automatically. {learnt}"
    else:
        text = f"{head}; {judged} It was rejected automatically. {learnt}"
    return {"text": text, "facts": facts}
