"""The Train stage: split, search, ensemble, tune the threshold and refit (``train``)."""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.config import TrainConfig
from narrate.core.automl.ensembles import build_ensemble, score_ensembles
from narrate.core.automl.imbalance import choose_imbalance_strategy
from narrate.core.automl.problem import (
    FeatureWarning,
    ProblemInfo,
    detect_problem,
    find_feature_warnings,
)
from narrate.core.automl.results import ProgressUpdate, TrainResult
from narrate.core.automl.scoring import Metric, get_metric
from narrate.core.automl.search import SearchContext, SearchOutcome, TrialRecord, run_search
from narrate.core.automl.splits import (
    cv_repeats,
    holdout_split,
    validation_scheme,
    validation_splits,
)
from narrate.core.automl.threshold import apply_threshold, tune_threshold
from narrate.errors import InvalidInput

__all__ = ["library_versions", "refit", "refit_estimator", "train"]

_PACKAGES = ("scikit-learn", "lightgbm", "xgboost", "optuna", "imbalanced-learn", "pandas", "numpy")
# The search keeps back the time the final fits are expected to take, within these shares
# of the budget (the estimate comes from the trials' own fit times).
_RESERVE_MIN_SHARE = 0.03
_RESERVE_MAX_SHARE = 0.5
_RESERVE_FIXED_S = 1.0  # threshold tuning, leaderboard, bookkeeping
# A final fit sees all development rows (a fold's fit sees (k-1)/k of them) with the tree
# count the folds' early stopping settled on, on all cores (folds ran side by side on one
# core each): measured 0.9-1.2x a fold's share of the trial's wall time.
_FINAL_FIT_FACTOR = 1.3
# Families whose best trials the ensembles may combine (greedy weights drop the useless).
_ENSEMBLE_MEMBERS = 5
_WARNING_SAMPLE = 20_000


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a fitted model depends on."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            # e.g. xgboost ships as the "xgboost-cpu" distribution: ask the module itself.
            module = {"scikit-learn": "sklearn", "imbalanced-learn": "imblearn"}.get(name, name)
            try:
                found[name] = str(importlib.import_module(module).__version__)
            except (ImportError, AttributeError):
                found[name] = "not installed"
    return found


def _check_columns(df: pd.DataFrame, config: TrainConfig) -> None:
    named = {"group_column": config.group_column, "time_column": config.time_column}
    named.update({f"sensitive_columns[{i}]": c for i, c in enumerate(config.sensitive_columns)})
    for parameter, column in named.items():
        if column is not None and column not in df.columns:
            raise InvalidInput(
                f"Column '{column}' given as {parameter} is not in the data.",
                hint="Pick one of the existing columns.",
                details={"column": column, "parameter": parameter},
            )


def _prepare(df: pd.DataFrame, config: TrainConfig) -> tuple[ProblemInfo, pd.DataFrame, np.ndarray]:
    _check_columns(df, config)
    problem = detect_problem(df, config.target, override=config.task)
    known = df[df[config.target].notna()].reset_index(drop=True)
    raw = known[config.target]
    y = (
        raw.astype(str).to_numpy(dtype=object)
        if problem.task != "regression"
        else (raw.to_numpy(dtype=float))
    )
    return problem, known, y


def _drop_reasons(warnings_found: list[FeatureWarning], config: TrainConfig) -> dict[str, str]:
    reasons = {
        w.column: "looks like an ID (a different value on every row)"
        for w in warnings_found
        if w.kind == "id_like"
    }
    if config.group_column:
        reasons[config.group_column] = "used to group rows into folds, not as a feature"
    return reasons


