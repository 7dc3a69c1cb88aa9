"""Time-budgeted hyper-parameter search with one Optuna study per model family.

Every family first gets one trial at default parameters; the remaining trials go to
families in proportion to their rank, so promising families are tuned more. Folds run
side by side in threads, one estimator thread each, so every core is busy and nothing
is oversubscribed; the final fits get all threads.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone

from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.scoring import Metric
from narrate.core.automl.space import DEFAULT_PARAMS, default_key, suggest_params
from narrate.core.automl.splits import Split

__all__ = [
    "FoldResult",
    "SearchContext",
    "SearchOutcome",
    "TrialAbandoned",
    "TrialRecord",
    "cross_validate_pipeline",
    "predict_scores",
    "run_search",
]

_TRIAL_ERRORS = (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError)


class TrialAbandoned(Exception):
    """A trial stopped between folds because the search ran out of time."""


@dataclass
class FoldResult:
    """Cross-validation outcome of one pipeline."""

    scores: list[float]
    oof: np.ndarray
    fit_time_s: float

    @property
    def mean(self) -> float:
        """Mean fold score."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Standard deviation of fold scores."""
        return float(np.std(self.scores))


@dataclass
class TrialRecord:
    """One evaluated candidate."""

    spec: CandidateSpec
    result: FoldResult | None
    error: str | None = None
    abandoned: bool = False  # stopped between folds at the deadline, not a failure


@dataclass
class SearchContext:
    """What the search needs besides the candidates."""

    X: pd.DataFrame
    y: np.ndarray
    task: str
    classes: list[str]
    splits: list[Split]
    metric: Metric
    seed: int
    n_jobs: int
    min_class_rows: int
    base_spec: CandidateSpec
    preprocessor: Any = None
    n_repeats: int = 1  # k-fold shuffles in ``splits``

    @property
    def folds_per_repeat(self) -> int:
        """Folds in one pass over the rows (what a stacked ensemble's inner CV uses)."""
        folds = len(self.splits) // max(1, self.n_repeats)
        return folds if folds > 1 else 3


@dataclass
class SearchOutcome:
    """Everything the search found."""

    best_by_family: dict[str, TrialRecord] = field(default_factory=dict)
    trials_by_family: dict[str, int] = field(default_factory=dict)
    seconds_by_family: dict[str, float] = field(default_factory=dict)  # the latest trial's
    trials_done: int = 0
    cancelled: bool = False
    abandoned: int = 0  # trials stopped between folds at the deadline


def predict_scores(pipeline: Any, X: pd.DataFrame, task: str, classes: list[str]) -> np.ndarray:
    """Return class probabilities aligned to ``classes`` (classification) or predictions.

    Args:
        pipeline: A fitted pipeline.
        X: Rows to score.
        task: The task.
        classes: All class labels in column order.

    Returns:
        An (n, n_classes) probability matrix, or an (n,) prediction vector.
    """
    if task == "regression":
        return np.asarray(pipeline.predict(X), dtype=float)
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    aligned = np.zeros((len(X), len(classes)))
    for j, label in enumerate(pipeline.classes_):
        aligned[:, classes.index(str(label))] = proba[:, j]
    # float32 boosters can drift from summing to one; metrics such as log loss insist.
    aligned = np.clip(aligned, 0.0, 1.0)
    totals = aligned.sum(axis=1, keepdims=True)
    normalised: np.ndarray = np.divide(
        aligned, totals, out=np.full_like(aligned, 1 / len(classes)), where=totals > 0
    )
    return normalised


def cross_validate_pipeline(
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    splits: list[Split],
    *,
    task: str,
    classes: list[str],
    metric: Metric,
    stop_after: float | None = None,
    fold_workers: int = 1,
) -> FoldResult:
    """Fit a clone of the pipeline on each training fold and score its validation fold.

    Args:
        pipeline: The unfitted pipeline (resamplers inside run on training folds only).
        X: Development rows.
        y: Their target.
        splits: (train, validation) positions.
        task: The task.
        classes: Class labels (classification).
        metric: The ranking metric.
        stop_after: ``time.monotonic()`` value after which no further fold starts.
        fold_workers: Folds fitted at once, in threads (build ``pipeline`` with one
            estimator thread when this is above 1).

    Returns:
        Fold scores and out-of-fold predictions (NaN where a row was never validated).

    Raises:
        TrialAbandoned: ``stop_after`` passed before the last fold.
    """
    width = len(classes) if task != "regression" else None
    total = np.zeros((len(X), width) if width else len(X))
    seen = np.zeros(len(X))
    started = time.perf_counter()

    def run_fold(i: int) -> np.ndarray:
        if i and stop_after is not None and time.monotonic() > stop_after:
            raise TrialAbandoned(f"stopped after {i} of {len(splits)} folds: out of time")
        train_idx, val_idx = splits[i]
        fitted = clone(pipeline).fit(X.iloc[train_idx], y[train_idx])
        return predict_scores(fitted, X.iloc[val_idx], task, classes)

    if fold_workers > 1 and len(splits) > 1:
        # The boosters, forests and linear solvers release the GIL while fitting, so folds
        # fitted in threads (one estimator thread each) keep every core busy without the
        # oversubscription of several multi-threaded fits at once.
        with ThreadPoolExecutor(max_workers=min(fold_workers, len(splits))) as pool:
            predictions = list(pool.map(run_fold, range(len(splits))))
    else:
        predictions = [run_fold(i) for i in range(len(splits))]
    scores: list[float] = []
    for (_train_idx, val_idx), predicted in zip(splits, predictions, strict=True):
        total[val_idx] += predicted
        seen[val_idx] += 1
        scores.append(metric.fn(y[val_idx], predicted, classes))
    # Repeated k-fold validates a row once per repeat: average its predictions.
    with np.errstate(invalid="ignore", divide="ignore"):
        oof = total / (seen[:, None] if width else seen)
    oof[seen == 0] = np.nan
    return FoldResult(scores, oof, time.perf_counter() - started)


