"""Start a real `narrate serve` on a fresh data dir for a benchmark, signed in as admin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["RunningServer", "running_server"]


@dataclass(frozen=True)
class RunningServer:
    """Where the server listens and a bearer token for its first admin."""

    base_url: str
    token: str
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(**settings: str) -> Iterator[RunningServer]:
    """Migrate a temp data dir, start `narrate serve` on a free port, yield, stop it.

    Args:
        settings: Extra NARRATE_* settings, e.g. ``MAX_UPLOAD_MB="2000"``.
    """
    narrate = str(Path(sys.executable).parent / "narrate")
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
        env |= {
            "NARRATE_DATA_DIR": str(Path(tmp) / "data"),
            "NARRATE_LOAD_SAMPLES": "false",
            "NARRATE_LOG_LEVEL": "WARNING",
        }
        env |= {f"NARRATE_{k.upper()}": v for k, v in settings.items()}
        subprocess.run([narrate, "db", "upgrade"], env=env, check=True, capture_output=True)
        port = _free_port()
        log = Path(tmp) / "serve.log"
        with log.open("w") as fh:
            proc = subprocess.Popen(
                [narrate, "serve", "--port", str(port)], env=env, stdout=fh, stderr=fh
            )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    httpx.get(base + "/health/live", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            password = log.read_text().split("password: ", 1)[1].split()[0]
            token = httpx.post(
                base + "/api/v1/auth/token", json={"username": "admin", "password": password}
            ).json()["access_token"]
            yield RunningServer(base, token, Path(tmp) / "data")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
