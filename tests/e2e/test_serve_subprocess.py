"""`narrate serve` as a real subprocess: migrations, first admin, samples, readiness."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.support.servers import child_pids, free_port, wait_http

pytestmark = pytest.mark.e2e


def test_serve_creates_admin_prints_password_and_becomes_ready(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env |= {"NARRATE_DATA_DIR": str(tmp_path / "data"), "NARRATE_JOB_WORKERS": "1"}
    subprocess.run(
        [str(bin_dir / "narrate"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(bin_dir / "narrate"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/live", timeout=120)
        r = httpx.get(f"http://127.0.0.1:{port}/health/ready")
        assert r.status_code == 200, r.text
        assert [c["status"] for c in r.json()["checks"]] == ["ok", "ok"]
        out = (tmp_path / "serve.log").read_text()
        password = out.split("password: ", 1)[1].split()[0]
        token = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            json={"username": "admin", "password": password},
        ).json()["access_token"]
        datasets = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/datasets", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert {d["name"] for d in datasets["items"]} == {"penguins", "credit_data", "hitters"}
        workers = child_pids(proc.pid)
        assert workers, "the job worker pool was not started"
    finally:
        proc.terminate()  # SIGTERM, as a service manager stops it
        proc.wait(timeout=20)
        log.close()
    # The job workers end with the server instead of lingering as orphans.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, f"worker processes outlived the server: {workers}"
        time.sleep(0.1)


def test_serve_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(tmp_path / "data")
    started = time.monotonic()
    r = subprocess.run(
        [str(Path(sys.executable).parent / "narrate"), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "narrate db upgrade" in r.stderr
    assert time.monotonic() - started < 120
