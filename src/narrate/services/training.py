"""The Train and Evaluate stages: AutoML runs as jobs, a model registry, evaluations.

A training run is a job. It reads a dataset version, searches candidates within the
time budget (reporting a live leaderboard through job events), evaluates the best model
on an untouched holdout, and stores a model version: the fitted pipeline (which accepts
the raw upload's columns when the version came from recipes), metrics, leaderboard,
config, seed and library versions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
import typing
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from narrate.bootstrap import Container
from narrate.core.automl import (
    TrainConfig,
    detect_problem,
    load_model,
    refit_estimator,
    save_model,
    train,
)
from narrate.core.automl.config import FAMILIES, ImbalanceStrategy
from narrate.core.automl.results import ProgressUpdate, TrainResult
from narrate.core.automl.scoring import DEFAULT_METRICS, METRICS, get_metric
from narrate.core.evaluation import evaluate
from narrate.core.narrative.model import describe_model, model_narrative
from narrate.core.text import check_plain_text
from narrate.errors import InvalidInput, NotFound
from narrate.jobs.context import JobCancelled, JobContext
from narrate.jobs.records import create_job
from narrate.services.datasets import Owner, cached_frame, get_version, load_frame
from narrate.storage.sql.tables import DatasetVersion, Evaluation, Model, ModelVersion
from narrate.storage.sql.visibility import visible_dataset, visible_model

__all__ = [
    "FAMILIES",
    "IMBALANCE_STRATEGIES",
    "METRIC_CHOICES",
    "TRAIN_ENTRY",
    "holdout_split_evaluation",
    "input_signature",
    "load_pipeline",
    "model_to_dict",
    "model_version_to_dict",
    "prepare_training",
    "raw_input_pipeline",
    "raw_sample",
    "raw_training_frame",
    "save_model_version",
    "serving_artifact",
    "start_training",
    "start_training_on_version",
    "train_job",
    "visible_model",
]

TRAIN_ENTRY = "narrate.services.training:train_job"

log = logging.getLogger(__name__)
#: What the Train forms offer (re-exported so transports need not reach into core).
IMBALANCE_STRATEGIES: tuple[str, ...] = typing.get_args(ImbalanceStrategy)
METRIC_CHOICES = METRICS
DEFAULT_METRIC_BY_TASK = DEFAULT_METRICS
REFIT_ENTRY = "narrate.services.models:refit_job"


def prepare_training(
    container: Container, owner: Owner, dataset_id: str, options: dict[str, Any]
) -> tuple[Model, str]:
    """Check the request against the data, then create the model row and a queued job.

    Raises:
        InvalidInput: no target, an unusable target, or invalid training options.
    """
    with container.db.session() as s:
        dataset = visible_dataset(s, owner, dataset_id)
        version_id = options.pop("version_id", None) or dataset.current_version_id
        target = options.get("target") or dataset.target
        given = options.pop("name", None)
        name = check_plain_text(str(given), parameter="name") if given else None
        name = name or f"{dataset.name} → {target}"
    if not target:
        raise InvalidInput(
            "Choose the column to predict: send 'target' or set the dataset's target.",
            code="missing_target",
            details={"parameter": "target"},
        )
    try:
        config = TrainConfig.model_validate({**options, "target": target})
    except ValueError as exc:
        raise InvalidInput(
            f"Training options are invalid: {exc}", details={"parameter": "config"}
        ) from exc
    version = get_version(container, owner, version_id or "")
    if version.dataset_id != dataset_id:
        raise NotFound(
            f"Version '{version.id}' does not belong to dataset '{dataset_id}'.",
            details={"parameter": "version_id", "version_id": version.id},
        )
    frame = cached_frame(container, version)
    sample = frame.head(20_000).to_pandas()
    problem = detect_problem(
        sample if frame.height > 20_000 else frame.to_pandas(), target, override=config.task
    )
    get_metric(problem.task, config.metric)  # an unknown metric is refused before any work
    with container.db.session() as s:
        model = Model(
            owner_id=owner.user_id,
            name=name[:200],
            dataset_id=dataset_id,
            target=target,
            task=problem.task,
            metric=config.metric or "",
            status="training",
        )
        s.add(model)
    job_id = create_job(
        container.db,
        owner.user_id,
        "model.train",
        {"model_id": model.id, "version_id": version.id, "config": config.model_dump(mode="json")},
    )
    with container.db.session() as s:
        row = s.get(Model, model.id)
        assert row is not None  # noqa: S101 - inserted just above
        row.job_id = job_id
    return model, job_id


def start_training(
    container: Container, owner: Owner, dataset_id: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Validate and start a training job; returns the model id and job id."""
    if container.executor is None:
        raise InvalidInput("No job executor is running.", code="no_executor")
    model, job_id = prepare_training(container, owner, dataset_id, dict(options))
    container.executor.submit(job_id, TRAIN_ENTRY)
    return {"model_id": model.id, "job_id": job_id, "task": model.task}


