"""Schedules: cron definitions of batch, drift and retrain actions on a deployment.

The definitions live in the ``schedules`` table, the one source of truth. Fire times come
from APScheduler's ``CronTrigger.from_crontab(cron, timezone=...)``; the one leading
scheduler (:mod:`narrate.services.scheduler`) fires due schedules through
:mod:`narrate.services.schedule_runs`. Visibility: a schedule is its owner's (admins see
all); a schedule whose deployment is undeployed is hidden with it.

Actions (``action``):

- ``{"kind": "batch", "deployment": name, "version_id": id}``: score a dataset version;
  or ``"path": "s3://bucket/key"``: score that object (:mod:`narrate.services.schedule_inputs`).
- ``{"kind": "drift", "deployment": name, "window": "7d"}``: a drift report on the window.
- ``{"kind": "retrain", "deployment": name, "policy"?, "auto_promote"?, "margin"?,
  "budget_s"?}``: a run of the retraining loop (``trigger: "schedule"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrate.bootstrap import Container
from narrate.errors import InvalidInput, NotFound
from narrate.services.schedule_actions import ACTION_KINDS, check_action
from narrate.storage.sql.tables import Deployment, Schedule, ScheduleRun, utcnow
from narrate.storage.sql.visibility import Owner

__all__ = [
    "ACTION_KINDS",
    "MAX_CRON_CHARS",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_runs",
    "list_schedules",
    "next_fire_time",
    "parse_cron",
    "run_to_dict",
    "schedule_to_dict",
    "set_enabled",
    "update_schedule",
    "visible_schedule",
]

MAX_CRON_CHARS = 120
_CRON_HINT = (
    "Use five fields, minute hour day-of-month month day-of-week, like '0 6 * * *' "
    "(06:00 every day) or '*/15 * * * 1-5' (every 15 minutes on weekdays)."
)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"timezone '{timezone}' is not a time zone Narrate knows.",
            code="invalid_timezone",
            hint="Use an IANA name such as 'UTC', 'Europe/Paris' or 'America/New_York'.",
            details={"parameter": "timezone", "value": timezone},
        ) from exc


def parse_cron(cron: str, timezone: str = "UTC") -> CronTrigger:
    """Read a five-field cron expression in a time zone.

    Raises:
        InvalidInput: ``invalid_cron`` naming ``cron`` and what is wrong with it (too
            long, wrong number of fields, a value out of range, or a date that never
            comes), ``invalid_timezone`` naming ``timezone``.
    """
    zone = _zone(timezone)
    details = {"parameter": "cron", "value": cron[:MAX_CRON_CHARS]}
    if len(cron) > MAX_CRON_CHARS:
        raise InvalidInput(
            f"cron is {len(cron)} characters long; at most {MAX_CRON_CHARS} are accepted.",
            code="invalid_cron",
            hint=_CRON_HINT,
            details=details,
        )
    try:
        trigger = CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise InvalidInput(
            f"cron '{cron}' is not a cron expression Narrate reads: {exc}.",
            code="invalid_cron",
            hint=_CRON_HINT,
            details=details,
        ) from exc
    if trigger.get_next_fire_time(None, utcnow()) is None:
        raise InvalidInput(
            f"cron '{cron}' never fires (no such date comes).",
            code="invalid_cron",
            hint=_CRON_HINT,
            details=details,
        )
    return trigger


def next_fire_time(cron: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``, in UTC (None: it never fires again)."""
    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    # CronTrigger answers a time >= now at whole seconds; ask from the next second on.
    from datetime import UTC, timedelta

    start = after.replace(microsecond=0) + timedelta(seconds=1)
    fire = trigger.get_next_fire_time(None, start)
    return fire.astimezone(UTC) if fire is not None else None


# --- records ------------------------------------------------------------------------------


