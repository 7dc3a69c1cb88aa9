"""Job rows: create, read, progress, cancel and restart recovery."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from narrate.errors import InvalidState
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import Job, JobEvent, utcnow
from narrate.storage.sql.visibility import SYSTEM, Owner, visible_filter, visible_job

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "STALE_AFTER_S",
    "TERMINAL",
    "create_job",
    "finish_job",
    "get_job",
    "job_to_dict",
    "list_jobs",
    "record_progress",
    "recover_interrupted",
    "request_cancel",
    "start_job",
    "touch_heartbeats",
]

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
HEARTBEAT_INTERVAL_S = 10.0
"""How often the process that owns a queued or running job writes its heartbeat."""
STALE_AFTER_S = 6 * HEARTBEAT_INTERVAL_S
"""A job whose heartbeat is older than this has lost the process that owned it."""


def create_job(db: Database, owner_id: str, kind: str, params: dict[str, Any]) -> str:
    """Insert a queued job and return its id."""
    with db.session() as s:
        # The creator is alive now; until an executor takes over, this is its heartbeat.
        job = Job(
            owner_id=owner_id,
            kind=kind,
            params=params,
            status="queued",
            message="Queued",
            heartbeat_at=utcnow(),
        )
        s.add(job)
        s.flush()
        s.add(JobEvent(job_id=job.id, message="Queued", progress=0.0))
        return job.id


def get_job(db: Database, job_id: str, *, owner_id: str | None = None) -> Job:
    """Return a job by the one visibility rule (:mod:`narrate.storage.sql.visibility`).

    Args:
        db: The metadata database.
        job_id: The job's id.
        owner_id: The caller; None for an admin or the application itself.

    Returns:
        The job row.

    Raises:
        NotFound: no such job, another user's job, or a deleted one.
    """
    viewer = Owner(owner_id) if owner_id else SYSTEM
    with db.session() as s:
        return visible_job(s, viewer, job_id)


def list_jobs(db: Database, *, owner_id: str | None, limit: int = 50) -> list[Job]:
    """Newest jobs first, only the owner's unless ``owner_id`` is None."""
    with db.session() as s:
        viewer = Owner(owner_id) if owner_id else SYSTEM
        q = select(Job).where(visible_filter(Job, viewer)).order_by(Job.created_at.desc())
        return list(s.scalars(q.limit(limit)))


def job_events(db: Database, job_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """A job's history, oldest first."""
    with db.session() as s:
        rows = s.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id).limit(limit)
        )
        return [
            {
                "at": e.at.isoformat(),
                "level": e.level,
                "message": e.message,
                "progress": e.progress,
                "data": e.data,
            }
            for e in rows
        ]


def job_to_dict(db: Database, job: Job, *, with_events: bool = True) -> dict[str, Any]:
    """The API view of a job."""
    out: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 4),
        "message": job.message,
        "params": job.params,
        "result": job.result,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if with_events:
        out["events"] = job_events(db, job.id)
    return out


def start_job(db: Database, job_id: str) -> bool:
    """Mark a queued job running; False when it was cancelled before it started."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != "queued":
            return False
        if job.cancel_requested:
            job.status, job.message, job.finished_at = "cancelled", "Cancelled", utcnow()
            return False
        job.status, job.started_at, job.heartbeat_at = "running", utcnow(), utcnow()
        job.message = "Started"
        s.add(JobEvent(job_id=job_id, message="Started", progress=0.0))
        return True


def record_progress(
    db: Database, job_id: str, fraction: float, message: str, data: dict[str, Any] | None = None
) -> bool:
    """Store progress and a heartbeat; return whether the job should stop.

    It should stop when cancellation was requested, or when the job already ended, for
    example because it was marked interrupted while its process was unresponsive.
    """
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status in TERMINAL:
            return True
        job.progress = max(0.0, min(1.0, fraction))
        job.message = message
        job.heartbeat_at = utcnow()
        s.add(JobEvent(job_id=job_id, message=message, progress=job.progress, data=data))
        return job.cancel_requested


def finish_job(
    db: Database,
    job_id: str,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    message: str = "",
) -> None:
    """Record a job's outcome (succeeded, failed or cancelled)."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status in TERMINAL:
            return
        job.status, job.result, job.error = status, result, error
        job.finished_at = utcnow()
        if status == "succeeded":
            job.progress = 1.0
        job.message = message or status.capitalize()
        level = "error" if status == "failed" else "info"
        s.add(JobEvent(job_id=job_id, level=level, message=job.message, progress=job.progress))


def request_cancel(db: Database, job_id: str, *, owner_id: str | None) -> Job:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next check.

    Raises:
        InvalidState: the job already finished.
    """
    job = get_job(db, job_id, owner_id=owner_id)
    with db.session() as s:
        row = s.get(Job, job.id)
        assert row is not None  # noqa: S101 - just read above
        if row.status in TERMINAL:
            raise InvalidState(
                f"Job {job_id} already {row.status}; there is nothing to cancel.",
                code="job_finished",
            )
        row.cancel_requested = True
        if row.status == "queued":
            row.status, row.finished_at, row.message = "cancelled", utcnow(), "Cancelled"
        s.add(JobEvent(job_id=job_id, message="Cancel requested", progress=row.progress))
        s.flush()
        return row


def touch_heartbeats(db: Database, job_ids: Iterable[str]) -> int:
    """Record that the jobs' owning process is alive; return how many rows were touched."""
    ids = list(job_ids)
    if not ids:
        return 0
    with db.session() as s:
        result = s.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.status.in_(("queued", "running")))
            .values(heartbeat_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0) or 0)


def recover_interrupted(
    db: Database, *, stale_after_s: float = STALE_AFTER_S, now: datetime | None = None
) -> int:
    """Mark queued or running jobs whose owner stopped beating as failed; return how many.

    A job is abandoned when its heartbeat is missing or older than ``stale_after_s``: the
    server or CLI process that ran it has gone (a restart, a crash, a killed terminal). Jobs
    with a fresh heartbeat belong to a live process, such as a ``narrate train`` running
    beside the server, and are left alone.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    with db.session() as s:
        rows = list(
            s.scalars(
                select(Job).where(
                    Job.status.in_(("queued", "running")),
                    Job.heartbeat_at.is_(None) | (Job.heartbeat_at < cutoff),
                )
            )
        )
        for job in rows:
            seen = job.heartbeat_at
            silent = f"for {(now - seen).total_seconds():.0f} s" if seen else "ever"
            was = job.status
            job.status, job.finished_at = "failed", now
            job.message = "Interrupted: the process running it stopped (e.g. a server restart)"
            job.error = {
                "code": "interrupted",
                "message": f"This job was {was}, but the process running it has sent no "
                f"heartbeat {silent} (it stopped, for example when the server restarted). "
                "Start the job again.",
                "details": {
                    "was": was,
                    "heartbeat_at": seen.isoformat() if seen else None,
                    "stale_after_s": stale_after_s,
                },
            }
            s.add(JobEvent(job_id=job.id, level="error", message=job.message))
        return len(rows)
