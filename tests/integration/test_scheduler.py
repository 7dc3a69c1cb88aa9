"""The scheduler on SQLite and PostgreSQL: one leader by lease among several schedulers on
one database (and a take-over when the leader stops), firing due schedules into runs and
jobs, pause, the missed-run policy (coalesce within the grace, ``missed`` beyond) and
retries with backoff. Time is the tests' own clock, passed to each tick."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.conftest import backend_url
from tests.support.api import wait_job
from tests.support.schedule_world import API, World, schedule_world

from narrate.services.scheduler import Scheduler, acquire_lease, lease_holder


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("scheduler")
    with schedule_world(backend_url(request, tmp), tmp) as w:
        yield w


@pytest.fixture(autouse=True)
def _forget(world: World) -> Iterator[None]:
    yield
    world.forget()


def _scheduler(world: World) -> Scheduler:
    return Scheduler(world.container, tick_s=1, lease_s=30)


def _due(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["next_run_at"])


def test_only_one_of_two_schedulers_fires_a_due_schedule(world: World) -> None:
    first, second = _scheduler(world), _scheduler(world)
    item = world.schedule()
    at = _due(item) + timedelta(seconds=1)
    outcomes = [first.tick(at), second.tick(at), first.tick(at), second.tick(at)]
    assert [o["leader"] for o in outcomes] == [True, False, True, False]
    assert outcomes[0]["fired"] == {"fired": 1}
    assert outcomes[2]["fired"] == {}
    runs = world.runs(item["schedule_id"])
    assert len(runs) == 1
    assert (runs[0]["trigger"], runs[0]["status"]) == ("cron", "running")
    assert datetime.fromisoformat(runs[0]["scheduled_for"]) == _due(item)
    assert lease_holder(world.container.db)["holder"] == first.holder  # type: ignore[index]


def test_another_scheduler_takes_over_after_the_lease_expires(world: World) -> None:
    leader, standby = _scheduler(world), _scheduler(world)
    item = world.schedule(cron="0 * * * *")
    now = _due(item) - timedelta(minutes=30)
    assert leader.tick(now)["leader"] is True
    # The leader dies (it stops renewing): the lease holds until it expires.
    assert standby.tick(now + timedelta(seconds=29))["leader"] is False
    assert standby.tick(now + timedelta(seconds=31))["leader"] is True
    assert leader.tick(now + timedelta(seconds=32))["leader"] is False
    # The new leader fires the schedule when it comes due.
    out = standby.tick(_due(item) + timedelta(seconds=2))
    assert out["fired"] == {"fired": 1}
    assert len(world.runs(item["schedule_id"])) == 1


def test_a_leader_that_stops_cleanly_hands_over_at_once(world: World) -> None:
    leader, standby = _scheduler(world), _scheduler(world)
    now = datetime.fromisoformat(world.schedule()["next_run_at"]) - timedelta(seconds=30)
    assert leader.tick(now)["leader"] is True
    leader.stop()
    # The released lease is expired as of the real clock; the standby's tick is later.
    assert standby.tick(now + timedelta(days=1))["leader"] is True


def _race(db: Any, name: str, now: datetime, barrier: threading.Barrier, won: list[str]) -> None:
    barrier.wait()
    if acquire_lease(db, name, 30, now):
        won.append(name)


def test_racing_schedulers_take_an_expired_lease_once(world: World) -> None:
    db = world.container.db
    at = datetime.fromisoformat(world.schedule()["next_run_at"]) + timedelta(days=2)
    for round_ in range(5):
        now = at + timedelta(minutes=round_)  # each round finds the last lease expired
        barrier = threading.Barrier(4)
        won: list[str] = []
        threads = [
            threading.Thread(target=_race, args=(db, f"p{i}-{round_}", now, barrier, won))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, won


def test_fired_run_follows_its_job_to_success(world: World) -> None:
    scheduler = _scheduler(world)
    item = world.schedule()
    at = _due(item) + timedelta(seconds=1)
    scheduler.tick(at)
    run = world.runs(item["schedule_id"])[0]
    wait_job(world.owner, run["job_id"])
    scheduler.tick(at + timedelta(seconds=1))
    run = world.runs(item["schedule_id"])[0]
    assert (run["status"], run["job_status"]) == ("succeeded", "succeeded")
    assert run["message"].startswith(f"Job {run['job_id']} succeeded")
    after = world.owner.get(f"{API}/schedules/{item['schedule_id']}").json()
    assert after["last_run_at"] == item["next_run_at"]
    assert _due(after) == _due(item) + timedelta(minutes=1)


def test_paused_schedule_does_not_fire(world: World) -> None:
    scheduler = _scheduler(world)
    item = world.schedule()
    world.owner.post(f"{API}/schedules/{item['schedule_id']}/pause")
    out = scheduler.tick(_due(item) + timedelta(minutes=5))
    assert out["fired"] == {}
    assert world.runs(item["schedule_id"]) == []


def test_missed_beyond_the_grace_is_recorded_not_run(world: World) -> None:
    scheduler = _scheduler(world)
    item = world.schedule(cron="0 * * * *", misfire_grace_s=600)
    late = _due(item) + timedelta(minutes=20)
    assert scheduler.tick(late)["fired"] == {"missed": 1}
    (run,) = world.runs(item["schedule_id"])
    assert (run["status"], run["job_id"]) == ("missed", None)
    assert "beyond the grace of 600 s" in run["message"]
    assert "1 fire time(s) skipped" in run["message"]
    after = world.owner.get(f"{API}/schedules/{item['schedule_id']}").json()
    assert _due(after) == _due(item) + timedelta(hours=1)


def test_missed_times_within_the_grace_are_coalesced_into_one_run(world: World) -> None:
    scheduler = _scheduler(world)
    item = world.schedule(misfire_grace_s=3600)
    late = _due(item) + timedelta(minutes=5, seconds=10)
    assert scheduler.tick(late)["fired"] == {"fired": 1}
    (run,) = world.runs(item["schedule_id"])
    assert run["status"] == "running"
    assert datetime.fromisoformat(run["scheduled_for"]) == _due(item) + timedelta(minutes=5)
    after = world.owner.get(f"{API}/schedules/{item['schedule_id']}").json()
    assert _due(after) == _due(item) + timedelta(minutes=6)
    wait_job(world.owner, run["job_id"])


def test_failed_job_is_retried_with_backoff_until_retries_run_out(world: World) -> None:
    """A credit model cannot score the hitters file: each attempt's job fails."""
    scheduler = _scheduler(world)
    action = {
        "kind": "batch",
        "deployment": world.deployment,
        "version_id": world.hitters_version_id,
    }
    item = world.schedule(action=action, max_retries=2, retry_backoff_s=10)
    now = _due(item) + timedelta(seconds=1)
    scheduler.tick(now)
    for attempt in (1, 2, 3):
        run = next(r for r in world.runs(item["schedule_id"]) if r["attempt"] == attempt)
        assert run["status"] == "running", run
        job = wait_job(world.owner, run["job_id"])
        assert job["status"] == "failed"
        now += timedelta(seconds=1)
        scheduler.tick(now)  # the attempt fails; a retry is queued while retries are left
        run = next(r for r in world.runs(item["schedule_id"]) if r["attempt"] == attempt)
        assert run["status"] == "failed"
        assert run["message"].startswith("Job failed: ")
        if attempt == 3:
            assert "(attempt 3; no retries left)" in run["message"]
            break
        retry = next(r for r in world.runs(item["schedule_id"]) if r["attempt"] == attempt + 1)
        wait = datetime.fromisoformat(retry["retry_at"]) - now
        assert wait == timedelta(seconds=10 * 2 ** (attempt - 1))
        assert scheduler.tick(now + wait - timedelta(seconds=1))["moved"] == 0
        now += wait
        scheduler.tick(now)  # the retry starts
    runs = world.runs(item["schedule_id"])
    assert [(r["attempt"], r["status"], r["trigger"]) for r in runs] == [
        (3, "failed", "retry"),
        (2, "failed", "retry"),
        (1, "failed", "cron"),
    ]
    assert len({r["scheduled_for"] for r in runs}) == 1
    page = world.owner.get(f"{API}/schedules/{item['schedule_id']}/runs", params={"limit": 2})
    assert (page.json()["total"], len(page.json()["items"])) == (3, 2)
    assert page.json()["next"] == f"/api/v1/schedules/{item['schedule_id']}/runs?offset=2&limit=2"
    last = world.owner.get(page.json()["next"]).json()
    assert [r["attempt"] for r in last["items"]] == [1]
    assert last["next"] is None


