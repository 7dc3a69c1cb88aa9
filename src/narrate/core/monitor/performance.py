"""Live performance: metrics of logged predictions against their actuals, per time window.

Pure computation, no storage: the service hands over the labelled predictions as arrays.

- **Metrics** are scikit-learn's. Classification: ``accuracy``, ``f1`` (binary, of the
  positive class) or ``macro_f1`` (multiclass), ``roc_auc`` (binary, when both classes
  are present and probabilities were logged) and ``log_loss`` (when probabilities were
  logged). Regression: ``rmse``, ``mae``, ``r2``. The names are those of the holdout
  evaluation, so a window compares with the baseline name for name.
- **Intervals** (95%): Wilson's score interval for accuracy (a proportion); for every
  other metric a percentile bootstrap of :data:`BOOTSTRAP_REPEATS` resamples drawn with
  seed :data:`BOOTSTRAP_SEED`, so the same rows always give the same interval.
- **Windows** tile ``[since, until)`` backwards from ``until`` in steps of the window
  length; a window is *complete* once its end is not in the future.
- **Degradation**: the primary metric of the newest complete window is worse than the
  baseline by more than a relative ``drop``, over at least ``min_rows`` labelled cases.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn import metrics as skm

__all__ = [
    "BOOTSTRAP_REPEATS",
    "BOOTSTRAP_SEED",
    "LEVEL",
    "LOWER_IS_BETTER",
    "MAX_WINDOWS",
    "Degradation",
    "Labelled",
    "assign_windows",
    "compute_metrics",
    "find_degradation",
    "primary_metric",
    "tile_windows",
    "wilson_interval",
]

BOOTSTRAP_REPEATS = 200
BOOTSTRAP_SEED = 0
LEVEL = 0.95
MAX_WINDOWS = 1000
"""Most windows one request may tile (more: pick a longer window or a shorter range)."""
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})

_EPS = 1e-15
Index = np.ndarray
_Fn = Callable[[Index], float]


@dataclass(frozen=True)
class Labelled:
    """Logged predictions with their actuals.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        actual: True labels (strings) or values (floats).
        predicted: Logged labels (strings) or values (floats).
        proba: Probabilities, one column per class in ``classes`` order, or None (a
            row of NaN = logged without probabilities; then the whole set is treated
            as having none).
        classes: The model's class labels (classification).
        positive_class: The class scored as positive (binary).
    """

    task: str
    actual: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray | None = None
    classes: Sequence[str] = ()
    positive_class: str | None = None

    @property
    def n(self) -> int:
        """Labelled cases."""
        return len(self.actual)

    def subset(self, index: np.ndarray) -> Labelled:
        """The same kind of data, for the rows at ``index``."""
        proba = self.proba[index] if self.proba is not None else None
        return Labelled(
            self.task,
            self.actual[index],
            self.predicted[index],
            proba,
            self.classes,
            self.positive_class,
        )


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval of a proportion.

    Raises:
        ValueError: ``n`` is not positive or ``successes`` is outside ``[0, n]``.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0; got {successes} of {n}")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _quiet(fn: Callable[[], float]) -> float:
    with warnings.catch_warnings():
        # A resample may miss a class; that draw is undefined and skipped.
        warnings.simplefilter("ignore")
        try:
            return float(fn())
        except ValueError:
            return float("nan")


def _positive(data: Labelled) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """1/0 actuals and predictions of the positive class (the model's, else the second
    class) and its probability column (or None)."""
    classes = list(data.classes)
    positive = data.positive_class or (classes[1] if len(classes) > 1 else None)
    y = (data.actual == positive).astype(int)
    pred = (data.predicted == positive).astype(int)
    if data.proba is None or positive not in classes:
        return y, pred, None
    return y, pred, data.proba[:, classes.index(str(positive))]


def _resampled_auc(y: np.ndarray, p: np.ndarray) -> _Fn:
    """ROC AUC of a resample, in one linear pass over the rows sorted once.

    A resample is a multiset of rows: with each row's multiplicity as its weight, the AUC
    is the weighted Mann-Whitney statistic (ties count one half), equal to scikit-learn's
    on the resampled rows, without sorting each resample again.
    """
    order = np.argsort(p, kind="stable")
    _, group = np.unique(p[order], return_inverse=True)
    is_pos = y[order] == 1
    n, groups = len(y), int(group.max()) + 1 if len(y) else 0

    def auc(index: Index) -> float:
        weight = np.bincount(index, minlength=n)[order].astype(float)
        pos = np.bincount(group, weights=weight * is_pos, minlength=groups)
        neg = np.bincount(group, weights=weight * ~is_pos, minlength=groups)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos == 0 or total_neg == 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        return float(np.sum(pos * (below + 0.5 * neg)) / (total_pos * total_neg))

    return auc


def _class_fns(data: Labelled) -> tuple[dict[str, float], dict[str, _Fn]]:
    """Point values (scikit-learn) and fast resample functions of each metric."""
    y, pred, classes = data.actual, data.predicted, list(data.classes)
    points: dict[str, float] = {"accuracy": float(skm.accuracy_score(y, pred))}
    fns: dict[str, _Fn] = {}
    if data.task == "binary":
        y01, pred01, p = _positive(data)
        points["f1"] = float(skm.f1_score(y01, pred01, zero_division=0))
        fns["f1"] = lambda i: _quiet(lambda: _f1(y01[i], pred01[i]))
        if p is not None and 0 < y01.sum() < len(y01):
            points["roc_auc"] = float(skm.roc_auc_score(y01, p))
            fns["roc_auc"] = _resampled_auc(y01, p)
    else:
        points["macro_f1"] = float(
            skm.f1_score(y, pred, average="macro", labels=classes, zero_division=0)
        )
        codes = {c: k for k, c in enumerate(classes)}
        y_code = np.array([codes.get(str(v), -1) for v in y])
        pred_code = np.array([codes.get(str(v), -1) for v in pred])
        fns["macro_f1"] = lambda i: _macro_f1(y_code[i], pred_code[i], len(classes))
    if data.proba is not None and classes:
        proba = np.clip(data.proba, _EPS, 1 - _EPS)
        proba = proba / proba.sum(axis=1, keepdims=True)
        col = {c: k for k, c in enumerate(classes)}
        picked = proba[np.arange(len(y)), [col.get(str(v), 0) for v in y]]
        points["log_loss"] = float(skm.log_loss(y, proba, labels=classes))
        fns["log_loss"] = lambda i: float(-np.mean(np.log(picked[i])))
    return points, fns


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum((y == 1) & (pred == 1)))
    denominator = float(np.sum(y) + np.sum(pred))
    return 2 * tp / denominator if denominator > 0 else 0.0


def _macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro F1 over ``k`` class codes (``-1``: none of them), as scikit-learn's
    ``f1_score(average="macro", labels=classes, zero_division=0)``, in one pass."""
    hit = y == pred
    tp = np.bincount(y[hit & (y >= 0)], minlength=k)[:k]
    true = np.bincount(y[y >= 0], minlength=k)[:k]
    predicted = np.bincount(pred[pred >= 0], minlength=k)[:k]
    denominator = true + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return float(f1.mean())