def visible_schedule(s: Session, owner: Owner, schedule_id: str) -> Schedule:
    """A schedule the caller may see.

    Raises:
        NotFound: no such schedule for the caller, it is deleted, or its deployment is.
    """
    row = s.get(Schedule, schedule_id) if schedule_id else None
    if row is None or not (owner.is_admin or row.owner_id == owner.user_id):
        raise NotFound(
            f"No schedule with id '{schedule_id}'.", details={"schedule_id": schedule_id}
        )
    if row.deleted_at is not None:
        raise NotFound(
            f"Schedule '{schedule_id}' is deleted.", details={"schedule_id": schedule_id}
        )
    deployment = s.get(Deployment, row.deployment_id) if row.deployment_id else None
    if deployment is not None and deployment.deleted_at is not None:
        raise NotFound(
            f"Schedule '{schedule_id}' belongs to deployment '{deployment.name}', which is "
            "undeployed.",
            hint=f"Restore it first: POST /api/v1/deployments/{deployment.name}/restore.",
            details={"schedule_id": schedule_id, "deployment": deployment.name},
        )
    return row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def schedule_to_dict(row: Schedule) -> dict[str, Any]:
    """The API view of a schedule."""
    return {
        "schedule_id": row.id,
        "name": row.name,
        "cron": row.cron,
        "timezone": row.timezone,
        "action": row.action,
        "enabled": row.enabled,
        "paused": not row.enabled,
        "misfire_grace_s": row.misfire_grace_s,
        "max_retries": row.max_retries,
        "retry_backoff_s": row.retry_backoff_s,
        "next_run_at": _iso(row.next_run_at),
        "last_run_at": _iso(row.last_run_at),
        "owner_id": row.owner_id,
        "created_at": _iso(row.created_at),
    }


