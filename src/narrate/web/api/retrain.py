"""Monitor: the retraining loop over HTTP — start a run, read runs, promote or reject."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from narrate.errors import StorageUnavailable
from narrate.services import predict as serving
from narrate.services import retrain as svc
from narrate.storage.sql.visibility import Owner
from narrate.web.api.contract import JobStarted, Page, errors, next_url
from narrate.web.deps import AnalystUser, CurrentUser, Offset, Services

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["monitor"])

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1 to 500).")]
Status = Literal[
    "queued", "running", "awaiting_decision", "promoting", "promoted", "rejected", "failed"
]


class RetrainIn(BaseModel):
    """How to retrain; everything is optional."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["refit", "search"] = Field(
        default="refit",
        description="refit: the deployed pipeline with its tuned settings on newer data; "
        "search: rerun AutoML with the original options.",
    )
    auto_promote: bool = Field(
        default=False,
        description="Decide at once: promote when the challenger wins by the margin, else "
        "reject. Default: a person decides.",
    )
    margin: float = Field(
        default=0.01,
        ge=0,
        le=svc.MAX_MARGIN,
        description="How much better (absolute, on the primary metric) the challenger must be.",
    )
    budget_s: float | None = Field(
        default=None,
        ge=1,
        le=svc.MAX_BUDGET_S,
        description="Time budget of a search in seconds (default: the champion's).",
    )
    alert_id: str | None = Field(
        default=None,
        max_length=32,
        description="Start the run for this drift or performance alert (trigger = its kind).",
    )


class DecisionIn(BaseModel):
    """Why (optional, recorded with the decision)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class WindowOut(BaseModel):
    """When the evaluation window's first and last labelled cases were answered."""

    start: datetime | None
    end: datetime | None


class SideOut(BaseModel):
    """One model's scores on the evaluation window, with 95% intervals."""

    model_version_id: str
    metrics: dict[str, float]
    intervals: dict[str, list[float]]


class MetricsOut(BaseModel):
    """Champion and challenger on the same rows."""

    champion: SideOut
    challenger: SideOut


class FactOut(BaseModel):
    """A number the narrative uses, and where in the run it comes from."""

    name: str
    value: float
    source: str


class NarrativeOut(BaseModel):
    """The run in plain words; every number in ``text`` is one of ``facts``."""

    text: str
    facts: list[FactOut]


class RetrainRunOut(BaseModel):
    """A retrain run."""

    retrain_run_id: str
    deployment: str
    status: Status
    trigger: Literal["drift", "performance", "schedule", "manual"]
    trigger_ref: str | None
    policy: Literal["refit", "search"]
    budget_s: float | None
    auto_promote: bool
    margin: float
    job_id: str | None
    champion_version_id: str
    challenger_version_id: str | None
    dataset_version_id: str | None = Field(
        description="The training data of the challenger (a new version, lineage kept)."
    )
    window: WindowOut
    n_train_rows: int | None = Field(description="Logged labelled rows added to training.")
    n_eval_rows: int | None
    metric: str | None = Field(description="The primary metric the decision is on.")
    metrics: MetricsOut | None
    decision: Literal["promote", "reject"] | None
    decided_by: str | None = Field(description="A user id, or 'auto'.")
    decided_at: datetime | None
    reason: str | None
    narrative: NarrativeOut | None
    error: str | None
    created_at: datetime
    owner_id: str


def _flush_log(services: Services) -> None:
    sink = services.extras.get("prediction_log")
    if sink is None:
        return
    try:
        sink.flush()
    except StorageUnavailable as exc:
        log.warning("could not flush the prediction log before a retrain run: %s", exc.message)


@router.post(
    "/deployments/{name}/retrain",
    status_code=202,
    summary="Retrain a deployment's model on its newest labelled data (job)",
    response_model=JobStarted,
    responses=errors(401, 403, 404, 409, 422),
)
async def start(name: str, body: RetrainIn, principal: AnalystUser, services: Services) -> Any:
    """Queue a retrain run; ``created_id`` is the run. 409 ``too_few_labels`` when fewer
    logged predictions have an actual than the evaluation window needs, 409
    ``retrain_running`` while another run of the deployment is under way."""
    options: dict[str, Any] = {
        "policy": body.policy,
        "auto_promote": body.auto_promote,
        "margin": body.margin,
        "budget_s": body.budget_s,
    }
    owner = Owner.of(principal)
    # Predictions still buffered count as labelled once written: write them first.
    await run_in_threadpool(_flush_log, services)
    if body.alert_id is not None:
        await run_in_threadpool(svc.check_alert, services, owner, body.alert_id, name)
        return await run_in_threadpool(
            lambda: svc.retrain_on_alert(services, body.alert_id or "", **options)
        )
    return await run_in_threadpool(lambda: svc.start_retrain(services, owner, name, **options))


@router.get(
    "/deployments/{name}/retrain-runs",
    summary="A deployment's retrain runs",
    response_model=Page[RetrainRunOut],
    responses=errors(401, 404, 422),
)
async def history(
    name: str, principal: CurrentUser, services: Services, offset: Offset = 0, limit: Limit = 50
) -> Any:
    """Newest first."""
    items, total = await run_in_threadpool(
        lambda: svc.list_runs(services, Owner.of(principal), name, offset=offset, limit=limit)
    )
    path = f"/api/v1/deployments/{name}/retrain-runs"
    return {"items": items, "total": total, "next": next_url(path, offset, limit, total)}


@router.get(
    "/retrain-runs/{run_id}",
    summary="A retrain run",
    response_model=RetrainRunOut,
    responses=errors(401, 404),
)
async def get(run_id: str, principal: CurrentUser, services: Services) -> Any:
    """Its status; once scored, champion vs challenger on the window and the narrative."""
    return await run_in_threadpool(svc.get_run, services, Owner.of(principal), run_id)


async def _decide(
    services: Services, principal: Any, run_id: str, decision: str, body: DecisionIn | None
) -> Any:
    out = await run_in_threadpool(
        lambda: svc.decide(
            services,
            Owner.of(principal),
            run_id,
            decision,
            reason=body.reason if body is not None else None,
        )
    )
    if decision == "promote":
        await run_in_threadpool(serving.runtime_cache(services).refresh, out["deployment"])
    return out


@router.post(
    "/retrain-runs/{run_id}/promote",
    summary="Deploy the challenger (a new revision; roll back to undo)",
    response_model=RetrainRunOut,
    responses=errors(401, 403, 404, 409, 422),
)
async def promote(
    run_id: str, principal: AnalystUser, services: Services, body: DecisionIn | None = None
) -> Any:
    """409 ``retrain_not_awaiting`` unless the run awaits a decision."""
    return await _decide(services, principal, run_id, "promote", body)


@router.post(
    "/retrain-runs/{run_id}/reject",
    summary="Keep the champion",
    response_model=RetrainRunOut,
    responses=errors(401, 403, 404, 409, 422),
)
async def reject(
    run_id: str, principal: AnalystUser, services: Services, body: DecisionIn | None = None
) -> Any:
    """409 ``retrain_not_awaiting`` unless the run awaits a decision."""
    return await _decide(services, principal, run_id, "reject", body)