def start_training_on_version(
    container: Container, owner: Owner, version_id: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Start training on a dataset version (its dataset is looked up); see start_training."""
    version = get_version(container, owner, version_id)
    return start_training(
        container, owner, version.dataset_id, {**options, "version_id": version.id}
    )


def _recipe_chain(
    container: Container, version: DatasetVersion
) -> tuple[list[Any], DatasetVersion]:
    """Fitted recipes from the root upload to ``version``, and the root version."""
    from narrate.core.recipes import FittedRecipe

    chain: list[Any] = []
    current = version
    while True:
        if current.fitted_recipe_blob:
            chain.insert(
                0,
                FittedRecipe.from_json(
                    container.blobs.get_bytes(current.fitted_recipe_blob).decode()
                ),
            )
        if not current.parent_version_id:
            return chain, current
        with container.db.session() as s:
            parent = s.get(DatasetVersion, current.parent_version_id)
        if parent is None:
            return chain, current
        current = parent


#: Most raw rows an input signature is built from (categories, ranges, an example row).
_SIGNATURE_ROWS = 200_000


def raw_training_frame(container: Container, dataset_version_id: str, target: str) -> pd.DataFrame:
    """The raw rows a model trained on ``dataset_version_id`` receives (the root upload's,
    before any recipe), without the target, up to 200,000 of them."""
    with container.db.session() as s:
        version = s.get(DatasetVersion, dataset_version_id)
        if version is None:
            return pd.DataFrame()
        s.expunge(version)
    _, root = _recipe_chain(container, version)
    rows = load_frame(container, root).head(_SIGNATURE_ROWS).to_pandas()
    return rows.drop(columns=[target], errors="ignore")


def input_signature(container: Container, version: DatasetVersion, target: str) -> dict[str, Any]:
    """The input contract of a model trained on ``version``: its raw columns with types,
    categories and ranges seen in training (see :mod:`narrate.core.signature`)."""
    from narrate.core.signature import build_signature

    frame = raw_training_frame(container, version.id, target)
    return build_signature(frame, [str(c) for c in frame.columns])


def raw_sample(container: Container, version: DatasetVersion, target: str) -> pd.DataFrame:
    """Rows as the saved model receives them (the root upload's, before any recipe)."""
    _, root = _recipe_chain(container, version)
    rows = load_frame(container, root).head(_SAMPLE_ROWS).to_pandas()
    return rows.drop(columns=[target], errors="ignore")


#: Raw rows the serving copy of a model is checked against.
_SAMPLE_ROWS = 300


def raw_input_pipeline(container: Container, version: DatasetVersion, model: Any) -> Any:
    """Prepend the version's fitted recipes so the saved model accepts raw upload rows."""
    from sklearn.pipeline import Pipeline

    from narrate.core.recipes import RecipeTransformer

    chain, root = _recipe_chain(container, version)
    if not chain:
        return model
    raw = load_frame(container, root).head(50).to_pandas()
    steps: list[tuple[str, Any]] = []
    for i, fitted in enumerate(chain):
        transformer = RecipeTransformer(fitted=fitted, for_prediction=True).fit(raw)
        raw = transformer.transform(raw)
        steps.append((f"recipe_{i}", transformer))
    return Pipeline([*steps, ("model", model)])


def _on_progress(ctx: JobContext) -> Any:
    def report(update: ProgressUpdate) -> None:
        data: dict[str, Any] = {
            "trials_done": update.trials_done,
            "best_score": update.best_score,
            "time_left_s": update.time_left_s,
        }
        if update.leaderboard:
            data["leaderboard"] = update.leaderboard[:15]
        _report_kept(ctx, 0.05 + 0.8 * update.fraction, update.message, data=data)

    return report


def _report_kept(
    ctx: JobContext, fraction: float, message: str, data: dict[str, Any] | None = None
) -> None:
    """Report progress without aborting on a cancel request.

    A cancelled training run stops its search at the next trial (``should_stop``) and
    then still evaluates and saves the best model found so far, so progress reports after
    the request must not raise.
    """
    with contextlib.suppress(JobCancelled):
        ctx.progress(fraction, message, data=data)


def train_job(ctx: JobContext) -> dict[str, Any]:
    """Job: run AutoML, evaluate on the holdout, store the model version.

    The time budget covers the whole job: loading the data, the search, and evaluating
    and saving the model (time for those is kept back from the search).
    """
    started = time.monotonic()
    container = Container(ctx.settings, ctx.db, ctx.blobs)
    p = ctx.params
    owner = Owner(ctx.owner_id, True)
    version = get_version(container, owner, p["version_id"])
    ctx.progress(0.01, "Loading the data")
    df = load_frame(container, version).to_pandas()
    config = TrainConfig.model_validate(p["config"])
    try:
        result = train(
            df,
            config,
            progress=_on_progress(ctx),
            should_stop=ctx.is_cancelled,
            budget_started=started,
            keep_after_s=_after_training_s(len(df), config.time_budget_s),
        )
    except Exception as error:
        if ctx.is_cancelled():
            # Cancelled before any candidate finished: there is nothing to keep.
            _set_model_status(container, p["model_id"], "cancelled")
            raise JobCancelled from error
        _set_model_status(container, p["model_id"], "failed")
        raise
    _report_kept(ctx, 0.87, "Evaluating the best model on held-out rows")
    return _store_training(container, ctx, p["model_id"], version, df, result)


def _after_training_s(n_rows: int, budget_s: float) -> float:
    """Seconds evaluating and saving a model takes after training: bootstrap intervals,
    curves and slices over the holdout, then the artifact and its records (measured
    1-2 s for 9,000-row holdouts), within a tenth of the budget."""
    return min(1.5 + n_rows / 20_000, 0.1 * budget_s)


def _set_model_status(container: Container, model_id: str, status: str) -> None:
    with container.db.session() as s:
        m = s.get(Model, model_id)
        if m is not None:
            m.status = status


def _holdout_evaluation(df: pd.DataFrame, result: TrainResult) -> dict[str, Any]:
    known = df[df[result.config.target].notna()].reset_index(drop=True)
    hold = known.iloc[result.holdout_indices]
    sensitive = hold[result.config.sensitive_columns] if result.config.sensitive_columns else None
    return evaluate(
        result.best_pipeline,
        hold.drop(columns=[result.config.target]),
        hold[result.config.target],
        result.problem,
        sensitive=sensitive,
        seed=result.seed,
    )


def _store_training(
    container: Container,
    ctx: JobContext,
    model_id: str,
    version: DatasetVersion,
    df: pd.DataFrame,
    result: TrainResult,
) -> dict[str, Any]:
    evaluation = _holdout_evaluation(df, result)
    summary = result.to_dict()
    narrative = describe_model(summary, evaluation)
    _report_kept(ctx, 0.95, "Saving the model")
    artifact = raw_input_pipeline(container, version, result.deployable)
    mv = save_model_version(
        container,
        model_id,
        version,
        artifact,
        summary,
        evaluation,
        narrative,
        family=str(result.leaderboard[0]["family"]) if result.leaderboard else "unknown",
        params=dict(result.best_spec),
    )
    return {"model_id": model_id, "model_version_id": mv, "partial": result.cancelled}


def save_model_version(
    container: Container,
    model_id: str,
    version: DatasetVersion,
    artifact: Any,
    summary: dict[str, Any],
    evaluation: dict[str, Any],
    narrative: str,
    *,
    family: str,
    params: dict[str, Any],
    parent_id: str | None = None,
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(artifact, Path(tmp) / "model.joblib")
        blob, size = container.blobs.put_file(path), path.stat().st_size
    task = str((summary.get("problem") or {}).get("task") or summary.get("task") or "")
    target = str((summary.get("config") or {}).get("target") or "")
    serving = serving_artifact(container, artifact, raw_sample(container, version, target), task)
    signature = input_signature(container, version, target)
    # The facts behind the narrative's numbers, kept beside it (additive keys) when the
    # narrative is the one describe_model writes for these inputs.
    told = model_narrative(summary, evaluation)
    facts = told["facts"] if told["text"] == narrative else []
    evaluation = {**evaluation, "narrative_facts": facts}
    eval_blob = container.blobs.put_bytes(json.dumps(evaluation, allow_nan=False).encode())
    threshold = (summary.get("threshold") or {}).get("threshold")
    lead = summary.get("leaderboard") or [{}]
    with container.db.session() as s:
        model = s.get(Model, model_id)
        assert model is not None  # noqa: S101 - created before the job started
        number = (
            s.scalar(select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model_id))
            or 0
        ) + 1
        mv = ModelVersion(
            owner_id=model.owner_id,
            model_id=model_id,
            number=number,
            dataset_version_id=version.id,
            parent_version_id=parent_id,
            blob=blob,
            size_bytes=size,
            family=family,
            params=params,
            metrics=evaluation.get("metrics", {}),
            cv_score=lead[0].get("cv_score_mean") if isinstance(lead[0], dict) else None,
            threshold=threshold,
            leaderboard=summary.get("leaderboard", []),
            config=summary.get("config", {}),
            details={
                **{k: v for k, v in summary.items() if k not in {"leaderboard", "config"}},
                "serving": serving,
                "signature": signature,
                "narrative_facts": facts,
            },
            library_versions=summary.get("library_versions", {}),
            seed=int(summary.get("seed", 0)),
            training_seconds=float(summary.get("duration_s", 0.0)),
            narrative=narrative,
        )
        s.add(mv)
        s.flush()
        s.add(
            Evaluation(
                owner_id=model.owner_id,
                model_version_id=mv.id,
                dataset_version_id=version.id,
                kind="holdout",
                blob=eval_blob,
                summary=evaluation.get("metrics", {}),
                narrative=narrative,
                n_rows=int(evaluation.get("n_rows", 0)),
            )
        )
        model.current_version_id = mv.id
        model.metric = str(summary.get("metric", model.metric))
        model.status = "ready"
        return mv.id


def serving_artifact(
    container: Container, artifact: Any, sample: pd.DataFrame, task: str
) -> dict[str, Any]:
    """Store the model in the serving format too, when it translates and agrees.

    Returns what goes into the version's ``details["serving"]``: the blob and its size,
    or why there is no serving copy (the joblib model works either way).
    """
    from narrate.core.automl.export import NotExportable, export_serving
    from narrate.core.serving import FORMAT, VERSION, save_serving

    started = time.monotonic()
    try:
        manifest, arrays = export_serving(artifact, sample, task=task)
    except NotExportable as exc:
        return {"available": False, "reason": str(exc)}
    except Exception as exc:  # the serving copy is optional: the trained model stands
        log.warning("Serving export failed", exc_info=True)
        return {"available": False, "reason": f"the export failed ({type(exc).__name__}: {exc})"}
    with tempfile.TemporaryDirectory() as tmp:
        path = save_serving(manifest, arrays, Path(tmp) / "model.serving")
        blob, size = container.blobs.put_file(path), path.stat().st_size
    return {
        "available": True,
        "format": f"{FORMAT}/{VERSION}",
        "blob": blob,
        "size_bytes": size,
        "export_s": round(time.monotonic() - started, 3),
    }


def load_pipeline(container: Container, model_version: ModelVersion) -> Any:
    """Load a stored model version's fitted pipeline."""
    with tempfile.TemporaryDirectory() as tmp:
        path = container.blobs.copy_to(model_version.blob, Path(tmp) / "model.joblib")
        return load_model(path)


def model_version_to_dict(mv: ModelVersion) -> dict[str, Any]:
    """The API view of a model version."""
    return {
        "id": mv.id,
        "model_id": mv.model_id,
        "number": mv.number,
        "dataset_version_id": mv.dataset_version_id,
        "parent_version_id": mv.parent_version_id,
        "family": mv.family,
        "params": mv.params,
        "metrics": mv.metrics,
        "cv_score": mv.cv_score,
        "threshold": mv.threshold,
        "leaderboard": mv.leaderboard,
        "config": mv.config,
        "details": mv.details,
        "library_versions": mv.library_versions,
        "seed": mv.seed,
        "training_seconds": mv.training_seconds,
        "size_bytes": mv.size_bytes,
        "stage": mv.stage,
        "narrative": mv.narrative,
        "narrative_facts": (mv.details or {}).get("narrative_facts", []),
        "created_at": mv.created_at.isoformat(),
    }


def model_to_dict(m: Model) -> dict[str, Any]:
    """The API view of a model."""
    return {
        "id": m.id,
        "name": m.name,
        "dataset_id": m.dataset_id,
        "target": m.target,
        "task": m.task,
        "metric": m.metric,
        "status": m.status,
        "job_id": m.job_id,
        "current_version_id": m.current_version_id,
        "created_at": m.created_at.isoformat(),
    }


def holdout_split_evaluation(df: pd.DataFrame, config: TrainConfig, trained: Any) -> dict[str, Any]:
    """Refit a trained model's pipeline on a fresh train split of new data and evaluate it
    on the rest (the refit's report; the saved model is fitted on all rows afterwards)."""
    from sklearn.model_selection import train_test_split

    known = df[df[config.target].notna()].reset_index(drop=True)
    problem = detect_problem(known, config.target, override=config.task)
    stratify = known[config.target].astype(str) if problem.task != "regression" else None
    train_rows, hold_rows = train_test_split(
        known, test_size=config.holdout_fraction, random_state=config.seed, stratify=stratify
    )
    fitted = refit_estimator(trained, train_rows, config)
    sensitive = [c for c in config.sensitive_columns if c in hold_rows.columns]
    return evaluate(
        fitted,
        hold_rows.drop(columns=[config.target]),
        hold_rows[config.target],
        problem,
        sensitive=hold_rows[sensitive] if sensitive else None,
        seed=config.seed,
    )