def _evaluate_spec(
    spec: CandidateSpec, ctx: SearchContext, stop_after: float | None = None
) -> TrialRecord:
    # Folds run side by side, one estimator thread each (see cross_validate_pipeline).
    workers = min(ctx.n_jobs, len(ctx.splits))
    pipeline = build_pipeline(
        spec,
        ctx.task,
        seed=ctx.seed,
        n_jobs=1 if workers > 1 else ctx.n_jobs,
        min_class_rows=ctx.min_class_rows,
        preprocessor=ctx.preprocessor,
    )
    try:
        with warnings.catch_warnings():
            # Tiny folds can make a metric undefined; the failed trial is recorded instead.
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            result = cross_validate_pipeline(
                pipeline,
                ctx.X,
                ctx.y,
                ctx.splits,
                task=ctx.task,
                classes=ctx.classes,
                metric=ctx.metric,
                stop_after=stop_after,
                fold_workers=workers,
            )
    except TrialAbandoned as stopped:
        return TrialRecord(spec, None, str(stopped), abandoned=True)
    except _TRIAL_ERRORS as error:
        return TrialRecord(spec, None, f"{type(error).__name__}: {error}")
    if not np.isfinite(result.mean):
        return TrialRecord(spec, None, "the metric was not finite")
    return TrialRecord(spec, result)


def _next_family(outcome: SearchOutcome, families: list[str], metric: Metric) -> str | None:
    """Pick the family whose trial share is furthest below its rank weight."""
    tunable = [f for f in families if f != "baseline" and f in outcome.best_by_family]
    if not tunable:
        return None
    ranked = sorted(tunable, key=lambda f: -_goal(outcome.best_by_family[f], metric))
    weights = {f: len(ranked) - i for i, f in enumerate(ranked)}
    return min(ranked, key=lambda f: outcome.trials_by_family.get(f, 0) / weights[f])


def _goal(record: TrialRecord, metric: Metric) -> float:
    return metric.goal(record.result.mean) if record.result else -np.inf


def run_search(
    ctx: SearchContext,
    families: list[str],
    *,
    deadline: float,
    max_trials: int | None,
    should_stop: Callable[[], bool],
    on_trial: Callable[[SearchOutcome, TrialRecord], None],
    reserve: Callable[[SearchOutcome], float] | None = None,
) -> SearchOutcome:
    """Search the families until the deadline, the trial cap or a stop request.

    Args:
        ctx: Data, folds, metric and build settings.
        families: Families to try (in order for the default trials).
        deadline: ``time.monotonic()`` value by which the search and the work after it
            should be done.
        max_trials: Optional cap on trials (makes runs deterministic for a seed).
        should_stop: Checked before each trial; True keeps the best so far.
        on_trial: Called after each trial (progress reporting).
        reserve: Seconds to keep before ``deadline`` for the work after the search,
            re-estimated from the trials so far. No trial starts once the reserve is
            reached, nor one that its family's latest trial says would run into it.

    Returns:
        The best trial of each family, trial counts and whether the run was cancelled.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    outcome = SearchOutcome()
    studies = {
        family: optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=ctx.seed + i)
        )
        for i, family in enumerate(families)
    }
    queue = list(families)
    while max_trials is None or outcome.trials_done < max_trials:
        if should_stop():
            outcome.cancelled = True
            break
        end = deadline - (reserve(outcome) if reserve else 0.0)
        started = time.monotonic()
        if started >= end and outcome.trials_done > 0:
            break
        family = queue.pop(0) if queue else _next_family(outcome, families, ctx.metric)
        if family is None:
            break
        expected = outcome.seconds_by_family.get(family, 0.0)
        if outcome.trials_done > 0 and started + expected > end:
            break
        # A trial may run past ``end`` only while nothing but the baseline has a score.
        has_model = any(
            f != "baseline" and r.result is not None for f, r in outcome.best_by_family.items()
        )
        record = _run_trial(
            studies[family],
            family,
            ctx,
            first=family not in outcome.trials_by_family,
            stop_after=end if has_model else None,
        )
        if record.abandoned:
            outcome.abandoned += 1
            break
        outcome.seconds_by_family[family] = time.monotonic() - started
        outcome.trials_done += 1
        outcome.trials_by_family[family] = outcome.trials_by_family.get(family, 0) + 1
        best = outcome.best_by_family.get(family)
        if best is None or _goal(record, ctx.metric) > _goal(best, ctx.metric):
            outcome.best_by_family[family] = record
        on_trial(outcome, record)
    return outcome


def _run_trial(
    study: optuna.Study,
    family: str,
    ctx: SearchContext,
    *,
    first: bool,
    stop_after: float | None = None,
) -> TrialRecord:
    if first:
        defaults = DEFAULT_PARAMS[default_key(family, ctx.task)]
        if defaults:
            study.enqueue_trial(defaults)
    trial = study.ask()
    params = suggest_params(trial, family, ctx.task)
    spec = CandidateSpec(
        family=family,
        params=params,
        imbalance=ctx.base_spec.imbalance,
        selection=ctx.base_spec.selection,
        selection_k=ctx.base_spec.selection_k,
        drop_columns=ctx.base_spec.drop_columns,
    )
    record = _evaluate_spec(spec, ctx, stop_after)
    if record.result is None:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, ctx.metric.goal(record.result.mean))
    return record
