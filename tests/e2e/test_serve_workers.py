"""`narrate serve --workers 2`: two server processes on one port, one metrics view,
a killed process replaced, and nothing left behind after a stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.support.servers import child_pids, free_port, is_gone, wait_http

pytestmark = pytest.mark.e2e


def _server_pids(parent: int) -> set[int]:
    """uvicorn's worker processes: the spawned children that are not the resource tracker."""
    found = set()
    for pid in child_pids(parent):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.add(pid)
    return found


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in child_pids(todo.pop()):
            found.add(child)
            todo.append(child)
    return found


def _requests_counted(base: str, route: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    labels = f'method="GET",route="{re.escape(route)}",status="200"'
    pattern = rf"narrate_http_requests_total\{{{labels}\}} (\S+)"
    return sum(float(m) for m in re.findall(pattern, text))


def test_two_server_processes_share_the_port_and_the_metrics(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATE_", "PROMETHEUS_"))}
    env |= {
        "NARRATE_DATA_DIR": str(data),
        "NARRATE_JOB_WORKERS": "1",
        "NARRATE_JOB_WARMUP": "false",
    }
    subprocess.run(
        [str(bin_dir / "narrate"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(bin_dir / "narrate"), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    everything: set[int] = set()
    try:
        wait_http(f"{base}/health/live", timeout=240)
        deadline = time.monotonic() + 60
        while len(_server_pids(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the second server process never started"
            time.sleep(0.2)
        first = _server_pids(proc.pid)
        assert len(first) == 2
        password = (tmp_path / "serve.log").read_text().split("password: ", 1)[1].split()[0]
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "admin", "password": password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def one(_: int) -> int:
            # A new connection each time, so the kernel may hand it to either process.
            return httpx.get(f"{base}/api/v1/datasets", headers=headers).status_code

        metrics_dir = data / "run" / "metrics"
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):  # until both processes have answered some of them
                assert set(pool.map(one, range(40))) == {200}
                sent += 40
                writers = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
                if len(writers) >= 2:
                    break
        assert len(writers) >= 2, f"one process answered everything: {writers}"
        # Whichever process answers /metrics sums what both counted.
        assert _requests_counted(base, "/api/v1/datasets") == sent

        # A process that dies is replaced, and the port keeps answering meanwhile.
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = _server_pids(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"the killed process was not replaced: {now}"
            time.sleep(0.2)
        assert one(0) == 200
        everything = _descendants(proc.pid)
    finally:
        proc.terminate()  # SIGTERM, as a service manager stops it
        proc.wait(timeout=30)
        log.close()
    deadline = time.monotonic() + 15
    while not all(is_gone(pid) for pid in everything):
        left = [pid for pid in everything if not is_gone(pid)]
        assert time.monotonic() < deadline, f"processes outlived the server: {left}"
        time.sleep(0.1)