def _regression_fns(data: Labelled) -> tuple[dict[str, float], dict[str, _Fn]]:
    y, pred = data.actual.astype(float), data.predicted.astype(float)
    points = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
    }
    fns: dict[str, _Fn] = {
        "rmse": lambda i: float(np.sqrt(np.mean((y[i] - pred[i]) ** 2))),
        "mae": lambda i: float(np.mean(np.abs(y[i] - pred[i]))),
    }
    if len(y) >= 2 and np.var(y) > 0:
        points["r2"] = float(skm.r2_score(y, pred))
        fns["r2"] = lambda i: _quiet(lambda: skm.r2_score(y[i], pred[i]))
    return points, fns


def compute_metrics(
    data: Labelled, *, repeats: int = BOOTSTRAP_REPEATS, seed: int = BOOTSTRAP_SEED
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Metrics of labelled predictions and their 95% intervals.

    Args:
        data: The labelled predictions (at least one).
        repeats: Bootstrap resamples (0 = bootstrap intervals left out).
        seed: Random state of the resamples.

    Returns:
        ``(metrics, intervals)``: name → value rounded to 6 places, and name → ``[lo, hi]``
        for the metrics that have an interval. Empty dicts when there are no rows.
    """
    if data.n == 0:
        return {}, {}
    if data.proba is not None and np.isnan(data.proba).any():
        # Some rows were logged without probabilities: leave the metrics that need them out.
        data = Labelled(
            data.task, data.actual, data.predicted, None, data.classes, data.positive_class
        )
    regression = data.task == "regression"
    points, fns = _regression_fns(data) if regression else _class_fns(data)
    intervals: dict[str, list[float]] = {}
    if not regression:
        hits = int(np.sum(data.actual == data.predicted))
        intervals["accuracy"] = [round(v, 6) for v in wilson_interval(hits, data.n)]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats if data.n > 1 else 0):
        sample = rng.integers(0, data.n, data.n)
        for name, fn in fns.items():
            draws[name].append(fn(sample))
    for name, values in draws.items():
        finite = np.asarray(values)[np.isfinite(values)]
        if finite.size:
            low, high = np.percentile(finite, [2.5, 97.5])
            intervals[name] = [round(float(low), 6), round(float(high), 6)]
    metrics = {name: round(value, 6) for name, value in points.items() if math.isfinite(value)}
    return metrics, {k: v for k, v in intervals.items() if k in metrics}


def primary_metric(task: str, available: Sequence[str]) -> str:
    """The metric degradation is judged on: ROC AUC for binary (accuracy when AUC is not
    defined), accuracy for multiclass, RMSE for regression."""
    if task == "regression":
        return "rmse"
    if task == "binary" and "roc_auc" in available:
        return "roc_auc"
    return "accuracy"


def tile_windows(
    since: datetime, until: datetime, window: timedelta
) -> list[tuple[datetime, datetime]]:
    """Windows of length ``window`` ending at ``until``, oldest first, covering ``since``.

    The oldest window starts at or before ``since`` (windows are whole).

    Raises:
        ValueError: ``since`` is not before ``until``, or more than :data:`MAX_WINDOWS`.
    """
    if since >= until:
        raise ValueError("since must be before until")
    count = math.ceil((until - since) / window)
    if count > MAX_WINDOWS:
        raise ValueError(f"{count} windows; at most {MAX_WINDOWS}")
    return [(until - (k + 1) * window, until - k * window) for k in reversed(range(count))]


def assign_windows(
    times_us: np.ndarray, windows: Sequence[tuple[datetime, datetime]]
) -> np.ndarray:
    """The index of the window each time falls in (``-1``: in none).

    Args:
        times_us: Microseconds since the Unix epoch (UTC).
        windows: Contiguous windows, oldest first (as :func:`tile_windows` makes them).
    """
    if not windows:
        return np.full(len(times_us), -1)
    edges = np.array([_us(start) for start, _ in windows] + [_us(windows[-1][1])])
    index = np.searchsorted(edges, times_us, side="right") - 1
    index[(index < 0) | (index >= len(windows))] = -1
    return index


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


@dataclass(frozen=True)
class Degradation:
    """A primary metric worse than its baseline by more than the allowed relative drop."""

    metric: str
    baseline: float
    current: float
    relative_drop: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the performance response."""
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "current": self.current,
            "relative_drop": self.relative_drop,
            "threshold": self.threshold,
        }


def find_degradation(
    metric: str,
    baseline: float | None,
    current: float | None,
    n: int,
    *,
    drop: float,
    min_rows: int,
) -> Degradation | None:
    """The degradation of ``metric``, or None when it is within ``drop`` of the baseline,
    either value is missing, or fewer than ``min_rows`` cases were labelled.

    The relative drop is ``(baseline - current) / |baseline|``, sign-flipped for metrics
    where lower is better, so a positive drop always means worse.
    """
    if baseline is None or current is None or n < min_rows or baseline == 0:
        return None
    change = (baseline - current) / abs(baseline)
    relative = -change if metric in LOWER_IS_BETTER else change
    if relative <= drop:
        return None
    return Degradation(metric, baseline, current, round(relative, 6), drop)
