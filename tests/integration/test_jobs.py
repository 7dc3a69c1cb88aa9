"""Jobs run in real worker processes; progress, events, cancel, failures, restart recovery."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.conftest import login
from tests.support.servers import AppServer

from narrate.bootstrap import Container
from narrate.jobs import records
from narrate.jobs.executors import Heartbeat
from narrate.storage.sql.tables import Job, utcnow

ENTRY = "tests.support.jobfuncs:"


def _submit(container: Container, owner: str, func: str, **params: Any) -> str:
    job_id = records.create_job(container.db, owner, "test." + func, params)
    assert container.executor is not None
    container.executor.submit(job_id, ENTRY + func)
    return job_id


def _wait(
    client: httpx.Client, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job stayed {job['status']}")


def test_job_runs_with_progress_events_and_result(
    container: Container, admin: Any, client: httpx.Client
) -> None:
    job_id = _submit(container, admin.id, "count_slowly", n=4, pause=0.05)
    job = _wait(client, job_id, {"succeeded", "failed"})
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["result"] == {"counted": 4}
    messages = [e["message"] for e in job["events"]]
    assert messages[0] == "Queued" and "Started" in messages and messages[-1] == "Succeeded"


def test_running_job_can_be_cancelled(
    container: Container, admin: Any, client: httpx.Client
) -> None:
    job_id = _submit(container, admin.id, "count_slowly", n=200, pause=0.05)
    _wait(client, job_id, {"running"})
    r = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    job = _wait(client, job_id, {"cancelled", "succeeded", "failed"})
    assert job["status"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"


def test_domain_error_fails_the_job_with_its_message(
    container: Container, admin: Any, client: httpx.Client
) -> None:
    job = _wait(
        client, _submit(container, admin.id, "fail_with_data_problem"), {"failed", "succeeded"}
    )
    assert job["status"] == "failed"
    assert job["error"]["code"] == "data_problem" and job["error"]["details"] == {"line": 3}


def test_a_crash_fails_the_job_instead_of_hanging(
    container: Container, admin: Any, client: httpx.Client
) -> None:
    job = _wait(client, _submit(container, admin.id, "crash"), {"failed", "succeeded"})
    assert job["status"] == "failed"
    assert "ZeroDivisionError" in job["error"]["message"]


def _set_job(container: Container, job_id: str, **values: Any) -> None:
    with container.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        for key, value in values.items():
            setattr(job, key, value)


def _running_job(container: Container, owner: str, *, beat_ago_s: float | None) -> str:
    job_id = records.create_job(container.db, owner, "test.elsewhere", {})
    assert records.start_job(container.db, job_id)
    beat = None if beat_ago_s is None else utcnow() - timedelta(seconds=beat_ago_s)
    _set_job(container, job_id, heartbeat_at=beat)
    return job_id


def test_a_job_whose_owner_stopped_beating_is_marked_failed(
    container: Container, admin: Any
) -> None:
    stale = _running_job(container, admin.id, beat_ago_s=records.STALE_AFTER_S + 30)
    assert records.recover_interrupted(container.db) == 1
    job = records.get_job(container.db, stale)
    assert job.status == "failed" and job.finished_at is not None
    assert "stopped" in job.message and "restart" in job.message
    assert job.error is not None and job.error["code"] == "interrupted"
    assert "was running" in job.error["message"] and "Start the job again" in job.error["message"]
    assert job.error["details"]["was"] == "running"
    events = records.job_events(container.db, stale)
    assert events[-1]["level"] == "error" and events[-1]["message"] == job.message


def test_a_live_job_of_another_process_is_left_alone(container: Container, admin: Any) -> None:
    fresh = _running_job(container, admin.id, beat_ago_s=1)
    queued = records.create_job(container.db, admin.id, "test.just_queued", {})
    assert records.recover_interrupted(container.db) == 0
    assert records.get_job(container.db, fresh).status == "running"
    assert records.get_job(container.db, queued).status == "queued"
    # The same jobs, seen from a clock past the stale limit, have been abandoned.
    later = utcnow() + timedelta(seconds=records.STALE_AFTER_S + 5)
    assert records.recover_interrupted(container.db, now=later) == 2
    assert records.get_job(container.db, queued).error["details"]["was"] == "queued"  # type: ignore[index]


def test_a_job_with_no_heartbeat_at_all_counts_as_abandoned(
    container: Container, admin: Any
) -> None:
    job_id = _running_job(container, admin.id, beat_ago_s=None)
    assert records.recover_interrupted(container.db) == 1
    job = records.get_job(container.db, job_id)
    assert job.status == "failed"
    assert job.error is not None and "no heartbeat ever" in job.error["message"]


def test_finished_jobs_are_never_touched_by_recovery(container: Container, admin: Any) -> None:
    job_id = _running_job(container, admin.id, beat_ago_s=None)
    records.finish_job(container.db, job_id, "succeeded", result={"ok": 1})
    assert records.recover_interrupted(container.db, now=utcnow() + timedelta(days=1)) == 0
    assert records.get_job(container.db, job_id).status == "succeeded"


def test_server_start_fails_stale_jobs_and_keeps_live_ones(
    container: Container, admin: Any
) -> None:
    from narrate.web.app import create_app

    stale = _running_job(container, admin.id, beat_ago_s=records.STALE_AFTER_S * 2)
    live = _running_job(container, admin.id, beat_ago_s=2)
    srv = AppServer(create_app(container.settings, container)).start()
    try:
        with login(srv.base_url, "admin", "admin-password-123") as client:
            dead = client.get(f"/api/v1/jobs/{stale}").json()
            assert dead["status"] == "failed"
            assert dead["error"]["code"] == "interrupted"
            assert client.get(f"/api/v1/jobs/{live}").json()["status"] == "running"
    finally:
        srv.stop()


def test_heartbeat_thread_keeps_a_quiet_job_fresh(container: Container, admin: Any) -> None:
    job_id = _running_job(container, admin.id, beat_ago_s=records.STALE_AFTER_S * 2)
    old = records.get_job(container.db, job_id).heartbeat_at
    heartbeat = Heartbeat(container.db, interval_s=0.05)
    heartbeat.add(job_id)
    try:
        deadline = time.monotonic() + 10
        while records.get_job(container.db, job_id).heartbeat_at == old:
            assert time.monotonic() < deadline, "no heartbeat was written"
            time.sleep(0.05)
    finally:
        heartbeat.stop()
    assert records.recover_interrupted(container.db) == 0
    assert records.get_job(container.db, job_id).status == "running"


def test_the_pool_beats_for_a_job_that_reports_no_progress(
    container: Container, admin: Any
) -> None:
    from narrate.jobs.executors import LocalProcessExecutor

    executor = LocalProcessExecutor(container.settings, heartbeat_interval_s=0.1)
    try:
        # One progress report at the start, then three quiet seconds.
        job_id = records.create_job(container.db, admin.id, "test.quiet", {"n": 1, "pause": 3})
        executor.submit(job_id, ENTRY + "count_slowly")
        _wait_until_running(container, job_id)
        last_progress = records.get_job(container.db, job_id).heartbeat_at
        time.sleep(1.0)
        job = records.get_job(container.db, job_id)
        assert job.status == "running"
        assert job.heartbeat_at is not None and last_progress is not None
        assert job.heartbeat_at > last_progress + timedelta(seconds=0.5)
    finally:
        executor.shutdown()


def _wait_until_running(container: Container, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while records.get_job(container.db, job_id).status != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)


def test_shutdown_ends_the_worker_processes(container: Container, admin: Any) -> None:
    from narrate.jobs.executors import LocalProcessExecutor

    executor = LocalProcessExecutor(container.settings, heartbeat_interval_s=0.1)
    # A quiet job keeps a worker busy, so shutdown meets a running and maybe an idle one.
    job_id = records.create_job(container.db, admin.id, "test.quiet", {"n": 1, "pause": 30})
    executor.submit(job_id, ENTRY + "count_slowly")
    _wait_until_running(container, job_id)
    workers = list(executor._pool._processes.values())
    assert workers and all(w.is_alive() for w in workers)
    executor.shutdown()
    assert not any(w.is_alive() for w in workers)


def test_other_users_cannot_see_my_jobs(
    container: Container, admin: Any, client: httpx.Client, server: Any
) -> None:
    from narrate.services import users

    job_id = records.create_job(container.db, admin.id, "test.x", {})
    users.create_user(container.db, "other", "maple-anchor-17", "analyst")
    with login(server.base_url, "other", "maple-anchor-17") as other:
        assert other.get(f"/api/v1/jobs/{job_id}").status_code == 404
        assert other.get("/api/v1/jobs").json()["items"] == []


@pytest.mark.parametrize("status", ["succeeded"])
def test_listing_jobs_shows_mine(
    container: Container, admin: Any, client: httpx.Client, status: str
) -> None:
    job_id = _submit(container, admin.id, "count_slowly", n=1, pause=0)
    _wait(client, job_id, {status})
    assert job_id in [j["id"] for j in client.get("/api/v1/jobs").json()["items"]]
