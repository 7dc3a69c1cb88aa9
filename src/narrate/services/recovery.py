"""Recovery after a crash: records of dead jobs are reconciled, orphan files removed.

One place decides what a crash leaves behind and how it is put right:

- :func:`recover_jobs` fails jobs whose process stopped beating, then reconciles every
  record that points at a job which is over (a model still "training" after its job
  failed). It runs at start-up and in the periodic heartbeat sweep.
- :func:`sweep_orphans` removes blobs no record refers to, half-written blob temp files
  and upload spools, all only once they are older than ``orphan_grace_minutes`` so that
  work in flight (a blob written, its row not yet committed) is never touched. It runs
  at start-up.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.orm import Session

from narrate.bootstrap import Container
from narrate.errors import NarrateError
from narrate.jobs.records import STALE_AFTER_S, TERMINAL, recover_interrupted
from narrate.services.spool import sweep_spool
from narrate.storage.sql.tables import Base, DriftReport, Job, Model, ScheduleRun, utcnow

__all__ = ["RECONCILERS", "recover_at_start", "recover_jobs", "sweep_orphans"]

log = logging.getLogger(__name__)

Reconciler = Callable[[Session, datetime], int]
"""Fixes one table's rows that point at finished jobs; returns how many it changed."""

_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
# Job history holds progress data, never the only reference to a blob, and is the
# largest table by far: scanning it would make every start slower for nothing.
_NO_BLOB_REFERENCES = frozenset({"job_events"})


def _reconcile_models(s: Session, now: datetime) -> int:
    """A model left "training" by a job that is over gets the status its outcome implies.

    A model that already has a version (a failed or cancelled refit) is "ready" again;
    one without is "failed" or "cancelled" like its job. A model whose job was never
    recorded (a crash between the two writes that start training) counts as failed once
    it is older than the stale limit.
    """
    rows = s.execute(
        select(Model, Job.status)
        .outerjoin(Job, Job.id == Model.job_id)
        .where(Model.status == "training")
    ).all()
    changed = 0
    for model, job_status in rows:
        if job_status is None and model.created_at > now - timedelta(seconds=STALE_AFTER_S):
            continue  # its job may be created in a moment
        if job_status is not None and job_status not in TERMINAL:
            continue
        if model.current_version_id is not None:
            model.status = "ready"
        else:
            model.status = "cancelled" if job_status == "cancelled" else "failed"
        changed += 1
    return changed


def _reconcile_drift_reports(s: Session, now: datetime) -> int:
    """A drift report still waiting for a job that is over (failed, cancelled, or
    succeeded without storing it) is failed; so is one whose job was never recorded, once
    it is older than the stale limit."""
    rows = s.execute(
        select(DriftReport, Job.status)
        .outerjoin(Job, Job.id == DriftReport.job_id)
        .where(DriftReport.status.in_(("queued", "running")))
    ).all()
    changed = 0
    for report, job_status in rows:
        if job_status is None and report.created_at > now - timedelta(seconds=STALE_AFTER_S):
            continue  # its job may be created in a moment
        if job_status is not None and job_status not in TERMINAL:
            continue
        report.status = "failed"
        changed += 1
    return changed


def _reconcile_retrain_runs(s: Session, now: datetime) -> int:
    """A retrain run still queued or running whose job is over (or was never recorded,
    once older than the stale limit) is failed, saying so."""
    from narrate.storage.sql.tables import RetrainRun

    rows = s.execute(
        select(RetrainRun, Job.status)
        .outerjoin(Job, Job.id == RetrainRun.job_id)
        .where(RetrainRun.status.in_(("queued", "running", "promoting")))
    ).all()
    changed = 0
    for run, job_status in rows:
        if run.status == "promoting":
            if run.updated_at > now - timedelta(seconds=STALE_AFTER_S):
                continue  # a promotion is being written right now
            run.status = "awaiting_decision"  # the promotion did not finish: decide again
            changed += 1
            continue
        if job_status is None and run.created_at > now - timedelta(seconds=STALE_AFTER_S):
            continue  # its job may be created in a moment
        if job_status is not None and job_status not in TERMINAL:
            continue
        run.status = "failed"
        ended = job_status or "never started"
        run.error = run.error or f"Its job ended ({ended}) before the run did."
        changed += 1
    return changed