def test_run_left_starting_by_a_dead_process_is_failed_as_interrupted(world: World) -> None:
    from narrate.services.schedule_runs import STUCK_AFTER
    from narrate.storage.sql.tables import ScheduleRun

    item = world.schedule(cron="0 0 1 1 *")
    created = datetime.fromisoformat(item["created_at"])
    with world.container.db.session() as s:  # what a crash between two writes leaves
        s.add(
            ScheduleRun(
                schedule_id=item["schedule_id"],
                owner_id=world.owner_id,
                scheduled_for=created,
                status="starting",
                created_at=created,
            )
        )
    scheduler = _scheduler(world)
    assert scheduler.tick(created + STUCK_AFTER - timedelta(seconds=1))["moved"] == 0
    assert scheduler.tick(created + STUCK_AFTER + timedelta(seconds=1))["moved"] == 1
    (run,) = world.runs(item["schedule_id"])
    assert (run["status"], run["error"]["code"]) == ("failed", "interrupted")
    assert run["message"].startswith("Interrupted: the server process handling this run stopped")


def test_the_recovery_sweep_fails_a_running_run_whose_job_was_never_recorded(
    world: World,
) -> None:
    from narrate.jobs.records import STALE_AFTER_S
    from narrate.services.recovery import recover_jobs
    from narrate.storage.sql.tables import ScheduleRun

    item = world.schedule(cron="0 0 1 1 *")
    started = datetime.fromisoformat(item["created_at"])
    with world.container.db.session() as s:  # a job id whose row never made it
        s.add(
            ScheduleRun(
                schedule_id=item["schedule_id"],
                owner_id=world.owner_id,
                scheduled_for=started,
                status="running",
                job_id="0" * 32,
                started_at=started,
                created_at=started,
            )
        )
    recover_jobs(world.container, now=started + timedelta(seconds=STALE_AFTER_S - 1))
    assert world.runs(item["schedule_id"])[0]["status"] == "running"  # may appear yet
    recover_jobs(world.container, now=started + timedelta(seconds=STALE_AFTER_S + 1))
    (run,) = world.runs(item["schedule_id"])
    assert (run["status"], run["error"]["code"]) == ("failed", "interrupted")


