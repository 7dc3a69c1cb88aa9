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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone, is_classifier

from narrate.core.automl.boosting import BoostedClassifier, BoostedRegressor
from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.scoring import Metric
from narrate.core.automl.space import fix_rounds, starting_points, suggest_params
from narrate.core.automl.splits import Split

__all__ = [
    "FoldResult",
    "SearchContext",
    "SearchOutcome",
    "TrialAbandoned",
    "TrialRecord",
    "cross_validate_pipeline",
    "fit_with_validation",
    "predict_scores",
    "run_search",
]

_FORESTS = ("random_forest", "extra_trees")
#: From this many development rows a forest's first trial grows fewer, smaller trees.
_LARGE_FOREST_ROWS = 20_000
_TRIAL_ERRORS = (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError)


class TrialAbandoned(Exception):
    """A trial stopped between folds because the search ran out of time."""


@dataclass
class FoldResult:
    """Cross-validation outcome of one pipeline."""

    scores: list[float]
    oof: np.ndarray
    fit_time_s: float
    rounds: list[int] | None = None  # boosting rounds each fold's early stopping kept

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
    log_target: bool = False  # regression target suits log(1 + y) (searched per trial)

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


def _stops_early(model: Any) -> str | None:
    """How ``model`` takes a validation set for early stopping (None: it doesn't)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if isinstance(model, BoostedClassifier | BoostedRegressor):
        return "eval_set" if model.early_stopping_rounds > 0 else None
    if isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return "X_val" if model.early_stopping is True else None
    return None


def fit_with_validation(
    pipeline: Any, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray
) -> int | None:
    """Fit ``pipeline`` on (X, y); a boosted model stops adding trees when (X_val, y_val)
    stops improving, and every one of the training rows trains it.

    The steps before the model are fitted on the training rows only and then transform the
    validation rows; a resampler changes the training rows only.

    Returns:
        The boosting rounds the model kept, or None for a model without early stopping.
    """
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    how = _stops_early(model) if model is not pipeline else None
    if how is None:
        pipeline.fit(X, y)
        return None
    head = pipeline[:-1]
    sampler = head.steps[-1][1]
    if hasattr(sampler, "fit_resample"):
        before = head[:-1]
        X_fit, y_fit = sampler.fit_resample(before.fit_transform(X, y), y)
        X_check = before.transform(X_val)
    else:
        X_fit, y_fit = head.fit_transform(X, y), y
        X_check = head.transform(X_val)
    if is_classifier(model):
        # Time-ordered or grouped folds can validate on a class the training rows lack,
        # which a booster can't score: judge stopping on the other rows.
        seen = np.flatnonzero(np.isin(y_val, np.unique(y_fit)))
        X_check = X_check.iloc[seen] if isinstance(X_check, pd.DataFrame) else X_check[seen]
        y_val = y_val[seen]
    if how == "eval_set":
        model.fit(X_fit, y_fit, eval_set=(X_check, y_val))
        return int(model.n_rounds_)
    model.fit(X_fit, y_fit, X_val=X_check, y_val=y_val)
    return int(model.n_iter_)


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

    def run_fold(i: int) -> tuple[np.ndarray, int | None]:
        if i and stop_after is not None and time.monotonic() > stop_after:
            raise TrialAbandoned(f"stopped after {i} of {len(splits)} folds: out of time")
        train_idx, val_idx = splits[i]
        fitted = clone(pipeline)
        X_val = X.iloc[val_idx]
        rounds = fit_with_validation(fitted, X.iloc[train_idx], y[train_idx], X_val, y[val_idx])
        return predict_scores(fitted, X_val, task, classes), rounds

    if fold_workers > 1 and len(splits) > 1:
        # The boosters, forests and linear solvers release the GIL while fitting, so folds
        # fitted in threads (one estimator thread each) keep every core busy without the
        # oversubscription of several multi-threaded fits at once.
        with ThreadPoolExecutor(max_workers=min(fold_workers, len(splits))) as pool:
            fold_results = list(pool.map(run_fold, range(len(splits))))
    else:
        fold_results = [run_fold(i) for i in range(len(splits))]
    predictions = [predicted for predicted, _ in fold_results]
    rounds = [r for _, r in fold_results if r is not None]
    scores: list[float] = []
    for (_train_idx, val_idx), predicted in zip(splits, predictions, strict=True):
        total[val_idx] += predicted
        seen[val_idx] += 1
        scores.append(metric.fn(y[val_idx], predicted, classes))
    # Repeated k-fold validates a row once per repeat: average its predictions.
    with np.errstate(invalid="ignore", divide="ignore"):
        oof = total / (seen[:, None] if width else seen)
    oof[seen == 0] = np.nan
    return FoldResult(scores, oof, time.perf_counter() - started, rounds or None)


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
    if result.rounds:
        # The final fits train the folds' mean number of trees on all rows, no stopping.
        spec = replace(spec, params=fix_rounds(spec.family, spec.params, result.rounds))
    return TrialRecord(spec, result)


def _next_family(
    outcome: SearchOutcome, families: list[str], metric: Metric, left: float | None = None
) -> str | None:
    """Pick the family whose trial share is furthest below its rank weight, among those
    whose latest trial took no longer than the ``left`` seconds (when given)."""
    tunable = [
        f
        for f in families
        if f != "baseline"
        and f in outcome.best_by_family
        and (left is None or outcome.seconds_by_family.get(f, 0.0) <= left)
    ]
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
        left = end - started if outcome.trials_done > 0 else None
        family = queue.pop(0) if queue else _next_family(outcome, families, ctx.metric, left)
        if family is None:
            break
        expected = outcome.seconds_by_family.get(family, 0.0)
        if left is not None and expected > left:
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
        points = starting_points(family, ctx.task, ctx.log_target)
        if family in _FORESTS and len(ctx.X) >= _LARGE_FOREST_ROWS:
            # Fully grown forests cost a third of a minute's budget on 30k+ rows.
            points = [{**p, "n_estimators": 100, "min_samples_leaf": 3} for p in points]
        for params in points:
            study.enqueue_trial(params)
    trial = study.ask()
    params = suggest_params(trial, family, ctx.task, ctx.log_target)
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
