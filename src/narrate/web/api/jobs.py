"""Job status and cancellation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from narrate.jobs import records
from narrate.web.deps import CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.get("/jobs", summary="List my jobs")
async def list_jobs(principal: CurrentUser, services: Services) -> dict[str, Any]:
    """The caller's jobs, newest first (all jobs for admins)."""
    owner = None if principal.is_admin else principal.user_id
    rows = records.list_jobs(services.db, owner_id=owner)
    return {"items": [records.job_to_dict(services.db, j, with_events=False) for j in rows]}


@router.get("/jobs/{job_id}", summary="A job's status, progress, events and result")
async def get_job(job_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Status, progress 0-1 with a message, events, the result or the error."""
    owner = None if principal.is_admin else principal.user_id
    return records.job_to_dict(services.db, records.get_job(services.db, job_id, owner_id=owner))


@router.post("/jobs/{job_id}/cancel", status_code=202, summary="Cancel a job")
async def cancel_job(job_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Cancel a queued job now, or ask a running one to stop at its next check."""
    owner = None if principal.is_admin else principal.user_id
    job = records.request_cancel(services.db, job_id, owner_id=owner)
    return records.job_to_dict(services.db, job, with_events=False)
