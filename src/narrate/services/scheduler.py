"""The one scheduler across every server process on one database, elected by a lease.

Each server process (``narrate serve --workers N`` starts N) runs an APScheduler
``BackgroundScheduler`` with one interval job, :meth:`Scheduler.tick`, every
``NARRATE_SCHEDULER_TICK_S`` seconds. A tick first takes or renews the lease row
``scheduler_lease`` (one conditional ``UPDATE ... WHERE expires_at < now OR holder = me``,
atomic on SQLite and PostgreSQL); only the process holding it fires due schedules and
follows their runs. When the leader stops cleanly it gives the lease up; when it dies,
another process takes over once ``NARRATE_SCHEDULER_LEASE_S`` has passed. Why not
APScheduler's own SQLAlchemy job store: docs/adr/0018-one-scheduler-by-lease.md.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import case, or_, update
from sqlalchemy.exc import IntegrityError

from narrate.bootstrap import Container
from narrate.errors import NarrateError
from narrate.services.schedule_runs import fire_due, follow_runs, recompute_missing
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import SchedulerLease, utcnow

__all__ = [
    "LEASE_NAME",
    "Scheduler",
    "acquire_lease",
    "lease_holder",
    "release_lease",
    "start_scheduler",
    "stop_scheduler",
]

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"


def acquire_lease(db: Database, holder: str, ttl_s: float, now: datetime | None = None) -> bool:
    """Take the lease when it is free or expired, or renew it when ``holder`` has it.

    Returns:
        Whether ``holder`` holds the lease until ``now + ttl_s``.
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    with db.session() as s:
        done = s.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == LEASE_NAME,
                or_(SchedulerLease.expires_at < now, SchedulerLease.holder == holder),
            )
            .values(
                holder=holder,
                expires_at=expires,
                acquired_at=case(
                    (SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now
                ),
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0):
            return True
    try:  # the first process ever creates the row; a concurrent second one loses here
        with db.session() as s:
            if s.get(SchedulerLease, LEASE_NAME) is not None:
                return False
            s.add(
                SchedulerLease(name=LEASE_NAME, holder=holder, expires_at=expires, acquired_at=now)
            )
        return True
    except IntegrityError:
        return False


def release_lease(db: Database, holder: str) -> None:
    """Give the lease up at once (a clean stop), so another process need not wait."""
    with db.session() as s:
        s.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


def lease_holder(db: Database) -> dict[str, Any] | None:
    """Who holds the lease and until when (None: nobody ever took it)."""
    with db.session() as s:
        row = s.get(SchedulerLease, LEASE_NAME)
        if row is None:
            return None
        return {
            "holder": row.holder,
            "expires_at": row.expires_at.isoformat(),
            "acquired_at": row.acquired_at.isoformat(),
        }


class Scheduler:
    """One process's scheduler: it fires schedules only while it holds the lease.

    Args:
        container: Services (the executor starts the actions' jobs).
        tick_s: Seconds between two ticks.
        lease_s: How long a lease lasts without renewal.
        clock: The current time (tests pass their own).
    """

    def __init__(
        self,
        container: Container,
        *,
        tick_s: float,
        lease_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.container = container
        self.tick_s, self.lease_s = tick_s, lease_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        self._clock = clock
        self._aps: BackgroundScheduler | None = None

    def tick(self, now: datetime | None = None) -> dict[str, Any]:
        """Take or renew the lease; as the leader, fire due schedules and follow runs."""
        now = now or self._clock()
        try:
            leader = acquire_lease(self.container.db, self.holder, self.lease_s, now)
        except NarrateError as exc:  # the database is briefly away: not the leader now
            log.warning("scheduler could not renew its lease: %s", exc.message)
            leader = False
        if leader and not self.is_leader:
            log.info("scheduler %s leads; recomputing next run times", self.holder)
            recompute_missing(self.container, now)
        self.is_leader = leader
        if not leader:
            return {"leader": False}
        try:
            fired = fire_due(self.container, now)
            moved = follow_runs(self.container, now)
        except NarrateError as exc:
            log.warning("scheduler tick failed: %s", exc.message)
            return {"leader": True, "error": exc.message}
        return {"leader": True, "fired": fired, "moved": moved}

    def _tick_safely(self) -> None:
        try:
            self.tick()
        except Exception:  # never let one bad tick stop the scheduler
            log.exception("scheduler tick crashed")

    def start(self) -> Scheduler:
        """Start ticking in a background thread (the first tick runs at once)."""
        # APScheduler logs every execution at INFO: one line per tick would flood the log.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        aps = BackgroundScheduler(timezone=UTC)
        aps.add_job(
            self._tick_safely,
            IntervalTrigger(seconds=self.tick_s, timezone=UTC),
            id="narrate-scheduler-tick",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        aps.start()
        self._aps = aps
        return self

    def stop(self) -> None:
        """Stop ticking and give the lease up if this process holds it."""
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None
        if self.is_leader:
            try:
                release_lease(self.container.db, self.holder)
            except NarrateError as exc:
                log.warning("scheduler could not release its lease: %s", exc.message)
            self.is_leader = False


def start_scheduler(container: Container) -> None:
    """Start this process's scheduler when ``NARRATE_SCHEDULER`` is on (the app lifespan)."""
    settings = container.settings
    if not settings.scheduler or "scheduler" in container.extras:
        return
    container.extras["scheduler"] = Scheduler(
        container, tick_s=settings.scheduler_tick_s, lease_s=settings.scheduler_lease_s
    ).start()


def stop_scheduler(container: Container) -> None:
    """Stop this process's scheduler, if it runs."""
    scheduler = container.extras.pop("scheduler", None)
    if isinstance(scheduler, Scheduler):
        scheduler.stop()
