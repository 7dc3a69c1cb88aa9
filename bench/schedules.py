"""Benchmark: what the scheduler costs per tick, on a SQLite data dir.

Times, on this machine, with a small model on credit_data deployed once:

- renewing the scheduler lease (one conditional UPDATE in its own transaction);
- an idle leader tick (lease renewal, the due-schedule query, following runs) with
  1,000 enabled schedules of which none is due;
- finding the latest fire time a per-minute schedule missed during a week of downtime
  (10,080 of them; only the last 6 hours are walked through APScheduler's CronTrigger);
- firing every schedule at once, two days late and beyond its grace (each claimed, moved
  on and recorded as a ``missed`` run; no job starts, so this is the scheduler's own cost).

Run ``python bench/schedules.py`` (writes bench/results/schedules.json); ``--quick``
uses 200 schedules.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUT = HERE / "results" / "schedules.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"


def _median_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_schedules = 200 if args.quick else 1000

    from sqlalchemy import update

    from narrate.bootstrap import build_container
    from narrate.config import load_settings
    from narrate.jobs.executors import InlineExecutor
    from narrate.services import datasets, deployments, models, schedules, training, users
    from narrate.services.schedule_runs import _latest_due, fire_due
    from narrate.services.scheduler import Scheduler, acquire_lease
    from narrate.storage.sql.tables import Schedule, utcnow
    from narrate.storage.sql.visibility import Owner

    tmp = Path(tempfile.mkdtemp(prefix="bench-schedules-"))
    settings = load_settings(data_dir=tmp, load_samples=False, job_warmup=False, scheduler=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    container.db.upgrade()
    admin = users.create_user(container.db, "admin", "bench-password-123", "admin")
    owner = Owner(admin.id, True)
    ds = datasets.ingest_file(
        container, admin.id, SAMPLES / "credit_data.csv", filename="credit.csv", target="Status"
    )
    options = {"time_budget_s": 5, "max_trials": 1, "families": ["baseline"]}
    model_id = training.start_training(container, owner, ds["id"], options)["model_id"]
    mv_id = models.get_model(container, owner, model_id)["versions"][0]["id"]
    deployments.create_deployment(container, owner, name="bench", model_version_id=mv_id)
    action = {"kind": "drift", "deployment": "bench", "window": "7d"}

    started = time.perf_counter()
    for i in range(n_schedules):
        schedules.create_schedule(
            container, owner, {"cron": f"{i % 60} {i % 24} * * *", "action": action}
        )
    create_s = time.perf_counter() - started

    results: dict[str, Any] = {"schedules": n_schedules, "database": "sqlite"}
    results["create_schedule_ms_each"] = round(create_s / n_schedules * 1000, 3)
    results["lease_renew_ms_median"] = _median_ms(
        lambda: acquire_lease(container.db, "bench", 30), 200
    )
    leader = Scheduler(container, tick_s=5, lease_s=30)
    results["idle_tick_ms_median"] = _median_ms(leader.tick, 50)

    week = schedules.create_schedule(container, owner, {"cron": "* * * * *", "action": action})
    with container.db.session() as s:
        row = s.get(Schedule, week["schedule_id"])
        assert row is not None
        s.expunge(row)
    due = row.next_run_at
    assert due is not None
    started = time.perf_counter()
    _, count, exact = _latest_due(row, due + timedelta(days=7))
    results["missed_week_per_minute"] = {
        "fire_times_walked": count,
        "count_exact": exact,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }

    with container.db.session() as s:  # every one beyond its grace: nothing starts
        s.execute(update(Schedule).values(misfire_grace_s=0))
    far = utcnow() + timedelta(days=2)
    started = time.perf_counter()
    counts = fire_due(container, far)
    fire_s = time.perf_counter() - started
    fired = sum(counts.values())
    results["fire_due_missed"] = {
        "schedules_due": fired,
        "outcomes": counts,
        "s": round(fire_s, 3),
        "ms_each": round(fire_s / max(fired, 1) * 1000, 3),
    }
    results["machine"] = {"python": platform.python_version(), "cpu": platform.processor()}
    container.close()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