def _reconcile_schedule_runs(s: Session, now: datetime) -> int:
    """A schedule run still "running" whose job was never recorded (or is gone) is failed
    once older than the stale limit. Runs whose job ended are closed by the scheduler
    itself (:func:`narrate.services.schedule_runs.follow_runs`), which also retries them,
    so they are left alone here."""
    rows = s.execute(
        select(ScheduleRun)
        .outerjoin(Job, Job.id == ScheduleRun.job_id)
        .where(ScheduleRun.status == "running", Job.id.is_(None))
    ).scalars()
    changed = 0
    for run in rows:
        if (run.started_at or run.created_at) > now - timedelta(seconds=STALE_AFTER_S):
            continue  # its job may be recorded in a moment
        run.status, run.finished_at = "failed", now
        run.error = {"code": "interrupted", "message": "The run's job was never recorded."}
        changed += 1
    return changed


RECONCILERS: dict[str, Reconciler] = {
    "models": _reconcile_models,
    "drift_reports": _reconcile_drift_reports,
    "retrain_runs": _reconcile_retrain_runs,
    "schedule_runs": _reconcile_schedule_runs,
}
"""Every table whose rows point at a job (a ``job_id`` column), by table name."""


def recover_jobs(container: Container, *, now: datetime | None = None) -> int:
    """Fail abandoned jobs, then reconcile every record that points at a finished job.

    Args:
        container: Database to work on.
        now: The current time (tests pass a later clock).

    Returns:
        How many jobs were failed plus how many records were reconciled.

    Raises:
        StorageUnavailable: the database is unreachable.
    """
    now = now or utcnow()
    failed = recover_interrupted(container.db, now=now)
    with container.db.session() as s:
        fixed = sum(reconcile(s, now) for reconcile in RECONCILERS.values())
    if failed or fixed:
        log.warning("recovered %d interrupted job(s), reconciled %d record(s)", failed, fixed)
    return failed + fixed


def sweep_orphans(container: Container, *, now: datetime | None = None) -> dict[str, int]:
    """Remove what crashes left behind, once older than ``orphan_grace_minutes``.

    Blobs are content-addressed and shared, so one is removed only when no column of any
    table refers to it (the blob columns and any digest inside JSON columns, such as a
    model version's serving copy) and it was last written before the grace period.

    Args:
        container: Database, blob store and settings.
        now: The current time (tests pass a later clock).

    Returns:
        How many ``blobs``, blob ``temp_files`` and upload ``spool`` entries were removed.

    Raises:
        StorageUnavailable: the database or the blob store is unreachable.
    """
    now = now or utcnow()
    grace = timedelta(minutes=container.settings.orphan_grace_minutes)
    cutoff = now - grace
    # List first, read references second: a row committed in between is then seen.
    candidates = [d for d, at in container.blobs.list_blobs() if at < cutoff]
    orphans = set(candidates) - _referenced_digests(container) if candidates else set()
    for digest in sorted(orphans):
        container.blobs.delete(digest)
    removed = {
        "blobs": len(orphans),
        "temp_files": container.blobs.sweep_temp(
            older_than_s=grace.total_seconds(), now=now.timestamp()
        ),
        "spool": sweep_spool(
            container.settings, older_than_s=grace.total_seconds(), now=now.timestamp()
        ),
    }
    if any(removed.values()):
        log.warning("removed orphan files left by earlier runs: %s", removed)
    return removed


def recover_at_start(container: Container) -> None:
    """Start-up recovery: jobs and their records, then orphan files.

    A failing orphan sweep (e.g. the blob store is briefly away) is logged and does not
    stop the server; the next start tries again.

    Args:
        container: Database, blob store and settings.

    Raises:
        StorageUnavailable: the database is unreachable.
    """
    recover_jobs(container)
    try:
        sweep_orphans(container)
    except (NarrateError, OSError) as exc:
        log.warning("could not sweep orphan files: %s", exc)


def _referenced_digests(container: Container) -> set[str]:
    """Every digest any record refers to: 64-character columns and digests inside JSON."""
    found: set[str] = set()
    with container.db.session() as s:
        for columns in _reference_columns():
            for row in s.execute(select(*columns)).yield_per(1000):
                for value in row:
                    found.update(_digests_in(value))
    return found


def _reference_columns() -> Iterator[list[Any]]:
    """Per table, the columns that can hold a blob digest (checked with every start)."""
    for table in Base.metadata.sorted_tables:
        if table.name in _NO_BLOB_REFERENCES:
            continue
        columns = [
            c
            for c in table.columns
            if isinstance(c.type, JSON) or (isinstance(c.type, String) and c.type.length == 64)
        ]
        if columns:
            yield columns


def _digests_in(value: Any) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, str):
        if len(value) == 64:
            yield value
            return
        yield from _DIGEST.findall(value)
        return
    yield from _DIGEST.findall(json.dumps(value))