def run_to_dict(run: ScheduleRun, job_status: str | None = None) -> dict[str, Any]:
    """The API view of one run."""
    return {
        "run_id": run.id,
        "schedule_id": run.schedule_id,
        "trigger": run.trigger,
        "scheduled_for": _iso(run.scheduled_for),
        "attempt": run.attempt,
        "status": run.status,
        "job_id": run.job_id,
        "job_status": job_status,
        "status_url": f"/api/v1/jobs/{run.job_id}" if run.job_id else None,
        "retry_at": _iso(run.retry_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "error": run.error,
        "message": run.message,
    }


_TUNABLES = ("misfire_grace_s", "max_retries", "retry_backoff_s")


def create_schedule(container: Container, owner: Owner, spec: dict[str, Any]) -> dict[str, Any]:
    """Store a schedule and compute its first fire time.

    Args:
        container: Services.
        owner: The caller (the schedule's owner).
        spec: ``cron``, ``action``, and optionally ``name``, ``timezone``, ``enabled``,
            ``misfire_grace_s``, ``max_retries``, ``retry_backoff_s``.

    Raises:
        InvalidInput: a bad cron, time zone or action (the details name the field).
    """
    timezone = spec.get("timezone") or "UTC"
    parse_cron(spec["cron"], timezone)
    now = utcnow()
    with container.db.session() as s:
        action, deployment_id = check_action(s, owner, dict(spec["action"]))
        row = Schedule(
            owner_id=owner.user_id,
            name=spec.get("name") or f"{action['kind']} {action['deployment']}",
            cron=spec["cron"].strip(),
            timezone=timezone,
            action=action,
            deployment_id=deployment_id,
            enabled=spec.get("enabled", True),
            next_run_at=next_fire_time(spec["cron"], timezone, now),
            **{k: spec[k] for k in _TUNABLES if spec.get(k) is not None},
        )
        s.add(row)
        s.flush()
        return schedule_to_dict(row)


def get_schedule(container: Container, owner: Owner, schedule_id: str) -> dict[str, Any]:
    """One schedule (see :func:`visible_schedule`)."""
    with container.db.session() as s:
        return schedule_to_dict(visible_schedule(s, owner, schedule_id))


def _live(owner: Owner, deployment: str | None) -> list[Any]:
    where: list[Any] = [Schedule.deleted_at.is_(None), Deployment.deleted_at.is_(None)]
    if not owner.is_admin:
        where.append(Schedule.owner_id == owner.user_id)
    if deployment is not None:
        where.append(Deployment.name == deployment)
    return where


def list_schedules(
    container: Container,
    owner: Owner,
    *,
    deployment: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """The caller's schedules (an admin's: everyone's), newest first, and their total."""
    where = _live(owner, deployment)
    joined = select(Schedule).join(Deployment, Deployment.id == Schedule.deployment_id)
    with container.db.session() as s:
        total = s.scalar(select(func.count()).select_from(joined.where(*where).subquery()))
        rows = s.scalars(
            joined.where(*where)
            .order_by(Schedule.created_at.desc(), Schedule.id)
            .offset(offset)
            .limit(limit)
        )
        return [schedule_to_dict(r) for r in rows], int(total or 0)


def update_schedule(
    container: Container, owner: Owner, schedule_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a schedule; a new cron or time zone recomputes ``next_run_at`` from now.

    Raises:
        NotFound: see :func:`visible_schedule`.
        InvalidInput: a bad cron, time zone or action.
    """
    with container.db.session() as s:
        row = visible_schedule(s, owner, schedule_id)
        cron = changes.get("cron") or row.cron
        timezone = changes.get("timezone") or row.timezone
        if "cron" in changes or "timezone" in changes:
            parse_cron(cron, timezone)
            row.cron, row.timezone = cron.strip(), timezone
            row.next_run_at = next_fire_time(cron, timezone, utcnow())
        if changes.get("action") is not None:
            row.action, row.deployment_id = check_action(s, owner, dict(changes["action"]))
        if changes.get("name"):
            row.name = changes["name"]
        for key in _TUNABLES:
            if changes.get(key) is not None:
                setattr(row, key, changes[key])
        if changes.get("enabled") is not None:
            _enable(row, bool(changes["enabled"]))
        s.flush()
        return schedule_to_dict(row)


def _enable(row: Schedule, enabled: bool) -> None:
    if enabled and not row.enabled:
        # Resuming starts from now: fire times that passed while paused are not made up.
        row.next_run_at = next_fire_time(row.cron, row.timezone, utcnow())
    row.enabled = enabled


def set_enabled(
    container: Container, owner: Owner, schedule_id: str, enabled: bool
) -> dict[str, Any]:
    """Pause (``enabled`` False) or resume a schedule; resuming fires next at the next
    cron time from now, without making up the times that passed while it was paused."""
    with container.db.session() as s:
        row = visible_schedule(s, owner, schedule_id)
        _enable(row, enabled)
        s.flush()
        return schedule_to_dict(row)


def delete_schedule(container: Container, owner: Owner, schedule_id: str) -> None:
    """Soft-delete a schedule: it stops firing; its runs stay in the history."""
    with container.db.session() as s:
        row = visible_schedule(s, owner, schedule_id)
        row.deleted_at, row.enabled = utcnow(), False


def list_runs(
    container: Container, owner: Owner, schedule_id: str, *, offset: int = 0, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """A schedule's runs, newest first, each with its job's status; and their total."""
    from narrate.storage.sql.tables import Job

    with container.db.session() as s:
        visible_schedule(s, owner, schedule_id)
        where = ScheduleRun.schedule_id == schedule_id
        total = s.scalar(select(func.count()).select_from(ScheduleRun).where(where))
        rows = list(
            s.execute(
                select(ScheduleRun, Job.status)
                .outerjoin(Job, Job.id == ScheduleRun.job_id)
                .where(where)
                .order_by(ScheduleRun.created_at.desc(), ScheduleRun.attempt.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        return [run_to_dict(run, status) for run, status in rows], int(total or 0)
