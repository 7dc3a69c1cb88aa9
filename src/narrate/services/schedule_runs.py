"""Firing schedules: due times, missed runs, starting the action's job, retries.

One run row per attempt. A run starts its action's job as the schedule's owner and is
``running`` until the job ends; a job that fails, or an action that cannot start (the
deployment logged nothing in the window, the executor is away ...), fails the attempt and,
while ``attempt <= max_retries``, adds a ``pending`` retry due after
``retry_backoff_s * 2 ** (attempt - 1)`` seconds.

Missed runs (the policy in docs/monitor.md "Schedules"): when a schedule is found due, the
fire times that passed since ``next_run_at`` are **coalesced** into one run for the latest
of them if that one is at most ``misfire_grace_s`` old; otherwise nothing is started and a
``missed`` run records the latest time and how many were skipped. Either way
``next_run_at`` moves to the next cron time after now.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from narrate.bootstrap import Container
from narrate.errors import InvalidInput, NarrateError
from narrate.jobs.records import TERMINAL
from narrate.services.schedules import next_fire_time, run_to_dict, visible_schedule
from narrate.storage.sql.tables import Deployment, Job, Schedule, ScheduleRun, User, utcnow
from narrate.storage.sql.visibility import Owner, visible_deployment

__all__ = [
    "RETRAIN_OPTIONS",
    "STUCK_AFTER",
    "fire_due",
    "follow_runs",
    "recompute_missing",
    "run_now",
    "settle_run",
    "start_action",
]

log = logging.getLogger(__name__)
STUCK_AFTER = timedelta(minutes=5)
"""A run still ``starting`` or ``closing`` after this lost its process (a crash between
two writes); the leader fails it so it does not look busy forever."""
RETRAIN_OPTIONS = ("policy", "auto_promote", "margin", "budget_s")
"""What a ``retrain`` action may set of the retrain run (see ``start_retrain``)."""
_COUNT_SPAN = timedelta(hours=6)
"""How far back due fire times are counted one by one."""


# --- the actions --------------------------------------------------------------------------


def _retrain(
    container: Container,
    owner: Owner,
    deployment: Deployment,
    action: dict[str, Any],
    schedule_id: str,
) -> str:
    """Start a run of the retraining loop (:mod:`narrate.services.retrain`: refit or search
    on the newest labelled traffic, champion vs challenger, then a decision)."""
    from narrate.services.retrain import start_retrain

    options = {k: action[k] for k in RETRAIN_OPTIONS if action.get(k) is not None}
    started = start_retrain(
        container, owner, deployment.name, "schedule", trigger_ref=schedule_id, **options
    )
    return str(started["job_id"])


def start_action(
    container: Container, owner: Owner, action: dict[str, Any], schedule_id: str
) -> str:
    """Start the job of one action as ``owner``; return its id.

    Raises:
        NarrateError: the action cannot start now (the message says why).
    """
    from narrate.services.batch import start_batch
    from narrate.services.datasets import get_version
    from narrate.services.drift import start_deployment_drift
    from narrate.services.schedule_inputs import fetch_s3

    with container.db.session() as s:
        deployment = visible_deployment(s, owner, action["deployment"])
        s.expunge(deployment)
    kind = action["kind"]
    if kind == "batch":
        common = {
            "deployment_id": deployment.id,
            "deployment_name": deployment.name,
            "owner_id": deployment.owner_id,
            "caller": f"schedule:{schedule_id}",
        }
        if action.get("path"):
            local, name = fetch_s3(container.settings, action["path"])
            try:
                started = start_batch(
                    container, input_path=local, filename=name, version_id=None, **common
                )
            finally:
                shutil.rmtree(local.parent, ignore_errors=True)
            return str(started["job_id"])
        version = get_version(container, owner, action["version_id"])
        started = start_batch(
            container, input_path=None, filename=None, version_id=version.id, **common
        )
        return str(started["job_id"])
    if kind == "drift":
        started = start_deployment_drift(
            container, owner, deployment.name, window=action.get("window") or "7d"
        )
        return str(started["job_id"])
    if kind == "retrain":
        return _retrain(container, owner, deployment, action, schedule_id)
    raise InvalidInput(f"Unknown action kind '{kind}'.", details={"parameter": "action.kind"})


# --- one attempt --------------------------------------------------------------------------


def _owner_of(container: Container, user_id: str) -> Owner:
    with container.db.session() as s:
        user = s.get(User, user_id)
        if user is None or not user.is_active or user.deleted_at is not None:
            raise InvalidInput(
                "The schedule's owner is no longer an active user.",
                code="owner_inactive",
                details={"owner_id": user_id},
            )
        return Owner(user.id, user.role == "admin")


def _start(container: Container, run_id: str, now: datetime) -> None:
    """Start the action of a run already claimed (status ``starting``)."""
    with container.db.session() as s:
        run = s.get(ScheduleRun, run_id)
        schedule = s.get(Schedule, run.schedule_id) if run is not None else None
        if run is None or schedule is None:
            return
        action, owner_id = dict(schedule.action), schedule.owner_id
        is_deleted = schedule.deleted_at is not None
    try:
        if is_deleted:
            raise InvalidInput("The schedule was deleted.", code="schedule_deleted")
        owner = _owner_of(container, owner_id)
        job_id = start_action(container, owner, action, run.schedule_id)
    except NarrateError as exc:
        _attempt_failed(container, run_id, exc.to_dict(), f"Could not start: {exc.message}", now)
        return
    except Exception as exc:  # a bug: record it on the run, never leave it "starting"
        reference = uuid.uuid4().hex[:12]
        log.exception("schedule run %s could not start (reference %s)", run_id, reference)
        error = {
            "code": "internal_error",
            "message": f"{type(exc).__name__}: {exc}",
            "details": {"reference": reference},
        }
        _attempt_failed(container, run_id, error, f"Could not start: {error['message']}", now)
        return
    with container.db.session() as s:
        row = s.get(ScheduleRun, run_id)
        assert row is not None  # noqa: S101 - read above
        row.status, row.job_id, row.started_at = "running", job_id, now
        row.message = f"Started {action['kind']} job {job_id}"


def _attempt_failed(
    container: Container, run_id: str, error: dict[str, Any] | None, message: str, now: datetime
) -> None:
    """Record a failed attempt and queue the next one while retries are left."""
    with container.db.session() as s:
        run = s.get(ScheduleRun, run_id)
        assert run is not None  # noqa: S101 - the caller holds it
        schedule = s.get(Schedule, run.schedule_id)
        run.status, run.finished_at, run.error = "failed", now, error
        retries = schedule.max_retries if schedule is not None else 0
        if schedule is None or schedule.deleted_at is not None or run.attempt > retries:
            run.message = f"{message} (attempt {run.attempt}; no retries left)"
            return
        wait = timedelta(seconds=schedule.retry_backoff_s * 2 ** (run.attempt - 1))
        retry_at = now + wait
        run.message = (
            f"{message} (attempt {run.attempt} of {retries + 1}; retry at {retry_at.isoformat()})"
        )
        s.add(
            ScheduleRun(
                schedule_id=run.schedule_id,
                owner_id=run.owner_id,
                trigger="retry",
                scheduled_for=run.scheduled_for,
                attempt=run.attempt + 1,
                status="pending",
                retry_at=retry_at,
                message=f"Retry {run.attempt} of {retries}, due {retry_at.isoformat()}",
            )
        )


def _new_run(
    container: Container, schedule: Schedule, when: datetime, trigger: str, **kw: Any
) -> str:
    with container.db.session() as s:
        run = ScheduleRun(
            schedule_id=schedule.id,
            owner_id=schedule.owner_id,
            trigger=trigger,
            scheduled_for=when,
            **kw,
        )
        s.add(run)
        s.flush()
        return run.id


def run_now(container: Container, owner: Owner, schedule_id: str) -> dict[str, Any]:
    """Start a schedule's action now (``POST /schedules/{id}/run``), paused ones too.

    Returns:
        The run: ``running`` with its ``job_id``, or ``failed`` with the reason (and a
        ``pending`` retry while retries are left).
    """
    with container.db.session() as s:
        schedule = visible_schedule(s, owner, schedule_id)
        s.expunge(schedule)
    now = utcnow()
    run_id = _new_run(container, schedule, now, "manual", status="starting")
    _start(container, run_id, now)
    with container.db.session() as s:
        run = s.get(ScheduleRun, run_id)
        assert run is not None  # noqa: S101 - written above
        job = s.get(Job, run.job_id) if run.job_id else None
        return run_to_dict(run, job.status if job else None)


# --- what the leader does every tick ------------------------------------------------------


def recompute_missing(container: Container, now: datetime | None = None) -> int:
    """Give every enabled schedule without a next fire time one (the leader, at start)."""
    now = now or utcnow()
    with container.db.session() as s:
        rows = list(
            s.scalars(
                select(Schedule).where(
                    Schedule.enabled.is_(True),
                    Schedule.deleted_at.is_(None),
                    Schedule.next_run_at.is_(None),
                )
            )
        )
        for row in rows:
            row.next_run_at = next_fire_time(row.cron, row.timezone, now)
        return len(rows)


def _latest_due(row: Schedule, now: datetime) -> tuple[datetime, int, bool]:
    """The latest fire time at or before ``now`` from ``next_run_at`` on, and how many fire
    times came due: exact when they lie within the last :data:`_COUNT_SPAN`, else only that
    tail is walked (a per-minute cron down for a week would be 10,080 steps) and the count
    is a lower bound (the flag is False)."""
    assert row.next_run_at is not None  # noqa: S101 - selected as due
    first, exact, span = row.next_run_at, True, _COUNT_SPAN
    while now - first > span:
        tail = next_fire_time(row.cron, row.timezone, now - span - timedelta(seconds=1))
        if tail is not None and tail <= now:
            first, exact = tail, False
            break
        span *= 4  # a rare cron (monthly, yearly): look further back
    latest, count = first, 1
    while True:
        after = next_fire_time(row.cron, row.timezone, latest)
        if after is None or after > now:
            return latest, count, exact
        latest, count = after, count + 1


def _claim(container: Container, row: Schedule, latest: datetime, now: datetime) -> bool:
    """Move the schedule's next fire time on, unless another scheduler did already."""
    with container.db.session() as s:
        done = s.execute(
            update(Schedule)
            .where(Schedule.id == row.id, Schedule.next_run_at == row.next_run_at)
            .values(next_run_at=next_fire_time(row.cron, row.timezone, now), last_run_at=latest)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(done, "rowcount", 0))


