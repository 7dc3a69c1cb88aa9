"""Schedules over real HTTP on SQLite and PostgreSQL: create, read, change, pause, resume,
delete; bad inputs (each a 422 naming its field with a stable code); visibility; run now
with each action kind, and the run history with its jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.conftest import backend_url
from tests.support.api import wait_job
from tests.support.schedule_world import API, World, schedule_world

from narrate.services import schedule_runs


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("schedules-api")
    with schedule_world(backend_url(request, tmp), tmp) as w:
        yield w


@pytest.fixture(autouse=True)
def _forget(world: World) -> Iterator[None]:
    yield
    world.forget()


def test_create_answers_the_next_run_in_the_schedules_time_zone(world: World) -> None:
    item = world.schedule(cron="30 6 * * *", timezone="Europe/Paris", name="daily scoring")
    assert item["name"] == "daily scoring"
    assert item["action"] == {
        "kind": "batch",
        "deployment": world.deployment,
        "version_id": world.version_id,
        "path": None,
        "window": None,
        "policy": None,
        "auto_promote": None,
        "margin": None,
        "budget_s": None,
    }
    assert (item["enabled"], item["paused"]) == (True, False)
    assert (item["misfire_grace_s"], item["max_retries"]) == (3600, 2)
    nxt = datetime.fromisoformat(item["next_run_at"]).astimezone(UTC)
    # December: Paris is UTC+1, so 06:30 there is 05:30 UTC, within the next day.
    assert (nxt.hour, nxt.minute) == (5, 30)
    assert 0 < (nxt - datetime.now(UTC)).total_seconds() <= 86_400
    assert world.owner.get(f"{API}/schedules/{item['schedule_id']}").json() == item


def _bad(world: World, cron: str = "* * * * *", **overrides: Any) -> dict[str, Any]:
    action = {"kind": "batch", "deployment": world.deployment, "version_id": world.version_id}
    action |= overrides.pop("action", {})
    r = world.owner.post(f"{API}/schedules", json={"cron": cron, "action": action, **overrides})
    assert r.status_code == 422, r.text
    return dict(r.json()["error"])


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("61 * * * *", "the last value (61) is higher than the maximum value (59)"),
        ("* * *", "Wrong number of fields; got 3, expected 5"),
        ("0 0 31 2 *", "never fires"),
        ("0 25 * * *", "higher than the maximum value (23)"),
        ("every day", "Wrong number of fields"),
    ],
    ids=["minute-61", "three-fields", "february-31", "hour-25", "words"],
)
def test_bad_cron_is_422_naming_cron_and_what_is_wrong(world: World, cron: str, says: str) -> None:
    error = _bad(world, cron)
    assert error["code"] == "invalid_cron"
    assert error["details"]["parameter"] == "cron"
    assert says in error["message"], error
    assert f"'{cron}'" in error["message"]
    assert "minute hour" in error["hint"]


def test_unknown_time_zone_is_422_naming_timezone(world: World) -> None:
    error = _bad(world, timezone="Mars/Olympus")
    assert error["code"] == "invalid_timezone"
    assert error["details"] == {"parameter": "timezone", "value": "Mars/Olympus"}


@pytest.mark.parametrize(
    ("action", "code", "field"),
    [
        ({"deployment": "no-such-deployment"}, "unknown_deployment", "action.deployment"),
        ({"version_id": "0" * 32}, "unknown_version", "action.version_id"),
        ({"version_id": None}, "invalid_action", "action.version_id"),
        ({"kind": "drift", "window": "7 years"}, "invalid_input", "action.window"),
    ],
    ids=["deployment", "version", "batch-without-version", "window"],
)
def test_bad_action_is_422_naming_the_field(
    world: World, action: dict[str, Any], code: str, field: str
) -> None:
    error = _bad(world, action=action)
    assert error["code"] == code
    assert error["details"]["parameter"] == field
    assert field in error["message"] or "window" in error["message"]


def test_bad_action_kind_is_422_naming_action_kind(world: World) -> None:
    error = _bad(world, action={"kind": "explode"})
    assert error["code"] == "invalid_input"
    assert error["details"]["errors"][0]["location"] == "body.action.kind"
    assert "'batch', 'drift' or 'retrain'" in error["message"]


def test_another_analysts_deployment_is_an_unknown_deployment(world: World) -> None:
    body = {
        "cron": "0 * * * *",
        "action": {"kind": "drift", "deployment": world.deployment},
    }
    r = world.other.post(f"{API}/schedules", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unknown_deployment"


def test_patch_recomputes_next_run_and_checks_the_new_values(world: World) -> None:
    item = world.schedule(cron="0 3 * * *")
    path = f"{API}/schedules/{item['schedule_id']}"
    r = world.owner.patch(path, json={"cron": "15 * * * *", "max_retries": 0})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["next_run_at"]).minute == 15
    assert r.json()["max_retries"] == 0
    r = world.owner.patch(path, json={"cron": "15 * * * * *"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["parameter"] == "cron"
    assert world.owner.get(path).json()["cron"] == "15 * * * *"


def test_pause_and_resume(world: World) -> None:
    item = world.schedule()
    path = f"{API}/schedules/{item['schedule_id']}"
    paused = world.owner.post(f"{path}/pause").json()
    assert (paused["enabled"], paused["paused"]) == (False, True)
    resumed = world.owner.post(f"{path}/resume").json()
    assert resumed["paused"] is False
    assert datetime.fromisoformat(resumed["next_run_at"]) > datetime.now(UTC)


def test_schedules_are_visible_to_their_owner_and_admins_only(world: World) -> None:
    item = world.schedule()
    sid = item["schedule_id"]
    routes = [
        ("GET", f"{API}/schedules/{sid}", None),
        ("PATCH", f"{API}/schedules/{sid}", {"name": "renamed"}),
        ("POST", f"{API}/schedules/{sid}/pause", None),
        ("POST", f"{API}/schedules/{sid}/resume", None),
        ("GET", f"{API}/schedules/{sid}/runs", None),
        ("POST", f"{API}/schedules/{sid}/run", None),
        ("DELETE", f"{API}/schedules/{sid}", None),
    ]
    for method, path, body in routes:
        r = world.other.request(method, path, json=body)
        assert r.status_code == 404, f"{method} {path}: {r.text}"
        assert r.json()["error"]["code"] == "not_found"
        assert r.json()["error"]["message"] == f"No schedule with id '{sid}'."
    assert world.other.get(f"{API}/schedules").json()["total"] == 0
    assert [i["schedule_id"] for i in world.admin.get(f"{API}/schedules").json()["items"]] == [sid]
    for method, path, body in routes:
        r = world.admin.request(method, path, json=body)
        assert r.status_code in (200, 202, 204), f"{method} {path}: {r.text}"
    r = world.owner.get(f"{API}/schedules/{sid}")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Schedule '{sid}' is deleted."


def test_list_pages_with_next(world: World) -> None:
    ids = [world.schedule(name=f"s{i}")["schedule_id"] for i in range(3)]
    first = world.owner.get(f"{API}/schedules", params={"limit": 2}).json()
    assert first["total"] == 3
    assert first["next"] == "/api/v1/schedules?offset=2&limit=2"
    second = world.owner.get(first["next"]).json()
    seen = [i["schedule_id"] for i in first["items"] + second["items"]]
    assert sorted(seen) == sorted(ids)
    mine = world.owner.get(f"{API}/schedules", params={"deployment": world.quiet}).json()
    assert mine["total"] == 0


def _settled(world: World, run: dict[str, Any]) -> dict[str, Any]:
    job = wait_job(world.owner, run["job_id"])
    out = schedule_runs.settle_run(world.container, run["run_id"])
    assert out["job_status"] == job["status"]
    return out


@pytest.mark.parametrize("kind", ["batch", "drift", "retrain"])
def test_run_now_starts_the_actions_job_and_records_it(world: World, kind: str) -> None:
    action: dict[str, Any] = {"kind": kind, "deployment": world.deployment}
    if kind == "batch":
        action["version_id"] = world.version_id
    if kind == "drift":
        action["window"] = "1d"
    item = world.schedule(action=action)
    r = world.owner.post(f"{API}/schedules/{item['schedule_id']}/run")
    assert r.status_code == 202, r.text
    run = r.json()
    assert (run["status"], run["trigger"], run["attempt"]) == ("running", "manual", 1)
    assert run["status_url"] == f"/api/v1/jobs/{run['job_id']}"
    assert run["message"] == f"Started {kind} job {run['job_id']}"
    done = _settled(world, run)
    assert done["status"] == "succeeded", done
    assert done["message"].startswith(f"Job {run['job_id']} succeeded")
    listed = world.runs(item["schedule_id"])
    assert [(x["run_id"], x["job_status"]) for x in listed] == [(run["run_id"], "succeeded")]
    job = world.owner.get(f"{API}/jobs/{run['job_id']}").json()
    expected = {
        "batch": "deployment.batch",
        "drift": "drift.report",
        "retrain": "deployment.retrain",
    }
    assert job["kind"] == expected[kind]


def test_run_that_cannot_start_is_failed_with_the_reason_and_a_retry(world: World) -> None:
    item = world.schedule(
        action={"kind": "drift", "deployment": world.quiet, "window": "1h"}, retry_backoff_s=30
    )
    r = world.owner.post(f"{API}/schedules/{item['schedule_id']}/run")
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["status"] == "failed"
    assert run["job_id"] is None
    assert run["error"]["code"] == "invalid_state"
    assert f"Deployment '{world.quiet}' logged no predictions" in run["message"]
    assert "attempt 1 of 3; retry at" in run["message"]
    runs = world.runs(item["schedule_id"])
    retry = runs[0]
    assert (retry["status"], retry["attempt"], retry["trigger"]) == ("pending", 2, "retry")
    wait = datetime.fromisoformat(retry["retry_at"]) - datetime.fromisoformat(run["finished_at"])
    assert wait.total_seconds() == pytest.approx(30, abs=1)


def test_retrain_action_starts_a_retrain_run_with_its_options(world: World) -> None:
    action = {
        "kind": "retrain",
        "deployment": world.deployment,
        "policy": "refit",
        "auto_promote": True,
        "margin": 0.5,
    }
    item = world.schedule(action=action)
    run = world.owner.post(f"{API}/schedules/{item['schedule_id']}/run").json()
    assert run["status"] == "running", run
    wait_job(world.owner, run["job_id"])
    r = world.owner.get(f"{API}/deployments/{world.deployment}/retrain-runs")
    assert r.status_code == 200, r.text
    (retrain,) = [x for x in r.json()["items"] if x["trigger_ref"] == item["schedule_id"]]
    assert (retrain["trigger"], retrain["policy"]) == ("schedule", "refit")
    assert (retrain["auto_promote"], retrain["margin"], retrain["job_id"]) == (
        True,
        0.5,
        run["job_id"],
    )


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"policy": "guess"}, "body.action.policy", "invalid_input"),
        ({"margin": -1}, "body.action.margin", "invalid_input"),
        ({"version_id": "x"}, "action.version_id", "invalid_action"),
        ({"window": "7d"}, "action.window", "invalid_action"),
    ],
    ids=["policy", "margin", "version", "window"],
)
def test_bad_retrain_options_are_422_naming_the_field(
    world: World, extra: dict[str, Any], field: str, code: str
) -> None:
    action = {"kind": "retrain", "deployment": world.deployment, **extra}
    r = world.owner.post(f"{API}/schedules", json={"cron": "0 6 * * *", "action": action})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    named = error["details"].get("parameter") or error["details"]["errors"][0]["location"]
    assert named == field
