"""Executors run jobs away from the web server: a local process pool by default.

A job function is named by an entry point ``"package.module:function"`` and called as
``function(ctx: JobContext) -> dict`` (the ids of what it made). Raising a
:class:`narrate.errors.NarrateError` fails the job with that error; raising
:class:`JobCancelled` (or reporting progress after a cancel) cancels it.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
import uuid
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Protocol

from narrate.config import Settings
from narrate.core.data.expressions import configure_expression_limits
from narrate.errors import NarrateError, StorageUnavailable
from narrate.jobs.context import JobCancelled, JobContext
from narrate.jobs.records import (
    HEARTBEAT_INTERVAL_S,
    finish_job,
    get_job,
    start_job,
    touch_heartbeats,
)
from narrate.jobs.workers import (
    init_worker,
    reap_orphan_workers,
    registry_dir,
    unregister_workers,
)
from narrate.storage.blobs import FsspecBlobStore
from narrate.storage.sql.database import Database

__all__ = [
    "Heartbeat",
    "InlineExecutor",
    "JobExecutor",
    "LocalProcessExecutor",
    "run_job",
    "warm_worker",
]

log = logging.getLogger(__name__)

_worker_state: dict[str, Any] = {}


class JobExecutor(Protocol):
    """Runs queued jobs somewhere; a Dask executor implements the same two methods."""

    def submit(self, job_id: str, entry: str) -> None:
        """Start a queued job."""
        ...

    def shutdown(self) -> None:
        """Stop accepting jobs and release workers."""
        ...


def _resources(settings_json: str) -> tuple[Settings, Database, FsspecBlobStore]:
    cached = _worker_state.get(settings_json)
    if cached is None:
        from narrate.bootstrap import build_blob_store

        settings = Settings.model_validate_json(settings_json)
        configure_expression_limits(settings.max_expression_chars, settings.max_expression_depth)
        cached = (settings, Database(settings.resolved_database_url), build_blob_store(settings))
        _worker_state[settings_json] = cached
    return cached  # type: ignore[no-any-return]


def run_job(settings_json: str, job_id: str, entry: str) -> str:
    """Run one job to completion in this process and record its outcome."""
    settings, db, blobs = _resources(settings_json)
    if not start_job(db, job_id):
        return "skipped"
    job = get_job(db, job_id)
    ctx = JobContext(job_id, job.owner_id, dict(job.params), settings, db, blobs)
    try:
        module_name, func_name = entry.split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(ctx)
    except JobCancelled:
        finish_job(db, job_id, "cancelled", message="Cancelled; nothing was kept")
        return "cancelled"
    except NarrateError as exc:
        finish_job(db, job_id, "failed", error=exc.to_dict(), message=exc.message)
        return "failed"
    except Exception as exc:  # a bug: record it so the job never hangs in "running"
        error = _crash_error(job_id, exc)
        finish_job(db, job_id, "failed", error=error, message=str(error["message"]))
        return "failed"
    if ctx.is_cancelled() and isinstance(result, dict) and result.get("partial"):
        finish_job(
            db, job_id, "cancelled", result=result, message="Cancelled; kept the best so far"
        )
        return "cancelled"
    finish_job(db, job_id, "succeeded", result=result if isinstance(result, dict) else {})
    return "succeeded"


def _crash_error(job_id: str, exc: Exception) -> dict[str, Any]:
    """Log a crash with its traceback under a reference; the client gets only the reference.

    The traceback names server paths and code, which is for operators, not for whoever
    started the job; the reference lets an operator find it in the log.
    """
    reference = uuid.uuid4().hex[:12]
    log.exception("job %s crashed (reference %s)", job_id, reference)
    return {
        "code": "internal_error",
        "message": f"The job crashed: {type(exc).__name__}: {exc}",
        "hint": f"An administrator can find the details in the server log under {reference}.",
        "details": {"reference": reference},
    }


def warm_worker() -> None:
    """Import the heavy libraries once in a fresh worker so the first job starts fast."""
    for name in ("polars", "sklearn", "narrate.services.recipes", "narrate.services.training"):
        importlib.import_module(name)


class Heartbeat:
    """A daemon thread that keeps the heartbeat of the jobs this process owns fresh.

    Progress reports also beat, but a job may go quiet for minutes inside one long fit;
    this thread is what tells :func:`narrate.jobs.records.recover_interrupted` that the
    owner is still alive.
    """

    def __init__(self, db: Database, interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        self._db = db
        self._interval_s = interval_s
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="narrate-heartbeat", daemon=True)
        self._thread.start()

    def add(self, job_id: str) -> None:
        """Start beating for a job."""
        with self._lock:
            self._ids.add(job_id)

    def discard(self, job_id: str) -> None:
        """Stop beating for a job (it finished)."""
        with self._lock:
            self._ids.discard(job_id)

    def beat(self) -> None:
        """Write one heartbeat for every job held now."""
        with self._lock:
            ids = list(self._ids)
        try:
            touch_heartbeats(self._db, ids)
        except StorageUnavailable as exc:  # the next beat retries; jobs are not failed here
            log.warning("could not write job heartbeats: %s", exc.message)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()

    def stop(self) -> None:
        """Stop the thread (jobs still held go stale and are recovered later)."""
        self._stop.set()
        self._thread.join(timeout=self._interval_s + 5)


class LocalProcessExecutor:
    """Runs jobs in a pool of spawned worker processes so the server stays responsive.

    Workers are started and warmed (libraries imported) in the background at creation,
    so the first job does not pay for process start-up. Workers die with this process
    (see :mod:`narrate.jobs.workers`), and workers left by a crashed earlier run on the
    same data dir are killed here, before new ones start.
    """

    def __init__(
        self, settings: Settings, *, heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S
    ) -> None:
        self._settings_json = settings.model_dump_json()
        self._registry = registry_dir(settings.data_dir)
        reap_orphan_workers(self._registry)
        self._db = Database(settings.resolved_database_url)
        self._pool = ProcessPoolExecutor(
            max_workers=settings.job_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(str(self._registry), os.getpid()),
        )
        # The pool spawns workers from the thread that submits. Linux sends the death
        # signal when that *thread* ends, and request threads come and go, so all submits
        # go through this one thread, which lives as long as the pool.
        self._submitter = ThreadPoolExecutor(1, thread_name_prefix="narrate-job-submit")
        self._heartbeat = Heartbeat(self._db, heartbeat_interval_s)
        if settings.job_warmup:
            for _ in range(settings.job_workers):
                self._pool_submit(warm_worker)

    def _pool_submit(self, fn: Any, *args: Any) -> Future[Any]:
        return self._submitter.submit(self._pool.submit, fn, *args).result()

    def submit(self, job_id: str, entry: str) -> None:
        """Queue a job on the pool; a dead worker fails the job with a clear reason.

        While the job waits for a worker or runs, this process beats for it.
        """
        self._heartbeat.add(job_id)
        future = self._pool_submit(run_job, self._settings_json, job_id, entry)
        future.add_done_callback(lambda f: self._on_done(job_id, f))

    def _on_done(self, job_id: str, future: Future[str]) -> None:
        self._heartbeat.discard(job_id)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            finish_job(
                self._db,
                job_id,
                "failed",
                error={"code": "worker_died", "message": f"The worker process died: {exc}"},
                message="The worker process running this job died",
            )

    def shutdown(self) -> None:
        """Stop the pool without waiting for running jobs (they are recovered on restart).

        The worker processes are ended too: left alone, a spawned worker outlives the
        server (seen after a SIGTERM'd ``narrate serve``: two idle workers of 550 MB each).
        """
        workers = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(timeout=5)
        unregister_workers(self._registry, [w.pid for w in workers if w.pid is not None])
        self._submitter.shutdown(wait=False)
        self._heartbeat.stop()
        self._db.dispose()


class InlineExecutor:
    """Runs a job in the calling process (the CLI uses it to show a live progress bar)."""

    def __init__(self, settings: Settings) -> None:
        self._settings_json = settings.model_dump_json()

    def submit(self, job_id: str, entry: str) -> None:
        """Run the job now, in this process, beating for it from a thread meanwhile."""
        heartbeat = Heartbeat(_resources(self._settings_json)[1])
        heartbeat.add(job_id)
        try:
            run_job(self._settings_json, job_id, entry)
        finally:
            heartbeat.stop()

    def shutdown(self) -> None:
        """Nothing to release."""
