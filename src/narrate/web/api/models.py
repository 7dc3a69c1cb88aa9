"""Train and Evaluate: start AutoML jobs, read the registry, evaluate, refit, compare."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from narrate.errors import InvalidInput
from narrate.services import models as registry
from narrate.services import training
from narrate.services.datasets import Owner
from narrate.web.deps import AnalystUser, CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["models"])


class TrainIn(BaseModel):
    """A training request; everything but the dataset is optional."""

    model_config = ConfigDict(extra="allow")

    dataset_id: str
    version_id: str | None = None
    target: str | None = None
    name: str | None = Field(default=None, max_length=200)
    time_budget_s: float = Field(default=60, gt=0, le=24 * 3600)


class TrainOnVersionIn(BaseModel):
    """A training request on one dataset version; ``options`` are further settings."""

    model_config = ConfigDict(extra="forbid")

    version_id: str
    target: str | None = None
    time_budget_s: float = Field(default=60, gt=0, le=24 * 3600)
    task: Literal["binary", "multiclass", "regression"] | None = None
    metric: str | None = None
    name: str | None = Field(default=None, max_length=200)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="max_trials, seed, cv, group_column, time_column, n_folds, cv_repeats, "
        "families, imbalance, feature_selection, ensembles, threshold, sensitive_columns.",
    )


class EvaluateIn(BaseModel):
    """A labelled dataset version to evaluate a model on."""

    version_id: str


class RefitIn(BaseModel):
    """Refit on a newer version (default: the dataset's current one)."""

    version_id: str | None = None


class CompareIn(BaseModel):
    """Two or more model versions."""

    model_version_ids: list[str] = Field(min_length=2)


@router.post("/models", status_code=202, summary="Train a model (AutoML job)")
async def train(body: TrainIn, principal: AnalystUser, services: Services) -> dict[str, Any]:
    """Detect the problem, then search models within the time budget as a job.

    Extra fields are passed to the training configuration: task, metric, max_trials, seed,
    cv, group_column, time_column, n_folds, cv_repeats, families, imbalance, feature_selection,
    ensembles, threshold, sensitive_columns.
    """
    options = body.model_dump(exclude={"dataset_id"}, exclude_none=True)
    out = await run_in_threadpool(
        training.start_training, services, Owner.of(principal), body.dataset_id, options
    )
    return {**out, "status_url": f"/api/v1/models/{out['model_id']}"}


@router.post("/models/train", status_code=202, summary="Train a model on a dataset version")
async def train_on_version(
    body: TrainOnVersionIn, principal: AnalystUser, services: Services
) -> dict[str, Any]:
    """The same AutoML job as ``POST /models``, addressed by dataset version.

    Returns the model id and the job id; follow the job at ``/api/v1/jobs/{job_id}``.
    """
    clashes = sorted(set(body.options) & (set(TrainOnVersionIn.model_fields) - {"options"}))
    if clashes:
        raise InvalidInput(
            "Give " + ", ".join(f"'{k}'" for k in clashes) + " at the top level, not in 'options'.",
            details={"parameter": "options", "keys": clashes},
        )
    options = {
        **body.options,
        **body.model_dump(exclude={"version_id", "options"}, exclude_none=True),
    }
    out = await run_in_threadpool(
        training.start_training_on_version,
        services,
        Owner.of(principal),
        body.version_id,
        options,
    )
    return {
        **out,
        "status_url": f"/api/v1/models/{out['model_id']}",
        "job_url": f"/api/v1/jobs/{out['job_id']}",
    }


@router.get("/models", summary="The model registry")
def list_models(principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Models with their current version's metrics."""
    return {"items": registry.list_models(services, Owner.of(principal))}


@router.get("/models/{model_id}", summary="A model, its versions and live training status")
def get_model(model_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """While training, ``training.leaderboard`` fills in as candidates finish."""
    return registry.get_model(services, Owner.of(principal), model_id)


@router.delete("/models/{model_id}", status_code=204, summary="Delete a model (restorable)")
def delete_model(model_id: str, principal: AnalystUser, services: Services) -> None:
    """Soft-delete: the model, its versions, evaluations and downloads answer 404 until
    restored."""
    registry.delete_model(services, Owner.of(principal), model_id)


@router.post("/models/{model_id}/restore", summary="Undo a model's delete")
def restore_model(model_id: str, principal: AnalystUser, services: Services) -> dict[str, Any]:
    """Bring a deleted model back."""
    return registry.restore_model(services, Owner.of(principal), model_id)


@router.get("/models/{model_id}/leaderboard", summary="The leaderboard, live while training")
def leaderboard(model_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Candidates ranked by cross-validated score; ``live`` while the job still runs."""
    return registry.get_leaderboard(services, Owner.of(principal), model_id)


@router.get("/models/{model_id}/evaluation", summary="The current version's evaluation")
def current_evaluation(model_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Holdout metrics with intervals, curves, confusion matrix, slices, fairness and
    narrative of the model's current version (404 until training has finished)."""
    return registry.get_current_evaluation(services, Owner.of(principal), model_id)


@router.get("/model-versions/{mv_id}", summary="A model version with its evaluation")
def get_model_version(mv_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Metrics with intervals, curves, confusion matrix, slices, fairness, narrative."""
    return registry.get_model_version(services, Owner.of(principal), mv_id)


@router.post("/models/{model_id}/evaluations", status_code=201, summary="Evaluate on a version")
async def evaluate(
    model_id: str, body: EvaluateIn, principal: AnalystUser, services: Services
) -> dict[str, Any]:
    """Evaluate the current model version on any labelled dataset version."""
    return await run_in_threadpool(
        registry.evaluate_on_version, services, Owner.of(principal), model_id, body.version_id
    )


@router.get("/model-versions/{mv_id}/evaluations", summary="Stored evaluations")
def evaluations(mv_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Holdout and external evaluations of a model version."""
    return {"items": registry.list_evaluations(services, Owner.of(principal), mv_id)}


@router.get("/evaluations/{evaluation_id}", summary="One stored evaluation in full")
def get_evaluation(evaluation_id: str, principal: CurrentUser, services: Services) -> Any:
    """Metrics with intervals, curves, confusion matrix, slices, fairness and narrative."""
    return registry.get_evaluation(services, Owner.of(principal), evaluation_id)


@router.post("/models/{model_id}/refit", status_code=202, summary="Refit without a search")
def refit(model_id: str, body: RefitIn, principal: AnalystUser, services: Services) -> Any:
    """Retrain the chosen pipeline with its hyperparameters on a newer version (job)."""
    return registry.start_refit(services, Owner.of(principal), model_id, body.version_id)


@router.post("/models/compare", summary="Compare model versions side by side")
async def compare(body: CompareIn, principal: CurrentUser, services: Services) -> Any:
    """Holdout metrics of two or more model versions."""
    return await run_in_threadpool(
        registry.compare, services, Owner.of(principal), body.model_version_ids
    )


@router.get("/model-versions/{mv_id}/artifact", summary="Download the saved model")
async def artifact(
    mv_id: str,
    principal: CurrentUser,
    services: Services,
    format: Literal["joblib", "serving"] = "serving",
) -> Response:
    """The saved model: ``serving`` loads in a fresh process without scikit-learn
    (``narrate.core.serving.load_serving``); ``joblib`` is the fitted scikit-learn
    pipeline (``narrate.core.automl.load_model``). Both take raw rows."""
    data, name = await run_in_threadpool(
        registry.model_artifact, services, Owner.of(principal), mv_id, format
    )
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get("/model-versions/{mv_id}/card", summary="Download the model card")
async def card(
    mv_id: str,
    principal: CurrentUser,
    services: Services,
    format: Literal["html", "md"] = "html",
) -> Response:
    """The document a reviewer signs off: data, setup, leaderboard, metrics, caveats."""
    text = await run_in_threadpool(
        registry.model_card, services, Owner.of(principal), mv_id, format
    )
    headers = {"Content-Disposition": f'attachment; filename="model-card-{mv_id}.{format}"'}
    if format == "md":
        return PlainTextResponse(text, media_type="text/markdown", headers=headers)
    return HTMLResponse(text, headers=headers)
