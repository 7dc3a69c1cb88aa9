"""The retraining job: newest labelled data → challenger → champion vs challenger on the same
recent window → decision.

Steps (each a job progress message):

1. Read the deployment's labelled log and split it by time
   (:func:`narrate.core.monitor.retrain.split_by_time`): the newest rows evaluate and are
   never trained on.
2. Store the original training rows plus the older labelled rows as a new version of the
   training data's dataset (a child of the version the champion was trained on, so the
   lineage shows where it came from); the dataset's working version is left as it was.
3. Train the challenger: ``refit`` rebuilds the champion's pipeline with its tuned
   settings; ``search`` reruns AutoML with the champion's options and ``budget_s``. It
   becomes a new version of the same model (the model's current version stays the
   champion until the challenger is promoted).
4. Score both with the same code on the window and compute the metrics with intervals.
5. Decide: a person decides (``awaiting_decision``) unless ``auto_promote``, which
   promotes when the challenger wins by the margin and rejects otherwise.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import polars as pl

from narrate.bootstrap import Container
from narrate.core.automl import TrainConfig, refit_estimator, train
from narrate.core.evaluation import evaluate
from narrate.core.monitor.performance import compute_metrics, primary_metric
from narrate.core.monitor.retrain import RECENT_DAYS, describe_run, is_better, split_by_time
from narrate.core.narrative.model import describe_model
from narrate.errors import InvalidState, NotFound
from narrate.jobs.context import JobContext
from narrate.services.actuals import deployment_target
from narrate.services.datasets import load_frame, store_version
from narrate.services.retrain_data import labelled_log, score_window, training_rows
from narrate.services.training import (
    holdout_split_evaluation,
    load_pipeline,
    raw_input_pipeline,
    save_model_version,
)
from narrate.storage.sql.tables import (
    Dataset,
    DatasetVersion,
    Model,
    ModelVersion,
    RetrainRun,
    utcnow,
)
from narrate.storage.sql.visibility import Owner

__all__ = ["RETRAIN_ENTRY", "retrain_job"]

RETRAIN_ENTRY = "narrate.services.retrain_job:retrain_job"


def retrain_job(ctx: JobContext) -> dict[str, Any]:
    """Job: run one retrain run; a failure marks the run failed with the reason at once
    (the recovery sweep does it for a worker that died)."""
    try:
        return _run(ctx)
    except BaseException as exc:
        with ctx.db.session() as s:
            row = s.get(RetrainRun, ctx.params["run_id"])
            if row is not None and row.status in ("queued", "running"):
                row.status = "failed"
                row.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise


def _step(ctx: JobContext, fraction: float, step: str, message: str) -> None:
    """Report one step of the run; with its name as data, so it is never thinned out."""
    ctx.progress(fraction, message, data={"retrain_step": step})


def _load(ctx: JobContext) -> tuple[RetrainRun, ModelVersion, Model, DatasetVersion]:
    with ctx.db.session() as s:
        run = s.get(RetrainRun, ctx.params["run_id"])
        if run is None:
            raise NotFound("The retrain run was removed before its job ran.")
        run.status = "running"
        champion = s.get(ModelVersion, run.champion_version_id)
        model = s.get(Model, champion.model_id) if champion else None
        trained_on = s.get(DatasetVersion, champion.dataset_version_id) if champion else None
        if champion is None or model is None or trained_on is None:
            raise NotFound("The champion model version or its training data is gone.")
        for row in (run, champion, model, trained_on):
            s.expunge(row)
    return run, champion, model, trained_on


def _run(ctx: JobContext) -> dict[str, Any]:
    container = Container(ctx.settings, ctx.db, ctx.blobs)
    run, champion, model, trained_on = _load(ctx)
    _step(ctx, 0.05, "read", "Reading the labelled predictions")
    labelled = labelled_log(container, run.deployment_id)
    minimum = ctx.settings.retrain_min_eval_rows
    if labelled.height < minimum:
        raise InvalidState(
            f"Only {labelled.height:,} logged predictions have an actual; {minimum:,} are "
            "needed for the evaluation window.",
            code="too_few_labels",
            details={"labelled": labelled.height, "needed": minimum},
        )
    split = split_by_time(labelled["at"].dt.epoch("us").to_numpy(), utcnow(), min_eval_rows=minimum)
    window = labelled[split.evaluate]
    older = labelled[split.train]
    _step(
        ctx,
        0.1,
        "split",
        f"The newest {window.height:,} labelled cases evaluate; {older.height:,} older ones "
        "join the training data",
    )
    version = _training_version(ctx, container, run, model, trained_on, older)
    _step(ctx, 0.3, "train", f"Training the challenger ({run.policy})")
    challenger_id = _challenger(ctx, container, run, champion, model, version)
    _step(ctx, 0.8, "score", "Scoring champion and challenger on the same window")
    target = deployment_target(container, run.deployment_id)
    sides = {
        "champion": score_window(container, champion.id, window, target),
        "challenger": score_window(container, challenger_id, window, target),
    }
    ids = {"champion": champion.id, "challenger": challenger_id}
    metrics: dict[str, Any] = {}
    for side, data in sides.items():
        points, intervals = compute_metrics(data)
        metrics[side] = {"model_version_id": ids[side], "metrics": points, "intervals": intervals}
    shared = set(metrics["champion"]["metrics"]) & set(metrics["challenger"]["metrics"])
    metric = primary_metric(target.task, sorted(shared))
    _step(ctx, 0.95, "record", "Recording the comparison")
    return _finish(
        ctx,
        container,
        run,
        metric=metric,
        metrics=metrics,
        window=(window["at"][0], window["at"][-1]),
        n_eval=window.height,
        n_train=older.height,
    )


def _model_space_rows(
    container: Container,
    trained_on: DatasetVersion,
    schema: pl.Schema,
    target: str,
    older: pl.DataFrame,
) -> pl.DataFrame:
    """Labelled log rows in the columns of the version the champion was trained on.

    The log holds raw inputs (the upload's columns). When that version was made by recipes,
    the rows go through the same fitted recipes the served pipeline starts with (in their
    prediction mode: every row stays, training-only steps such as filters are skipped).
    """
    from narrate.core.recipes import RecipeTransformer
    from narrate.services.training import _recipe_chain

    chain, root = _recipe_chain(container, trained_on)
    if not chain:
        return training_rows(older, schema, target, [c for c in schema if c != target])
    raw_schema = load_frame(container, root).schema
    raw = training_rows(older, raw_schema, target, [c for c in raw_schema if c != target])
    out = raw.to_pandas()
    try:
        for fitted in chain:
            out = RecipeTransformer(fitted=fitted, for_prediction=True).fit(out).transform(out)
    except (KeyError, ValueError) as exc:
        raise InvalidState(
            f"The logged inputs could not go through the recipes of version {trained_on.id}: {exc}",
            code="retrain_recipes_failed",
            details={"dataset_version_id": trained_on.id},
        ) from exc
    if target not in out.columns:
        out[target] = raw[target].to_pandas().to_numpy()
    moved = pl.from_pandas(out.reset_index(drop=True))
    return pl.DataFrame(
        [
            moved[name].cast(dtype, strict=False)
            if name in moved.columns
            else pl.Series(name, [None] * moved.height, dtype=dtype)
            for name, dtype in schema.items()
        ]
    )


def _training_version(
    ctx: JobContext,
    container: Container,
    run: RetrainRun,
    model: Model,
    trained_on: DatasetVersion,
    older: pl.DataFrame,
) -> DatasetVersion:
    """The champion's training rows plus the older labelled rows, as a new version."""
    base = load_frame(container, trained_on)
    added = _model_space_rows(container, trained_on, base.schema, model.target, older)
    frame = pl.concat([base, added], how="vertical") if added.height else base
    with container.db.session() as s:
        dataset = s.get(Dataset, trained_on.dataset_id)
        assert dataset is not None  # noqa: S101 - a version's dataset is kept
        working = dataset.current_version_id
        version = store_version(
            container,
            s,
            dataset,
            frame,
            {c["name"]: c["kind"] for c in trained_on.columns},
            created_by=ctx.owner_id,
            parent_id=trained_on.id,
            source={"kind": "retrain", "run_id": run.id, "added_rows": added.height},
            note=f"Retrain run {run.id}: {added.height:,} labelled logged rows added",
        )
        # A retrain run's data is not the user's working version: leave that as it was.
        dataset.current_version_id = working
        row = s.get(RetrainRun, run.id)
        assert row is not None  # noqa: S101 - loaded above
        row.dataset_version_id, row.n_train_rows = version.id, added.height
        s.flush()
        s.expunge(version)
    return version


def _model_inside(artifact: Any) -> Any:
    steps = getattr(artifact, "steps", None) or []
    if len(steps) > 1 and all(name.startswith("recipe_") for name, _ in steps[:-1]):
        return steps[-1][1]
    return artifact


def _challenger(
    ctx: JobContext,
    container: Container,
    run: RetrainRun,
    champion: ModelVersion,
    model: Model,
    version: DatasetVersion,
) -> str:
    """Train the challenger on ``version`` and store it as a new model version."""
    df = load_frame(container, version).to_pandas()
    config = TrainConfig.model_validate(champion.config)
    started = time.monotonic()
    if run.policy == "search":
        budget = float(run.options.get("budget_s") or config.time_budget_s)
        config = config.model_copy(update={"time_budget_s": budget})
        result = train(df, config, should_stop=ctx.is_cancelled, budget_started=started)
        known = df[df[config.target].notna()].reset_index(drop=True)
        hold = known.iloc[result.holdout_indices]
        evaluation = evaluate(
            result.best_pipeline,
            hold.drop(columns=[config.target]),
            hold[config.target],
            result.problem,
            seed=result.seed,
        )
        summary = result.to_dict()
        final, family, params = result.deployable, "", dict(result.best_spec)
        family = str(result.leaderboard[0]["family"]) if result.leaderboard else champion.family
    else:
        trained = _model_inside(load_pipeline(container, champion))
        evaluation = holdout_split_evaluation(df, config, trained)
        final = refit_estimator(trained, df, config)
        summary = {
            **champion.details,
            "leaderboard": champion.leaderboard,
            "config": champion.config,
            "refit_of": champion.id,
        }
        family, params = champion.family, dict(champion.params)
    summary["duration_s"] = round(time.monotonic() - started, 3)
    summary["retrain_run_id"] = run.id
    artifact = raw_input_pipeline(container, version, final)
    mv_id = save_model_version(
        container,
        model.id,
        version,
        artifact,
        summary,
        evaluation,
        describe_model(summary, evaluation),
        family=family,
        params=params,
        parent_id=champion.id,
    )
    with container.db.session() as s:
        row = s.get(Model, model.id)
        assert row is not None  # noqa: S101 - loaded above
        # The champion stays the model's current version until the challenger is promoted.
        row.current_version_id = champion.id
        run_row = s.get(RetrainRun, run.id)
        assert run_row is not None  # noqa: S101 - loaded above
        run_row.challenger_version_id = mv_id
    return mv_id


def _finish(
    ctx: JobContext,
    container: Container,
    run: RetrainRun,
    *,
    metric: str,
    metrics: dict[str, Any],
    window: tuple[Any, Any],
    n_eval: int,
    n_train: int,
) -> dict[str, Any]:
    """Record the comparison and the narrative; decide at once with ``auto_promote``."""
    from narrate.services.retrain import decide

    champion = metrics["champion"]["metrics"].get(metric)
    challenger = metrics["challenger"]["metrics"].get(metric)
    wins = (
        champion is not None
        and challenger is not None
        and is_better(metric, challenger, champion, run.margin)
    )
    decision = ("promote" if wins else "reject") if run.auto_promote else None
    narrative = describe_run(
        metric=metric,
        champion=champion,
        challenger=challenger,
        n_eval=n_eval,
        recent_days=RECENT_DAYS if window[0] >= utcnow() - timedelta(days=RECENT_DAYS) else None,
        n_new_train=n_train,
        margin=run.margin,
        decision=decision,
    )
    with ctx.db.session() as s:
        row = s.get(RetrainRun, run.id)
        assert row is not None  # noqa: S101 - loaded above
        row.metric, row.metrics, row.narrative = metric, metrics, narrative
        row.window_start, row.window_end = window
        row.n_eval_rows, row.n_train_rows = n_eval, n_train
        row.status = "awaiting_decision"
    _step(ctx, 0.97, "narrative", narrative["text"])
    if decision is not None:
        owner = Owner(ctx.owner_id, bool(ctx.params.get("is_admin")))
        why = (
            f"challenger wins by the margin of {run.margin}"
            if wins
            else (f"challenger does not win by the margin of {run.margin}")
        )
        decide(container, owner, run.id, decision, decided_by="auto", reason=why)
    return {"retrain_run_id": run.id, "decision": decision or "awaiting_decision"}
