from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import ThresholdConfig
from narrate.core.automl.selection import FeatureSelector
from narrate.core.automl.threshold import tune_threshold


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    signal = rng.normal(size=300)
    y = (signal + rng.normal(0, 0.3, 300) > 0).astype(int)
    frame = pd.DataFrame(
        {
            "signal": signal,
            "signal_copy": signal * 2 + rng.normal(0, 0.01, 300),
            "noise1": rng.normal(size=300),
            "noise2": rng.normal(size=300),
            "colour": rng.choice(["red", "blue"], 300),
        }
    )
    return frame, y


def test_correlation_filter_drops_one_of_a_near_duplicate_pair_with_reason() -> None:
    X, y = _frame()
    selector = FeatureSelector("correlation", task="binary").fit(X, y)
    assert len(set(selector.dropped_) & {"signal", "signal_copy"}) == 1
    reason = next(iter(selector.dropped_.values()))
    assert "correlated with" in reason
    assert list(selector.transform(X).columns) == selector.selected_


@pytest.mark.parametrize("method", ["mutual_info", "rfe"])
def test_top_k_methods_keep_the_signal(method: str) -> None:
    X, y = _frame()
    selector = FeatureSelector(method, k=2, task="binary").fit(X, y)
    assert "signal" in selector.selected_ or "signal_copy" in selector.selected_
    assert "noise1" in selector.dropped_ or "noise2" in selector.dropped_
    if method == "mutual_info":
        assert len(selector.selected_) == 2


def _scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 1000), 0, 1)
    return y, p


def test_threshold_maximises_f1() -> None:
    y, p = _scores()
    tuned = tune_threshold(y, p, ThresholdConfig(objective="f1"))
    pred = p >= tuned["threshold"]
    f1_at = 2 * np.sum(pred & (y == 1)) / (np.sum(pred) + np.sum(y))
    f1_default = 2 * np.sum((p >= 0.5) & (y == 1)) / (np.sum(p >= 0.5) + np.sum(y))
    assert f1_at == pytest.approx(tuned["f1"])
    assert tuned["f1"] >= f1_default


def test_threshold_reaches_target_precision_and_recall() -> None:
    y, p = _scores()
    precise = tune_threshold(y, p, ThresholdConfig(objective="precision", target_value=0.9))
    assert precise["precision"] >= 0.9
    sensitive = tune_threshold(y, p, ThresholdConfig(objective="recall", target_value=0.95))
    assert sensitive["recall"] >= 0.95
    assert sensitive["threshold"] < precise["threshold"]


def test_cost_threshold_moves_down_when_misses_are_expensive() -> None:
    y, p = _scores()
    cheap = tune_threshold(y, p, ThresholdConfig(objective="cost", cost_matrix=[[0, 1], [1, 0]]))
    costly = tune_threshold(y, p, ThresholdConfig(objective="cost", cost_matrix=[[0, 1], [20, 0]]))
    assert costly["threshold"] < cheap["threshold"]


def test_cost_objective_requires_a_matrix() -> None:
    with pytest.raises(ValueError, match="cost_matrix"):
        ThresholdConfig(objective="cost")