def test_a_week_of_missed_minutes_is_one_missed_run(world: World) -> None:
    scheduler = _scheduler(world)
    item = world.schedule(misfire_grace_s=30)
    week_later = _due(item) + timedelta(days=7, seconds=45)
    assert scheduler.tick(week_later)["fired"] == {"missed": 1}
    (run,) = world.runs(item["schedule_id"])
    assert run["status"] == "missed"
    assert datetime.fromisoformat(run["scheduled_for"]) == _due(item) + timedelta(days=7)
    assert f"+ (since {_due(item).isoformat()}) fire time(s) skipped" in run["message"]


def test_an_action_that_crashes_fails_the_run_with_a_reference(world: World) -> None:
    """A stored action this version cannot read (edited by hand, or written by another
    version) must not leave its run 'starting' or stop the tick."""
    from sqlalchemy import update

    from narrate.storage.sql.tables import Schedule

    item = world.schedule(max_retries=0)
    with world.container.db.session() as s:
        s.execute(
            update(Schedule)
            .where(Schedule.id == item["schedule_id"])
            .values(action={"kind": "batch", "deployment": world.deployment})
        )
    out = _scheduler(world).tick(_due(item) + timedelta(seconds=1))
    assert out["fired"] == {"fired": 1}
    (run,) = world.runs(item["schedule_id"])
    assert (run["status"], run["error"]["code"]) == ("failed", "internal_error")
    assert run["message"].startswith("Could not start: KeyError: 'version_id'")
    assert len(run["error"]["details"]["reference"]) == 12
