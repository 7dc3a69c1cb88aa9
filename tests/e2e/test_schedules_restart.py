"""Schedules survive a restart of a real `narrate serve`: a per-minute schedule created on
one server fires after the server is stopped and started again (with two processes the
second time, so the lease decides which one fires, and each fire time runs once)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.api import train_quickly, wait_job
from tests.support.servers import free_port, wait_http

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


class Serve:
    """One `narrate serve` subprocess on a fresh port."""

    def __init__(self, env: dict[str, str], log: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("a")
        self.proc = subprocess.Popen(
            [str(BIN / "narrate"), "serve", "--port", str(self.port), *extra],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.base}/health/live", timeout=120)

    def client(self, token: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM, as a service manager stops it
        self.proc.wait(timeout=30)
        self.log.close()


def _runs(client: httpx.Client, schedule_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/schedules/{schedule_id}/runs", params={"limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_schedule_created_before_a_restart_fires_after_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env |= {
        "NARRATE_DATA_DIR": str(tmp_path / "data"),
        "NARRATE_JOB_WORKERS": "1",
        "NARRATE_SCHEDULER_TICK_S": "0.5",
        "NARRATE_SCHEDULER_LEASE_S": "3",
    }
    subprocess.run(
        [str(BIN / "narrate"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    log = tmp_path / "serve.log"
    first = Serve(env, log)
    try:
        password = log.read_text().split("password: ", 1)[1].split()[0]
        token = httpx.post(
            f"{first.base}/api/v1/auth/token", json={"username": "admin", "password": password}
        ).json()["access_token"]
        with first.client(token) as client:
            items = client.get("/api/v1/datasets").json()["items"]
            credit = next(d for d in items if d["name"] == "credit_data")
            model_id = train_quickly(client, credit["id"])
            mv = client.get(f"/api/v1/models/{model_id}").json()["current_version_id"]
            r = client.post("/api/v1/deployments", json={"name": "credit", "model_version_id": mv})
            assert r.status_code == 201, r.text
            version_id = credit["version_id"]
            body = {
                "cron": "* * * * *",
                "action": {"kind": "batch", "deployment": "credit", "version_id": version_id},
            }
            r = client.post("/api/v1/schedules", json=body)
            assert r.status_code == 201, r.text
            schedule_id = r.json()["schedule_id"]
    finally:
        first.stop()
    restarted_at = datetime.now(UTC)
    second = Serve(env, log, "--workers", "2")
    try:
        with second.client(token) as client:
            assert client.get(f"/api/v1/schedules/{schedule_id}").json()["cron"] == "* * * * *"
            deadline = time.monotonic() + 150
            fired: list[dict[str, Any]] = []
            while not fired:
                assert time.monotonic() < deadline, _runs(client, schedule_id)
                fired = [
                    r
                    for r in _runs(client, schedule_id)
                    if r["started_at"] and datetime.fromisoformat(r["started_at"]) > restarted_at
                ]
                time.sleep(0.5)
            run = fired[0]
            assert run["trigger"] == "cron"
            job = wait_job(client, run["job_id"])
            assert job["status"] == "succeeded", job
            assert job["kind"] == "deployment.batch"
            # The leader closes the run once its job has ended.
            deadline = time.monotonic() + 30
            while (
                next(r for r in _runs(client, schedule_id) if r["run_id"] == run["run_id"])[
                    "status"
                ]
                != "succeeded"
            ):
                assert time.monotonic() < deadline, _runs(client, schedule_id)
                time.sleep(0.5)
            runs = _runs(client, schedule_id)
            once = Counter((r["scheduled_for"], r["attempt"]) for r in runs)
            assert max(once.values()) == 1, runs
    finally:
        second.stop()
