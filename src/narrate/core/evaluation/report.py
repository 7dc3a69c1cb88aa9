"""``evaluate`` and ``compare_models``: the Evaluate stage as JSON-serialisable dicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from narrate.core.automl.problem import ProblemInfo
from narrate.core.automl.scoring import DEFAULT_METRICS
from narrate.core.automl.search import predict_scores
from narrate.core.evaluation.curves import binary_curves, multiclass_curves, regression_curves
from narrate.core.evaluation.fairness import fairness_report
from narrate.core.evaluation.metrics import (
    binary_metrics,
    bootstrap,
    multiclass_metrics,
    regression_metrics,
)
from narrate.core.evaluation.slices import worst_slices
from narrate.errors import InvalidInput

__all__ = ["compare_models", "evaluate"]

_LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae", "mape"}


def _problem(problem: ProblemInfo | dict[str, Any]) -> ProblemInfo:
    return problem if isinstance(problem, ProblemInfo) else ProblemInfo(**problem)


def _threshold_of(pipeline: Any, threshold: float | None) -> float:
    if threshold is not None:
        return float(threshold)
    fixed = getattr(pipeline, "threshold", None)
    return float(fixed) if isinstance(fixed, (int, float)) else 0.5


def evaluate(
    pipeline: Any,
    X: pd.DataFrame,
    y: Any,
    problem: ProblemInfo | dict[str, Any],
    *,
    threshold: float | None = None,
    baseline: Any = None,
    sensitive: pd.DataFrame | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a fitted pipeline on held-out rows.

    Args:
        pipeline: The fitted model (raw rows in).
        X: Held-out feature rows.
        y: Their true target.
        problem: The :class:`ProblemInfo` (or its dict).
        threshold: Binary decision threshold (default: the model's own, else 0.5).
        baseline: Optional fitted naive model; default predicts the prior / mean of ``y``.
        sensitive: Optional sensitive columns aligned with ``X`` for fairness.
        n_bootstrap: Bootstrap resamples for 95% intervals.
        seed: Random state of the bootstrap.

    Returns:
        Metrics with intervals, lift over the baseline, confusion matrix, curves, slices
        and fairness, all JSON-serialisable.

    Raises:
        InvalidInput: ``X`` and ``y`` differ in length, or there are no rows.
    """
    info = _problem(problem)
    if len(X) != len(y) or len(X) == 0:
        raise InvalidInput(
            f"Can't evaluate: {len(X)} feature rows and {len(y)} target values.",
            details={"n_rows": len(X), "n_targets": len(y)},
        )
    X = X.reset_index(drop=True)
    if info.task == "regression":
        body = _evaluate_regression(
            pipeline, X, np.asarray(y, dtype=float), baseline, n_bootstrap, seed
        )
    else:
        body = _evaluate_classification(
            pipeline,
            X,
            np.asarray(pd.Series(y).astype(str)),
            info,
            _threshold_of(pipeline, threshold),
            baseline,
            n_bootstrap,
            seed,
        )
    loss, pred_for_fairness, y_for_fairness = body.pop("_per_row")
    body["slices"] = worst_slices(
        X, loss, loss_name="MAE" if info.task == "regression" else "error rate"
    )
    if sensitive is not None and len(sensitive.columns):
        body["fairness"] = fairness_report(
            y_for_fairness, pred_for_fairness, sensitive.reset_index(drop=True), task=info.task
        )
    else:
        body["fairness"] = None
    primary = DEFAULT_METRICS[info.task] if info.task != "multiclass" else "accuracy"
    return {
        "task": info.task,
        "target": info.target,
        "n_rows": len(X),
        "primary_metric": primary,
        **body,
    }


def _lift(metrics: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]]) -> dict[str, Any]:
    lift = {}
    for name, entry in metrics.items():
        value, naive = entry["value"], base.get(name, {}).get("value")
        if value is None or naive is None:
            continue
        gain = naive - value if name in _LOWER_IS_BETTER else value - naive
        lift[name] = round(gain, 6)
    return lift


