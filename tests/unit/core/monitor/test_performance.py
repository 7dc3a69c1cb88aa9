"""Live performance metrics, intervals, windows and degradation, against scikit-learn and
hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn import metrics as skm

from narrate.core.monitor.performance import (
    Labelled,
    assign_windows,
    compute_metrics,
    find_degradation,
    primary_metric,
    tile_windows,
    wilson_interval,
)
from narrate.core.narrative.performance import describe_performance

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _binary(n: int = 400, seed: int = 1) -> tuple[Labelled, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    classes = ("bad", "good")
    labels = np.asarray(classes, dtype=object)
    proba = np.column_stack([1 - p, p])
    data = Labelled("binary", labels[y], labels[(p >= 0.5).astype(int)], proba, classes, "good")
    return data, y, p


def test_binary_metrics_equal_sklearn() -> None:
    data, y, p = _binary()
    metrics, intervals = compute_metrics(data)
    pred = (p >= 0.5).astype(int)
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert metrics["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-6)
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    proba = np.column_stack([1 - p, p])
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=1e-6)
    for name, (low, high) in intervals.items():
        assert low <= metrics[name] <= high, name
    assert set(intervals) == set(metrics)


def test_intervals_are_reproducible_and_narrow_with_more_rows() -> None:
    small, _, _ = _binary(100)
    large, _, _ = _binary(4000)
    first, second = compute_metrics(small)[1], compute_metrics(small)[1]
    assert first == second
    wide = first["roc_auc"][1] - first["roc_auc"][0]
    narrow = compute_metrics(large)[1]["roc_auc"]
    assert narrow[1] - narrow[0] < wide


def test_roc_auc_left_out_when_one_class_only() -> None:
    data = Labelled(
        "binary",
        np.array(["good"] * 5, dtype=object),
        np.array(["good", "bad", "good", "good", "good"], dtype=object),
        np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7], [0.4, 0.6]]),
        ("bad", "good"),
        "good",
    )
    metrics, _ = compute_metrics(data)
    assert "roc_auc" not in metrics
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert primary_metric("binary", list(metrics)) == "accuracy"


def test_missing_probabilities_drop_probability_metrics() -> None:
    data, _, _ = _binary(50)
    assert data.proba is not None
    proba = data.proba.copy()
    proba[3] = np.nan
    metrics, _ = compute_metrics(
        Labelled("binary", data.actual, data.predicted, proba, data.classes, "good")
    )
    assert "roc_auc" not in metrics
    assert "log_loss" not in metrics
    assert "accuracy" in metrics


def test_multiclass_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    classes = ("a", "b", "c")
    proba = rng.dirichlet([1, 1, 1], 300)
    y = np.asarray(classes, dtype=object)[rng.integers(0, 3, 300)]
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    metrics, _ = compute_metrics(Labelled("multiclass", y, pred, proba, classes))
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", labels=list(classes)), abs=1e-6
    )
    assert metrics["log_loss"] == pytest.approx(
        skm.log_loss(y, proba, labels=list(classes)), abs=1e-6
    )
    assert "roc_auc" not in metrics


def test_regression_metrics_by_hand() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])
    metrics, intervals = compute_metrics(Labelled("regression", y, pred))
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["rmse"] == pytest.approx(1.0)  # sqrt(4 / 4)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)  # SS_res 4, SS_tot 5
    assert set(intervals) == {"rmse", "mae", "r2"}


def test_wilson_interval_by_hand() -> None:
    low, high = wilson_interval(8, 10)
    # z = 1.959964: centre (0.8 + z²/20) / (1 + z²/10), half z·sqrt(0.016 + z²/400)/(1 + z²/10)
    assert low == pytest.approx(0.4901625, abs=1e-6)
    assert high == pytest.approx(0.9433178, abs=1e-6)
    assert wilson_interval(0, 5)[0] == 0.0
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 0)


def test_windows_tile_back_from_until_and_assign_times() -> None:
    until = T0 + timedelta(days=3, hours=6)
    windows = tile_windows(until - timedelta(days=2, hours=1), until, timedelta(days=1))
    assert windows == [
        (T0 + timedelta(hours=6), T0 + timedelta(days=1, hours=6)),
        (T0 + timedelta(days=1, hours=6), T0 + timedelta(days=2, hours=6)),
        (T0 + timedelta(days=2, hours=6), until),
    ]
    times = [T0, T0 + timedelta(hours=6), T0 + timedelta(days=2, hours=7), until]
    us = np.array([int(t.timestamp() * 1_000_000) for t in times])
    assert assign_windows(us, windows).tolist() == [-1, 0, 2, -1]
    with pytest.raises(ValueError, match="windows"):
        tile_windows(T0, T0 + timedelta(days=2000), timedelta(days=1))
    with pytest.raises(ValueError, match="before"):
        tile_windows(T0, T0, timedelta(days=1))


@pytest.mark.parametrize(
    ("metric", "baseline", "current", "n", "expected"),
    [
        ("roc_auc", 0.80, 0.70, 200, 0.125),
        ("roc_auc", 0.80, 0.75, 200, None),  # 6.25% drop, within 10%
        ("roc_auc", 0.80, 0.60, 99, None),  # too few labelled cases
        ("rmse", 10.0, 12.0, 500, 0.2),  # lower is better: a rise is a drop
        ("rmse", 10.0, 8.0, 500, None),
        ("accuracy", None, 0.5, 500, None),
    ],
    ids=["auc-drop", "auc-within", "too-few", "rmse-rise", "rmse-better", "no-baseline"],
)
def test_degradation(
    metric: str, baseline: float | None, current: float, n: int, expected: float | None
) -> None:
    found = find_degradation(metric, baseline, current, n, drop=0.10, min_rows=100)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found.relative_drop == pytest.approx(expected)
        assert found.to_dict()["threshold"] == 0.10


def test_narrative_numbers_are_facts() -> None:
    latest = {"n": 250, "metrics": {"roc_auc": 0.61}}
    out = describe_performance(
        primary="roc_auc",
        baseline={"roc_auc": 0.8},
        latest=latest,
        latest_index=4,
        labelled=900,
        drop=0.1,
        min_rows=100,
    )
    assert "degraded" in out["text"]
    assert "23.8% worse" in out["text"]
    values = {f["value"] for f in out["facts"]}
    assert {250, 0.61, 0.8, 23.8, 10.0} <= values
    assert any(f["source"] == "windows[4].metrics.roc_auc" for f in out["facts"])


def test_resampled_metrics_equal_sklearn_on_each_resample() -> None:
    """The fast functions the bootstrap calls agree with scikit-learn on resamples."""
    from narrate.core.monitor.performance import _class_fns

    rng = np.random.default_rng(5)
    classes = ("a", "b", "c", "d")
    names = np.asarray(classes, dtype=object)
    y = names[rng.integers(0, 3, 200)]  # class 'd' never occurs
    pred = names[rng.integers(0, 4, 200)]
    proba = rng.dirichlet([1, 1, 1, 1], 200)
    _, fns = _class_fns(Labelled("multiclass", y, pred, proba, classes))
    data, y01, p = _binary(200)
    _, binary_fns = _class_fns(data)
    for _ in range(5):
        i = rng.integers(0, 200, 200)
        assert fns["macro_f1"](i) == pytest.approx(
            skm.f1_score(y[i], pred[i], average="macro", labels=list(classes), zero_division=0)
        )
        assert fns["log_loss"](i) == pytest.approx(
            skm.log_loss(y[i], proba[i], labels=list(classes))
        )
        assert binary_fns["roc_auc"](i) == pytest.approx(skm.roc_auc_score(y01[i], p[i]))
        assert binary_fns["f1"](i) == pytest.approx(skm.f1_score(y01[i], (p[i] >= 0.5).astype(int)))


def test_resampled_auc_counts_ties_as_half() -> None:
    from narrate.core.monitor.performance import _class_fns

    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    p = np.round(np.clip(0.2 * y + rng.uniform(0, 0.8, 300), 0, 1), 1)  # many ties
    labels = np.asarray(["n", "y"], dtype=object)
    data = Labelled(
        "binary",
        labels[y],
        labels[(p >= 0.5).astype(int)],
        np.column_stack([1 - p, p]),
        ("n", "y"),
        "y",
    )
    _, fns = _class_fns(data)
    for _ in range(5):
        i = rng.integers(0, 300, 300)
        assert fns["roc_auc"](i) == pytest.approx(skm.roc_auc_score(y[i], p[i]))
    assert np.isnan(fns["roc_auc"](np.flatnonzero(y == 1)))
