"""Monitor: cron schedules of batch scoring, drift checks and retraining; their runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from narrate.services import schedule_runs as runs_svc
from narrate.services import schedules as svc
from narrate.storage.sql.visibility import Owner
from narrate.web.api.contract import Page, errors, next_url
from narrate.web.deps import AnalystUser, CurrentUser, Offset, Services

__all__ = ["router"]

router = APIRouter(tags=["monitor"])

Kind = Literal["batch", "drift", "retrain"]
RunStatus = Literal["pending", "starting", "running", "closing", "succeeded", "failed", "missed"]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1 to 500).")]
Grace = Annotated[int, Field(ge=0, le=7 * 86_400)]
Retries = Annotated[int, Field(ge=0, le=10)]
Backoff = Annotated[int, Field(ge=1, le=86_400)]


class ActionIn(BaseModel):
    """What a schedule does when it fires."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="batch, drift or retrain.")
    deployment: str = Field(min_length=1, max_length=64, description="The deployment's name.")
    version_id: str | None = Field(
        default=None,
        max_length=64,
        description="batch: the dataset version to score (or give path).",
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        description="batch: an s3://bucket/key object to score instead of a dataset version "
        "(read with the server's NARRATE_S3_* settings).",
    )
    window: str | None = Field(
        default=None, max_length=16, description="drift: the traffic window, like '7d' (default)."
    )
    policy: Literal["refit", "search"] | None = Field(
        default=None, description="retrain: refit the deployed pipeline (default) or search."
    )
    auto_promote: bool | None = Field(
        default=None,
        description="retrain: promote when the challenger wins by margin (default: wait for "
        "a person's decision).",
    )
    margin: float | None = Field(
        default=None, ge=0, le=1000, description="retrain: the margin auto-promote needs."
    )
    budget_s: float | None = Field(
        default=None, ge=1, le=86_400, description="retrain: time budget of a search."
    )


class ActionOut(BaseModel):
    """An action as stored."""

    kind: Kind
    deployment: str
    version_id: str | None = None
    path: str | None = None
    window: str | None = None
    policy: Literal["refit", "search"] | None = None
    auto_promote: bool | None = None
    margin: float | None = None
    budget_s: float | None = None


class ScheduleIn(BaseModel):
    """A new schedule."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    cron: str = Field(
        min_length=1,
        max_length=svc.MAX_CRON_CHARS,
        description="Five fields: minute hour day-of-month month day-of-week ('0 6 * * *').",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone of cron.")
    action: ActionIn
    enabled: bool = True
    misfire_grace_s: Grace = Field(
        default=3600, description="A run missed while no server ran is made up within this."
    )
    max_retries: Retries = Field(default=2, description="Retries of a failed run.")
    retry_backoff_s: Backoff = Field(
        default=60, description="Wait before the first retry; each further wait doubles."
    )


class SchedulePatch(BaseModel):
    """Changes to a schedule; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    cron: str | None = Field(default=None, min_length=1, max_length=svc.MAX_CRON_CHARS)
    timezone: str | None = Field(default=None, max_length=64)
    action: ActionIn | None = None
    enabled: bool | None = None
    misfire_grace_s: Grace | None = None
    max_retries: Retries | None = None
    retry_backoff_s: Backoff | None = None


class ScheduleOut(BaseModel):
    """A schedule."""

    schedule_id: str
    name: str
    cron: str
    timezone: str
    action: ActionOut
    enabled: bool
    paused: bool
    misfire_grace_s: int
    max_retries: int
    retry_backoff_s: int
    next_run_at: datetime | None
    last_run_at: datetime | None = Field(description="The last fire time that came due.")
    owner_id: str
    created_at: datetime


class RunOut(BaseModel):
    """One attempt of a schedule's action."""

    run_id: str
    schedule_id: str
    trigger: Literal["cron", "manual", "retry"]
    scheduled_for: datetime
    attempt: int
    status: RunStatus
    job_id: str | None
    job_status: str | None
    status_url: str | None = Field(description="Follow the job here (GET /api/v1/jobs/{id}).")
    retry_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None
    message: str = Field(description="What happened, in plain language (the run's log).")


def _action(body: ActionIn | None) -> dict[str, Any] | None:
    return None if body is None else body.model_dump(exclude_none=True)