def _fire(container: Container, row: Schedule, now: datetime) -> str:
    latest, count, exact = _latest_due(row, now)
    if not _claim(container, row, latest, now):
        return "skipped"
    late = (now - latest).total_seconds()
    if late > row.misfire_grace_s:
        more = (
            "" if exact else f"+ (since {row.next_run_at.isoformat() if row.next_run_at else '?'})"
        )
        _new_run(
            container,
            row,
            latest,
            "cron",
            status="missed",
            finished_at=now,
            message=f"Missed: due {latest.isoformat()} while no scheduler was running, "
            f"{late:.0f} s ago, beyond the grace of {row.misfire_grace_s} s; "
            f"{count}{more} fire time(s) skipped.",
        )
        return "missed"
    many = f"{count}" if exact else f"{count} or more"
    note = f"; coalesced {many} due fire times into this run" if count > 1 else ""
    run_id = _new_run(container, row, latest, "cron", status="starting", message=f"Starting{note}")
    _start(container, run_id, now)
    return "fired"


def fire_due(container: Container, now: datetime | None = None) -> dict[str, int]:
    """Fire every enabled schedule whose time has come; return counts by outcome."""
    now = now or utcnow()
    with container.db.session() as s:
        rows = list(
            s.scalars(
                select(Schedule)
                .join(Deployment, Deployment.id == Schedule.deployment_id)
                .where(
                    Schedule.enabled.is_(True),
                    Schedule.deleted_at.is_(None),
                    Deployment.deleted_at.is_(None),
                    Schedule.next_run_at <= now,
                )
            )
        )
        for row in rows:
            s.expunge(row)
    counts: dict[str, int] = {}
    for row in rows:
        try:
            outcome = _fire(container, row, now)
        except NarrateError as exc:  # one schedule's problem does not stop the others
            log.warning("schedule %s could not fire: %s", row.id, exc.message)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _close(
    container: Container, run_id: str, status: str, error: Any, message: str, now: datetime
) -> None:
    with container.db.session() as s:  # claim it: the leader and the CLI may both look
        claimed = s.execute(
            update(ScheduleRun)
            .where(ScheduleRun.id == run_id, ScheduleRun.status == "running")
            .values(status="closing")
            .execution_options(synchronize_session=False)
        )
    if not getattr(claimed, "rowcount", 0):
        return
    if status == "succeeded":
        with container.db.session() as s:
            run = s.get(ScheduleRun, run_id)
            assert run is not None  # noqa: S101 - the caller read it
            run.status, run.finished_at = "succeeded", now
            run.message = f"Job {run.job_id} succeeded: {message}"
    else:
        _attempt_failed(container, run_id, error, f"Job {status}: {message}", now)


