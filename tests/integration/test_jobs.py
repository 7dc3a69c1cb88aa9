"""Jobs run in real worker processes; progress, events, cancel, failures, restart recovery."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from narrate.bootstrap import Container
from narrate.jobs import records

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


def test_jobs_interrupted_by_a_restart_are_marked_failed(container: Container, admin: Any) -> None:
    job_id = records.create_job(container.db, admin.id, "test.never_started", {})
    assert records.recover_interrupted(container.db) == 1
    job = records.get_job(container.db, job_id)
    assert job.status == "failed" and "restart" in job.message


def test_other_users_cannot_see_my_jobs(
    container: Container, admin: Any, client: httpx.Client, server: Any
) -> None:
    from tests.conftest import login

    from narrate.services import users

    job_id = records.create_job(container.db, admin.id, "test.x", {})
    users.create_user(container.db, "other", "password-1", "analyst")
    with login(server.base_url, "other", "password-1") as other:
        assert other.get(f"/api/v1/jobs/{job_id}").status_code == 404
        assert other.get("/api/v1/jobs").json()["items"] == []
    records.recover_interrupted(container.db)


@pytest.mark.parametrize("status", ["succeeded"])
def test_listing_jobs_shows_mine(
    container: Container, admin: Any, client: httpx.Client, status: str
) -> None:
    job_id = _submit(container, admin.id, "count_slowly", n=1, pause=0)
    _wait(client, job_id, {status})
    assert job_id in [j["id"] for j in client.get("/api/v1/jobs").json()["items"]]