@router.post(
    "/schedules",
    status_code=201,
    summary="Create a schedule",
    response_model=ScheduleOut,
    responses=errors(401, 403, 422),
)
async def create(body: ScheduleIn, principal: AnalystUser, services: Services) -> Any:
    """A bad cron or time zone, an unknown deployment or dataset version, or a bad action
    answer 422 naming the field (``cron``, ``timezone``, ``action.deployment`` ...)."""
    spec = {**body.model_dump(), "action": _action(body.action)}
    return await run_in_threadpool(svc.create_schedule, services, Owner.of(principal), spec)


@router.get(
    "/schedules",
    summary="Schedules",
    response_model=Page[ScheduleOut],
    responses=errors(401, 422),
)
async def list_schedules(
    principal: CurrentUser,
    services: Services,
    deployment: Annotated[str | None, Query(max_length=64)] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> Any:
    """The caller's schedules (an admin's: everyone's), newest first."""
    items, total = await run_in_threadpool(
        lambda: svc.list_schedules(
            services, Owner.of(principal), deployment=deployment, offset=offset, limit=limit
        )
    )
    nxt = next_url("/api/v1/schedules", offset, limit, total, deployment=deployment)
    return {"items": items, "total": total, "next": nxt}


@router.get(
    "/schedules/{schedule_id}",
    summary="A schedule",
    response_model=ScheduleOut,
    responses=errors(401, 404),
)
async def get_schedule(schedule_id: str, principal: CurrentUser, services: Services) -> Any:
    """With its next fire time (UTC)."""
    return await run_in_threadpool(svc.get_schedule, services, Owner.of(principal), schedule_id)


@router.patch(
    "/schedules/{schedule_id}",
    summary="Change a schedule",
    response_model=ScheduleOut,
    responses=errors(401, 403, 404, 422),
)
async def update(
    schedule_id: str, body: SchedulePatch, principal: AnalystUser, services: Services
) -> Any:
    """A new cron or time zone recomputes the next fire time from now."""
    changes = body.model_dump(exclude_unset=True)
    if "action" in changes:
        changes["action"] = _action(body.action)
    return await run_in_threadpool(
        svc.update_schedule, services, Owner.of(principal), schedule_id, changes
    )


@router.delete(
    "/schedules/{schedule_id}",
    status_code=204,
    summary="Delete a schedule",
    responses=errors(401, 403, 404),
)
async def delete(schedule_id: str, principal: AnalystUser, services: Services) -> Response:
    """It stops firing; its runs stay readable in the database."""
    await run_in_threadpool(svc.delete_schedule, services, Owner.of(principal), schedule_id)
    return Response(status_code=204)


@router.post(
    "/schedules/{schedule_id}/pause",
    summary="Pause a schedule",
    response_model=ScheduleOut,
    responses=errors(401, 403, 404),
)
async def pause(schedule_id: str, principal: AnalystUser, services: Services) -> Any:
    """It stops firing until resumed (``run`` still works)."""
    return await run_in_threadpool(
        svc.set_enabled, services, Owner.of(principal), schedule_id, False
    )


@router.post(
    "/schedules/{schedule_id}/resume",
    summary="Resume a schedule",
    response_model=ScheduleOut,
    responses=errors(401, 403, 404),
)
async def resume(schedule_id: str, principal: AnalystUser, services: Services) -> Any:
    """It fires next at the next cron time from now; times passed while paused are not
    made up."""
    return await run_in_threadpool(
        svc.set_enabled, services, Owner.of(principal), schedule_id, True
    )


@router.post(
    "/schedules/{schedule_id}/run",
    status_code=202,
    summary="Run a schedule's action now",
    response_model=RunOut,
    responses=errors(401, 403, 404),
)
async def run(schedule_id: str, principal: AnalystUser, services: Services) -> Any:
    """Starts the action's job at once (paused schedules too) and answers the run:
    ``running`` with its ``job_id``, or ``failed`` with the reason when it could not
    start (a retry follows while retries are left)."""
    return await run_in_threadpool(runs_svc.run_now, services, Owner.of(principal), schedule_id)


@router.get(
    "/schedules/{schedule_id}/runs",
    summary="A schedule's runs",
    response_model=Page[RunOut],
    responses=errors(401, 404, 422),
)
async def list_runs(
    schedule_id: str,
    principal: CurrentUser,
    services: Services,
    offset: Offset = 0,
    limit: Limit = 50,
) -> Any:
    """Newest first; each with its job's id and status and what happened."""
    items, total = await run_in_threadpool(
        lambda: svc.list_runs(
            services, Owner.of(principal), schedule_id, offset=offset, limit=limit
        )
    )
    nxt = next_url(f"/api/v1/schedules/{schedule_id}/runs", offset, limit, total)
    return {"items": items, "total": total, "next": nxt}