def settle_run(container: Container, run_id: str) -> dict[str, Any]:
    """Close one running run whose job ended (the CLI, after running the job inline)."""
    with container.db.session() as s:
        found = s.execute(
            select(ScheduleRun.status, Job.status, Job.error, Job.message)
            .outerjoin(Job, Job.id == ScheduleRun.job_id)
            .where(ScheduleRun.id == run_id)
        ).first()
    if found is not None and found[0] == "running" and found[1] in TERMINAL:
        _close(container, run_id, found[1], found[2], found[3], utcnow())
    with container.db.session() as s:
        run = s.get(ScheduleRun, run_id)
        assert run is not None  # noqa: S101 - the caller made it
        job = s.get(Job, run.job_id) if run.job_id else None
        return run_to_dict(run, job.status if job else None)


def _fail_stuck(container: Container, now: datetime) -> int:
    with container.db.session() as s:
        done = s.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.status.in_(("starting", "closing")),
                ScheduleRun.created_at < now - STUCK_AFTER,
            )
            .values(
                status="failed",
                finished_at=now,
                error={"code": "interrupted", "message": "The process handling it stopped."},
                message="Interrupted: the server process handling this run stopped (e.g. a "
                "restart) before it recorded the outcome; see the job, if any.",
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(done, "rowcount", 0) or 0)


def follow_runs(container: Container, now: datetime | None = None) -> int:
    """Close runs whose job ended and start retries that are due; return how many moved."""
    now = now or utcnow()
    with container.db.session() as s:
        running = list(
            s.execute(
                select(ScheduleRun.id, Job.status, Job.error, Job.message)
                .join(Job, Job.id == ScheduleRun.job_id)
                .where(ScheduleRun.status == "running", Job.status.in_(TERMINAL))
            )
        )
    for run_id, status, error, message in running:
        _close(container, run_id, status, error, message, now)
    moved = len(running) + _fail_stuck(container, now)
    with container.db.session() as s:
        due = list(
            s.scalars(
                select(ScheduleRun.id).where(
                    ScheduleRun.status == "pending", ScheduleRun.retry_at <= now
                )
            )
        )
    for run_id in due:
        with container.db.session() as s:
            claimed = s.execute(
                update(ScheduleRun)
                .where(ScheduleRun.id == run_id, ScheduleRun.status == "pending")
                .values(status="starting")
                .execution_options(synchronize_session=False)
            )
        if getattr(claimed, "rowcount", 0):
            moved += 1
            _start(container, run_id, now)
    return moved