def _evaluate_classification(
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    info: ProblemInfo,
    threshold: float,
    baseline: Any,
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    classes = sorted(info.classes)
    proba = predict_scores(pipeline, X, info.task, classes)
    if baseline is not None:
        naive = predict_scores(baseline, X, info.task, classes)
    else:
        prior = np.array([np.mean(y == c) for c in classes])
        naive = np.tile(prior, (len(y), 1))
    if info.task == "binary":
        positive = classes.index(str(info.positive_class or classes[1]))
        y01 = (y == classes[positive]).astype(int)
        p = proba[:, positive]
        metrics = bootstrap(
            binary_metrics(y01, p, threshold), len(y), n_bootstrap=n_bootstrap, seed=seed
        )
        base = bootstrap(
            binary_metrics(y01, naive[:, positive], threshold), len(y), n_bootstrap=0, seed=seed
        )
        pred = np.where(p >= threshold, classes[positive], classes[1 - positive])
        extra: dict[str, Any] = {
            "threshold": threshold,
            "positive_class": classes[positive],
            "curves": binary_curves(y01, p),
            "per_class": _per_class(y, pred, classes),
        }
        fairness_pred, fairness_y = (pred == classes[positive]).astype(int), y01
    else:
        metrics = bootstrap(
            multiclass_metrics(y, proba, classes), len(y), n_bootstrap=n_bootstrap, seed=seed
        )
        base = bootstrap(multiclass_metrics(y, naive, classes), len(y), n_bootstrap=0, seed=seed)
        pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        extra = {
            "per_class": _per_class(y, pred, classes),
            "curves": multiclass_curves(y, proba, classes),
        }
        fairness_pred, fairness_y = pred, y
    matrix = confusion_matrix(y, pred, labels=classes)
    return {
        "metrics": metrics,
        "baseline": {k: v["value"] for k, v in base.items()},
        "lift": _lift(metrics, base),
        "confusion_matrix": {"labels": classes, "matrix": matrix.tolist()},
        **extra,
        "_per_row": ((pred != y).astype(float), fairness_pred, fairness_y),
    }


def _per_class(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=classes, zero_division=0
    )
    return {
        c: {
            "precision": round(float(precision[i]), 6),
            "recall": round(float(recall[i]), 6),
            "f1": round(float(f1[i]), 6),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }


def _evaluate_regression(
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    baseline: Any,
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    pred = np.asarray(pipeline.predict(X), dtype=float)
    naive = (
        np.asarray(baseline.predict(X), dtype=float)
        if baseline is not None
        else np.full(len(y), float(np.mean(y)))
    )
    metrics = bootstrap(regression_metrics(y, pred), len(y), n_bootstrap=n_bootstrap, seed=seed)
    base = bootstrap(regression_metrics(y, naive), len(y), n_bootstrap=0, seed=seed)
    return {
        "metrics": metrics,
        "baseline": {k: v["value"] for k, v in base.items()},
        "lift": _lift(metrics, base),
        "confusion_matrix": None,
        "curves": regression_curves(y, pred),
        "prediction_interval": _conformal_interval(y, pred),
        "_per_row": (np.abs(y - pred), pred, y),
    }


def _conformal_interval(y: np.ndarray, pred: np.ndarray, level: float = 0.9) -> dict[str, Any]:
    """A split-conformal interval: the holdout's absolute errors at the finite-sample
    corrected quantile, so about ``level`` of new predictions fall within +- half_width."""
    errors = np.abs(y - pred)
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return {"level": level, "half_width": None, "method": "split conformal"}
    q = min(1.0, level * (1 + 1 / errors.size))
    return {
        "level": level,
        "half_width": float(np.quantile(errors, q, method="higher")),
        "method": "split conformal on the holdout's absolute errors",
    }


def compare_models(evaluations: list[dict[str, Any]]) -> dict[str, Any]:
    """Put several evaluations side by side.

    Args:
        evaluations: Outputs of :func:`evaluate`, each optionally with a ``"name"`` key.

    Returns:
        ``{"models", "metrics": {name: [values]}, "best": {metric: model}}``.

    Raises:
        InvalidInput: The evaluations are of different tasks or the list is empty.
    """
    if not evaluations:
        raise InvalidInput("Nothing to compare: pass at least one evaluation.")
    tasks = {e["task"] for e in evaluations}
    if len(tasks) > 1:
        raise InvalidInput(
            f"Can't compare models of different tasks ({', '.join(sorted(tasks))}).",
            details={"tasks": sorted(tasks)},
        )
    names = [str(e.get("name") or f"model {i + 1}") for i, e in enumerate(evaluations)]
    metric_names = list(evaluations[0]["metrics"])
    table = {m: [e["metrics"].get(m) for e in evaluations] for m in metric_names}
    best = {}
    for metric, entries in table.items():
        scored = [(i, e["value"]) for i, e in enumerate(entries) if e and e["value"] is not None]
        if scored:
            pick = (min if metric in _LOWER_IS_BETTER else max)(scored, key=lambda t: t[1])
            best[metric] = names[pick[0]]
    return {"task": tasks.pop(), "models": names, "metrics": table, "best": best}