def train(
    df: pd.DataFrame,
    config: TrainConfig,
    *,
    progress: Callable[[ProgressUpdate], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preprocessor: Any = None,
    budget_started: float | None = None,
    keep_after_s: float = 0.0,
) -> TrainResult:
    """Train and select a model for ``config.target`` within the time budget.

    Args:
        df: The data (raw columns; the target among them).
        config: Training configuration.
        progress: Called with a :class:`ProgressUpdate` after each step.
        should_stop: Checked between trials; True stops and keeps the best so far.
        preprocessor: Optional (fitted) recipe transformer placed first in every pipeline.
        budget_started: ``time.monotonic()`` when the budget's clock started (default:
            now); a job that loaded the data first passes its own start.
        keep_after_s: Seconds of the budget the caller needs after training (evaluating
            and saving the model), kept free by ending the search earlier.

    Returns:
        The :class:`TrainResult`.

    Raises:
        InvalidInput: Bad target, columns or metric.
    """
    started = time.monotonic()
    deadline = (budget_started or started) + config.time_budget_s - keep_after_s
    report = progress or (lambda _update: None)
    problem, known, y = _prepare(df, config)
    metric = get_metric(problem.task, config.metric, problem.positive_class)
    sample = known.sample(min(len(known), _WARNING_SAMPLE), random_state=config.seed)
    feature_warnings = find_feature_warnings(sample, config.target)
    report(ProgressUpdate(0.02, "Problem detected: " + problem.reasoning))
    X = known.drop(columns=[config.target])
    classify = problem.task != "regression"
    dev, test = holdout_split(known, known[config.target], config, classify=classify)
    X_dev, y_dev = X.iloc[dev].reset_index(drop=True), y[dev]
    splits = validation_splits(X_dev, pd.Series(y_dev), config, classify=classify)
    imbalance, imbalance_reason = choose_imbalance_strategy(problem, config.imbalance, metric.name)
    drop_reasons = _drop_reasons(feature_warnings, config)
    ctx = SearchContext(
        X=X_dev,
        y=y_dev,
        task=problem.task,
        classes=sorted(problem.classes),
        splits=splits,
        metric=metric,
        seed=config.seed,
        n_jobs=config.n_jobs,
        min_class_rows=_min_class_rows(y_dev, splits, classify),
        base_spec=_base_spec(config, imbalance, tuple(drop_reasons)),
        preprocessor=preprocessor,
        n_repeats=cv_repeats(config, len(X_dev)),
        log_target=problem.task == "regression" and _suits_log(y_dev),
    )
    outcome = run_search(
        ctx,
        list(config.families),
        deadline=deadline,
        max_trials=config.max_trials,
        should_stop=should_stop or (lambda: False),
        on_trial=lambda out, rec: report(
            _trial_update(out, rec, ctx, config, budget_started or started)
        ),
        reserve=lambda out: _final_fit_reserve(out, ctx, config),
    )
    ranked = _ranked(outcome, metric)
    if not ranked:
        raise InvalidInput(
            "No candidate model could be trained on this data.",
            hint="Check the data for problems or try other model families.",
            details={"errors": _errors(outcome)},
        )
    report(
        ProgressUpdate(
            0.85,
            "Search finished; building the final model.",
            outcome.trials_done,
            ranked[0].result.mean if ranked[0].result else None,
            leaderboard=_leaderboard(outcome, metric),
        )
    )
    final, oof, ensemble_info = _final_model(ranked, ctx, config, deadline)
    threshold_info = None
    if problem.task == "binary" and config.threshold.objective != "none":
        positive = ctx.classes.index(str(problem.positive_class))
        mask = ~np.isnan(oof[:, positive])
        threshold_info = tune_threshold(
            y_dev[mask] == problem.positive_class, oof[mask, positive], config.threshold
        )
        final = apply_threshold(
            final,
            threshold_info["threshold"],
            str(problem.positive_class),
            X_dev.iloc[:10],
            y_dev[:10],
        )
    dropped = {**drop_reasons, **_selector_drops(final)}
    full = None
    if config.refit_full and not (should_stop and should_stop()):
        report(ProgressUpdate(0.95, "Refitting the chosen model on all labelled rows."))
        full = _refit_all_rows(final, X, y)
    report(ProgressUpdate(1.0, "Training finished.", outcome.trials_done))
    return TrainResult(
        problem=problem,
        best_pipeline=final,
        leaderboard=_leaderboard(outcome, metric, ensemble_info),
        metric=metric.name,
        holdout_indices=test,
        train_indices=dev,
        threshold=threshold_info,
        dropped_features=dropped,
        feature_warnings=feature_warnings,
        imbalance_strategy=imbalance,
        imbalance_reason=imbalance_reason,
        validation=validation_scheme(config, len(X_dev)),
        cv_repeats=ctx.n_repeats,
        config=config,
        library_versions=library_versions(),
        seed=config.seed,
        duration_s=time.monotonic() - started,
        ensemble=ensemble_info,
        best_spec=ranked[0].spec.to_dict(),
        cancelled=outcome.cancelled,
        trials_done=outcome.trials_done,
        final_pipeline=full,
    )


#: Skewness from which a non-negative target is also tried on a log scale (prices, sizes).
_LOG_TARGET_SKEW = 0.75


def _suits_log(y: np.ndarray) -> bool:
    """A non-negative, right-skewed target: models may learn log(1 + y) instead."""
    values = np.asarray(y, dtype=float)
    if len(values) < 20 or not np.isfinite(values).all() or values.min() < 0:
        return False
    return bool(pd.Series(values).skew() >= _LOG_TARGET_SKEW)


def _base_spec(config: TrainConfig, imbalance: str, drop: tuple[str, ...]) -> CandidateSpec:
    method = config.feature_selection.method
    return CandidateSpec(
        family="baseline",
        imbalance=imbalance,
        selection="correlation" if method == "auto" else method,
        selection_k=config.feature_selection.k,
        drop_columns=drop,
    )


def _min_class_rows(y: np.ndarray, splits: list[Any], classify: bool) -> int:
    if not classify:
        return 0
    return int(min(pd.Series(y[train]).value_counts().min() for train, _ in splits))


def _ranked(outcome: SearchOutcome, metric: Metric) -> list[TrialRecord]:
    done = [r for r in outcome.best_by_family.values() if r.result is not None]
    return sorted(done, key=lambda r: -metric.goal(r.result.mean))  # type: ignore[union-attr]


def _errors(outcome: SearchOutcome) -> dict[str, str]:
    return {f: str(r.error) for f, r in outcome.best_by_family.items() if r.error}


def _leaderboard(
    outcome: SearchOutcome, metric: Metric, ensemble: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    rows = []
    for record in _ranked(outcome, metric):
        result = record.result
        assert result is not None  # noqa: S101 - _ranked keeps only scored records
        rows.append(
            {
                "family": record.spec.family,
                "params": record.spec.params,
                "cv_score_mean": round(result.mean, 6),
                "cv_score_std": round(result.std, 6),
                "fit_time_s": round(result.fit_time_s, 3),
                "n_trials": outcome.trials_by_family.get(record.spec.family, 0),
                "spec": record.spec.to_dict(),
            }
        )
    if ensemble and ensemble.get("chosen"):
        kind = ensemble["chosen"]
        rows.append(
            {
                "family": f"ensemble:{kind}",
                "params": {"members": ensemble["members"], "weights": ensemble.get("weights")},
                "cv_score_mean": ensemble["scores"][kind],
                "cv_score_std": None,
                "fit_time_s": None,
                "n_trials": 0,
                "spec": None,
            }
        )
        rows.sort(key=lambda r: -metric.goal(float(r["cv_score_mean"])))  # type: ignore[arg-type]
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _trial_update(
    outcome: SearchOutcome,
    record: TrialRecord,
    ctx: SearchContext,
    config: TrainConfig,
    started: float,
) -> ProgressUpdate:
    elapsed = time.monotonic() - started
    fraction = elapsed / config.time_budget_s
    if config.max_trials:
        fraction = max(fraction, outcome.trials_done / config.max_trials)
    best = _ranked(outcome, ctx.metric)
    best_score = best[0].result.mean if best and best[0].result else None
    score = f"{record.result.mean:.4f}" if record.result else f"failed ({record.error})"
    return ProgressUpdate(
        fraction=round(min(0.05 + 0.8 * fraction, 0.85), 4),
        message=f"Trial {outcome.trials_done}: {record.spec.family} scored {score}",
        trials_done=outcome.trials_done,
        best_score=best_score,
        time_left_s=max(0.0, config.time_budget_s - elapsed),
        leaderboard=_leaderboard(outcome, ctx.metric),
    )


def _per_fit_seconds(record: TrialRecord) -> float:
    """A trial's time covers one fit per fold, so a fold's share stands for one fit."""
    return record.result.fit_time_s / len(record.result.scores) if record.result else 0.0


def _final_fit_seconds(
    members: list[TrialRecord], n_splits: int, config: TrainConfig, kind: str = "stacking"
) -> float:
    """Seconds to fit the final model from ``members`` (one: a single model; more: an
    ensemble of ``kind`` — voting fits each member once, blending once on 75% of rows,
    stacking once per inner fold and a last time), refits on all rows included. Final fits
    see all development rows, not a fold's share (``_FINAL_FIT_FACTOR``)."""
    per_fit = [_per_fit_seconds(m) for m in members]
    if len(per_fit) == 1:
        fits = per_fit[0]
    else:
        fits = sum(per_fit) * {"soft_voting": 1.0, "blending": 0.75}.get(kind, n_splits + 1)
    return _FINAL_FIT_FACTOR * fits * (2.0 if config.refit_full else 1.0)


def _final_fit_reserve(outcome: SearchOutcome, ctx: SearchContext, config: TrainConfig) -> float:
    """Seconds the work after the search should take, judged from the trials so far.

    The reserve covers a soft vote of the best two models when ensembles are on (the
    cheapest ensemble, and the one most often kept), else the best single model; a costlier
    ensemble is only built when its own estimate fits in the time left, and members are
    left out, costliest first, until one does (see :func:`_final_model`).
    """
    ranked = [r for r in _ranked(outcome, ctx.metric) if r.result]
    models = [r for r in ranked if r.spec.family != "baseline"]
    if config.ensembles and len(models) >= 2:
        fits = _final_fit_seconds(models[:2], ctx.folds_per_repeat, config, "soft_voting")
    else:
        fits = _final_fit_seconds(ranked[:1], ctx.folds_per_repeat, config) if ranked else 0.0
    budget = config.time_budget_s
    seconds = fits + _RESERVE_FIXED_S
    return min(max(seconds, _RESERVE_MIN_SHARE * budget), _RESERVE_MAX_SHARE * budget)


def _final_model(
    ranked: list[TrialRecord], ctx: SearchContext, config: TrainConfig, deadline: float
) -> tuple[Any, np.ndarray, dict[str, Any] | None]:
    """Fit the best single model, or an ensemble of the best families if it scores better
    and its fits are expected to end by ``deadline``."""
    best = ranked[0]
    assert best.result is not None  # noqa: S101
    members = [r for r in ranked if r.spec.family != "baseline"][:_ENSEMBLE_MEMBERS]
    ensemble_info = None
    oof = best.result.oof
    estimator = None
    if config.ensembles and len(members) >= 2:
        ensemble_info, ensemble_oof, members = _affordable_ensemble(members, ctx, config, deadline)
        if ensemble_oof is not None:
            oof = ensemble_oof
            estimator = build_ensemble(
                ensemble_info["chosen"],
                [(m.spec.family, _pipeline(m.spec, ctx)) for m in members],
                task=ctx.task,
                n_folds=ctx.folds_per_repeat,
                seed=ctx.seed,
                weights=ensemble_info.get("weights"),
            )
    if estimator is None:
        estimator = _pipeline(best.spec, ctx)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        return estimator.fit(ctx.X, ctx.y), oof, ensemble_info


def _affordable_ensemble(
    members: list[TrialRecord], ctx: SearchContext, config: TrainConfig, deadline: float
) -> tuple[dict[str, Any], np.ndarray | None, list[TrialRecord]]:
    """Choose an ensemble of ``members`` whose fit ends by ``deadline``; when none does,
    leave out the costliest member (never the best) and choose again.

    Returns the ensemble summary, its out-of-fold predictions (None when no ensemble is
    kept) and the members it was chosen from.
    """
    pool = list(members)
    skipped: list[str] = []
    while True:
        info, oof = _choose_ensemble(pool, ctx, config, deadline)
        if "skipped" in info:
            skipped.append(info["skipped"])
        if info["chosen"] is not None or "skipped" not in info or len(pool) <= 2:
            break
        costliest = max(pool[1:], key=_per_fit_seconds)
        pool.remove(costliest)
        skipped.append(f"{costliest.spec.family} was left out to save time")
    if skipped:
        info["skipped"] = "; ".join(dict.fromkeys(skipped))
    return info, oof, pool


def _choose_ensemble(
    members: list[TrialRecord], ctx: SearchContext, config: TrainConfig, deadline: float
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Score the ensembles of ``members`` and pick one whose fit ends by ``deadline``.

    Returns the ensemble summary (``chosen`` is None when no ensemble is kept) and the
    chosen ensemble's out-of-fold predictions (None when none is kept).
    """
    choice = score_ensembles(
        [m.result.oof for m in members if m.result],
        ctx.y,
        task=ctx.task,
        classes=ctx.classes,
        metric=ctx.metric,
        seed=ctx.seed,
    )
    info = choice.to_dict([m.spec.family for m in members])
    weighted = [m for m, w in zip(members, choice.weights or [], strict=False) if w > 0]

    def fits_in_time(kind: str) -> bool:
        # Members the greedy selection gave no weight are left out of a voting fit.
        fitted = (weighted or members) if kind == "soft_voting" else members
        needed = _final_fit_seconds(fitted, ctx.folds_per_repeat, config, kind=kind)
        if time.monotonic() + needed <= deadline:
            return True
        info.setdefault(
            "skipped",
            f"the {kind.replace('_', ' ')} ensemble scored better but would need "
            f"about {needed:.0f} s to fit, more than the time budget has left",
        )
        return False

    info["chosen"] = None
    if choice.winner is None:
        return info, None
    if fits_in_time(choice.winner):
        info["chosen"] = choice.winner
        return info, choice.oof
    voting_gain = ctx.metric.goal(choice.scores["soft_voting"]) - ctx.metric.goal(
        choice.best_single_score
    )
    if choice.winner != "soft_voting" and voting_gain > 0 and fits_in_time("soft_voting"):
        # The cheaper soft vote still beats the best single model: keep that.
        info["chosen"] = "soft_voting"
        info["skipped"] += "; the soft voting ensemble, which also scored better, was kept"
        info["skipped"] += " instead"
        stacked = np.stack([m.result.oof for m in members if m.result])
        return info, np.average(stacked, axis=0, weights=choice.weights)
    return info, None


def _refit_all_rows(model: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """A fresh copy of the chosen model (same settings, threshold included) fitted on
    every labelled row, development and holdout alike."""
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        if isinstance(model, FixedThresholdClassifier) and isinstance(
            model.estimator, FrozenEstimator
        ):
            # A tuned threshold wraps a frozen (prefit) model: refit what is inside it.
            inner = clone(model.estimator.estimator).fit(X, y)
            return apply_threshold(inner, model.threshold, model.pos_label, X.iloc[:10], y[:10])
        return clone(model).fit(X, y)


def refit_estimator(model: Any, df: pd.DataFrame, config: TrainConfig) -> Any:
    """Retrain a fitted model's exact pipeline (ensemble and tuned threshold included) on new
    rows, with the settings it was found with and no search.

    Args:
        model: A fitted model as training saved it (single pipeline, ensemble, or either
            wrapped with a tuned threshold).
        df: The new data, target included.
        config: The training configuration (target and task).

    Returns:
        A new fitted model; ``model`` is left untouched.

    Raises:
        InvalidInput: Bad target.
    """
    _problem, known, y = _prepare(df, config)
    return _refit_all_rows(model, known.drop(columns=[config.target]), y)


def _pipeline(spec: CandidateSpec, ctx: SearchContext) -> Any:
    return build_pipeline(
        spec,
        ctx.task,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
        min_class_rows=ctx.min_class_rows,
        preprocessor=ctx.preprocessor,
    )


def _selector_drops(model: Any) -> dict[str, str]:
    """Collect the feature selector's dropped columns from the final (possibly wrapped) model."""
    inner = getattr(model, "estimator", model)
    inner = getattr(inner, "estimator", inner)  # FixedThresholdClassifier → FrozenEstimator
    pipelines = [inner] + [e for _, e in getattr(inner, "named_estimators_", {}).items()]
    for pipeline in pipelines:
        steps = getattr(pipeline, "named_steps", {})
        if "select" in steps:
            return dict(steps["select"].dropped_)
    return {}


def refit(
    pipeline_spec: dict[str, Any] | CandidateSpec,
    df: pd.DataFrame,
    config: TrainConfig,
    *,
    preprocessor: Any = None,
) -> Any:
    """Retrain one candidate (e.g. a leaderboard entry's ``spec``) on new data, no search.

    Args:
        pipeline_spec: A :class:`CandidateSpec` or its dict (leaderboard ``spec``).
        df: The data, target included.
        config: Training configuration (target, task, seed, n_jobs).
        preprocessor: Optional recipe transformer placed first.

    Returns:
        The fitted pipeline.

    Raises:
        InvalidInput: Bad target or spec.
    """
    spec = (
        pipeline_spec
        if isinstance(pipeline_spec, CandidateSpec)
        else CandidateSpec.from_dict(pipeline_spec)
    )
    problem, known, y = _prepare(df, config)
    X = known.drop(columns=[config.target])
    min_rows = int(pd.Series(y).value_counts().min()) if problem.task != "regression" else 0
    try:
        pipeline = build_pipeline(
            spec,
            problem.task,
            seed=config.seed,
            n_jobs=config.n_jobs,
            min_class_rows=min_rows,
            preprocessor=preprocessor,
        )
    except ValueError as error:
        raise InvalidInput(
            f"The model spec can't be rebuilt: {error}", details={"parameter": "pipeline_spec"}
        ) from error
    return pipeline.fit(X, y)
