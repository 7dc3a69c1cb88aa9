"""`narrate serve --workers 2` and the operations metrics: prediction counters answered by
either process are summed by whichever process answers /metrics, and the figures read
from the database are exported once, not once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import SAMPLES
from tests.support.api import train_lightgbm, upload_sample
from tests.support.servers import free_port, wait_http

pytestmark = pytest.mark.e2e

TARGET = "Status"


def _writers(metrics_dir: Path, metric: str) -> set[str]:
    """The processes (pids) whose counter file holds samples of ``metric``."""
    found = set()
    for path in metrics_dir.glob("counter_*.db"):
        for key, _value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[0] == metric:
                found.add(path.stem.rsplit("_", 1)[1])
    return found


def _samples(base: str) -> list[tuple[str, dict[str, str], float]]:
    text = httpx.get(f"{base}/metrics").text
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _counted(base: str, metric: str) -> float:
    """The sum of ``metric`` over the deployment's series in one scrape."""
    return sum(
        v for name, labels, v in _samples(base) if name == metric and labels["deployment"] == "mp"
    )


def _rows() -> list[list[dict[str, Any]]]:
    frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET]).head(400)
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    return [rows[i : i + 1] if i % 2 else rows[i : i + 3] for i in range(0, 400, 3)]


def test_two_processes_sum_predictions_and_export_database_figures_once(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATE_", "PROMETHEUS_"))}
    env |= {
        "NARRATE_DATA_DIR": str(data),
        "NARRATE_JOB_WORKERS": "1",
        "NARRATE_JOB_WARMUP": "false",
        "NARRATE_LOAD_SAMPLES": "false",
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
    try:
        wait_http(f"{base}/health/live", timeout=240)
        password = (tmp_path / "serve.log").read_text().split("password: ", 1)[1].split()[0]
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "admin", "password": password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            version = upload_sample(client, "credit_data.csv", TARGET)["version"]["id"]
            _, mv = train_lightgbm(client, version, TARGET)
            r = client.post("/api/v1/deployments", json={"name": "mp", "model_version_id": mv})
            assert r.status_code == 201, r.text

        def one(rows: list[dict[str, Any]]) -> int:
            # A new connection each time, so the kernel may hand it to either process.
            r = httpx.post(
                f"{base}/api/v1/deployments/mp/predict", json={"rows": rows}, headers=headers
            )
            assert r.status_code == 200, r.text
            return len(r.json()["predictions"])

        metrics_dir = data / "run" / "metrics"
        sent = requests = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):  # until both processes have answered predictions
                batches = _rows()
                sent += sum(pool.map(one, batches))
                requests += len(batches)
                time.sleep(1.5)  # counts reach the folder within a second
                if len(_writers(metrics_dir, "narrate_predictions")) >= 2:
                    break
        assert len(_writers(metrics_dir, "narrate_predictions")) >= 2

        # Each process moves its counts into the shared folder at least every second.
        deadline = time.monotonic() + 10
        while _counted(base, "narrate_predictions_total") != sent:
            assert time.monotonic() < deadline, "the processes' counts never added up"
            time.sleep(0.2)
        for _ in range(4):  # whichever process answers, the same sums
            samples = _samples(base)
            assert _counted(base, "narrate_predictions_total") == sent
            assert _counted(base, "narrate_prediction_request_seconds_count") == requests
            # A database figure: one sample, the true count, not one per process.
            active = [
                v
                for name, labels, v in samples
                if name == "narrate_deployments" and labels == {"status": "active"}
            ]
            assert active == [1.0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
