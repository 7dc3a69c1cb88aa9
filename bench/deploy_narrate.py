"""Narrate's side of the Deploy benchmark (bench/deploy.py): a real server, a deployment.

Starts ``narrate serve`` on a temp data dir with the bundled samples, signs in as the
first admin, trains and deploys a LightGBM model on credit_data, and runs batch jobs
while sampling the server's memory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from deploy_load import TreeSampler

__all__ = [
    "Narrate",
    "fit_rows",
    "free_port",
    "narrate_batches",
    "narrate_server",
    "ok",
    "train_and_deploy",
]


@dataclass(frozen=True)
class Narrate:
    """A running ``narrate serve``: its URL, the admin's token and its process id."""

    base_url: str
    token: str
    pid: int
    workers_flag: bool


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def narrate_server(tmp: Path, workers: int) -> Iterator[Narrate]:
    """Migrate a temp data dir, start ``narrate serve`` with the samples, sign in as admin.

    Args:
        tmp: A temp folder for the data dir and the server log.
        workers: Server processes, passed as ``--workers`` when the CLI has that option.

    Yields:
        The running server.
    """
    narrate = str(Path(sys.executable).parent / "narrate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env |= {
        "NARRATE_DATA_DIR": str(tmp / "data"),
        "NARRATE_LOAD_SAMPLES": "true",  # credit_data for the first admin
        "NARRATE_LOG_LEVEL": "WARNING",
        "NARRATE_MAX_UPLOAD_MB": "2000",
    }
    subprocess.run([narrate, "db", "upgrade"], env=env, check=True, capture_output=True)
    help_text = subprocess.run(
        [narrate, "serve", "--help"], env=env, capture_output=True, text=True, check=True
    ).stdout
    has_workers = "--workers" in help_text
    port = free_port()
    log = tmp / "narrate-serve.log"
    cmd = [narrate, "serve", "--port", str(port)]
    if has_workers:
        cmd += ["--workers", str(workers)]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=fh)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_live(base + "/health/live", proc, log)
        password = log.read_text().split("password: ", 1)[1].split()[0]
        token = httpx.post(
            base + "/api/v1/auth/token", data={"username": "admin", "password": password}
        ).json()["access_token"]
        yield Narrate(base, token, proc.pid, has_workers)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _wait_live(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"narrate serve did not start:\n{tail}") from exc
            time.sleep(0.1)


def _job(client: httpx.Client, job_id: str, timeout_s: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job['status']} after {timeout_s} s")
        time.sleep(0.2)  # each poll costs the server a request: don't measure the polling


def ok(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; anything else raises with the status and body."""
    if response.is_error:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:2000]}"
        )
    return response.json()


def train_and_deploy(client: httpx.Client, budget_s: int) -> dict[str, Any]:
    """Train LightGBM on credit_data, deploy the version and make a prediction key.

    Args:
        client: Signed in as the admin.
        budget_s: The training time budget in seconds.

    Returns:
        ``model_version_id``, ``key``, the training seconds, the model family and its
        parameters.
    """
    datasets = ok(client.get("/api/v1/datasets"))["items"]
    credit = next(d for d in datasets if d["name"] == "credit_data")
    version_id = credit.get("current_version_id") or credit["version_id"]
    started = time.perf_counter()
    body = {
        "version_id": version_id,
        "time_budget_s": budget_s,
        "options": {"families": ["lightgbm"], "seed": 0},
    }
    training = ok(client.post("/api/v1/models/train", json=body))
    job = _job(client, training["job_id"])
    if job["status"] != "succeeded":
        raise RuntimeError(f"training {job['status']}: {job.get('error')}")
    train_s = time.perf_counter() - started
    model_id = training["model_id"]
    model = ok(client.get(f"/api/v1/models/{model_id}"))
    mv_id = model["current_version_id"]
    deployment = ok(
        client.post("/api/v1/deployments", json={"name": "bench", "model_version_id": mv_id})
    )
    key = ok(client.post("/api/v1/deployments/bench/keys", json={"name": "bench"}))["key"]
    version = ok(client.get(f"/api/v1/model-versions/{mv_id}"))
    return {
        "model_id": model_id,
        "model_version_id": mv_id,
        "train_s": round(train_s, 1),
        "family": version.get("family"),
        "params": (version.get("params") or {}).get("params"),
        "deployment": {k: deployment.get(k) for k in ("name", "status", "model_version_id")},
        "key": key,
    }


_WORDS = {"yes": True, "no": False, "true": True, "false": False, "1": True, "0": False}


def fit_rows(
    client: httpx.Client, key: dict[str, str], rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The rows Narrate is sent (raw when it takes them) and the rows in training types.

    A raw CSV row is what a client has, so Narrate gets raw rows unless it refuses them.
    A model served as it is (MLflow) gets no such parsing: text such as "yes"/"no" in a
    column the model was trained on as boolean would be scored silently wrong, so MLflow
    and the batch files get the rows with boolean columns as true/false.

    Args:
        client: Signed in to the server.
        key: The deployment key's Authorization header.
        rows: Raw rows as read from the CSV.

    Returns:
        The rows for Narrate's predict route, the typed rows and notes on what was changed.
    """
    signature = ok(client.get("/api/v1/deployments/bench/signature"))["signature"]
    booleans = [c["name"] for c in signature["columns"] if c["type"] == "boolean"]
    typed = [
        {
            k: _WORDS.get(v.strip().lower(), v) if k in booleans and isinstance(v, str) else v
            for k, v in row.items()
        }
        for row in rows
    ]
    notes = (
        [
            f"boolean column(s) {', '.join(booleans)} sent as true/false to MLflow and in "
            "the batch files (as the model was trained)"
        ]
        if booleans
        else []
    )
    url = "/api/v1/deployments/bench/predict"
    first = client.post(url, json={"rows": rows[:50]}, headers=key)
    if first.status_code == 200:
        return rows, typed, [*notes, "Narrate's predict route is sent the raw CSV values"]
    ok(client.post(url, json={"rows": typed[:50]}, headers=key))  # raises if still refused
    error = first.json()["error"]
    refused = f"Narrate refused raw rows ({first.status_code} {error['code']}: {error['message']})"
    return typed, typed, [*notes, f"{refused}; it is sent the typed rows too"]


def narrate_batch(client: httpx.Client, headers: dict[str, str], file: Path, pid: int) -> Any:
    """Score a Parquet file with a batch job; rows/s and the server's peak memory.

    Args:
        client: A client for the server.
        headers: The deployment key's Authorization header.
        file: The rows to score.
        pid: The server's process id (its tree's memory is sampled while the job runs).

    Returns:
        Row counts, seconds (job start to finish and the client's wall time), rows/s and
        resident memory (before, peak of the tree, peak of one process).
    """
    rows = len(pd.read_parquet(file, columns=["Age"]))
    sampler = TreeSampler(pid)
    before_kb, _ = sampler.snapshot()
    started = time.perf_counter()
    with sampler, file.open("rb") as fh:
        accepted = ok(
            client.post(
                "/api/v1/deployments/bench/batch",
                files={"file": (file.name, fh, "application/octet-stream")},
                headers=headers,
            )
        )
        job = _job(client, accepted["job_id"])
    wall = time.perf_counter() - started
    if job["status"] != "succeeded":
        raise RuntimeError(f"batch job {job['status']}: {job.get('error')}")
    start = datetime.fromisoformat(job["started_at"])
    job_s = (datetime.fromisoformat(job["finished_at"]) - start).total_seconds()
    output = client.get(f"/api/v1/jobs/{accepted['job_id']}/output", params={"format": "parquet"})
    output_rows = None
    if output.status_code == 200:
        out_file = file.with_suffix(".out.parquet")
        out_file.write_bytes(output.content)
        output_rows = len(pd.read_parquet(out_file))
        out_file.unlink()
    return {
        "rows": rows,
        "file_mb": round(file.stat().st_size / 1e6, 1),
        "job_s": round(job_s, 2),
        "rows_per_s": round(rows / job_s),
        "wall_s": round(wall, 2),
        "rows_per_s_wall": round(rows / wall),
        "output_status": output.status_code,
        "output_rows": output_rows,
        "rss_before_mb": round(before_kb / 1024, 1),
        "peak_rss_mb": round(sampler.peak_total_kb / 1024, 1),
        "peak_rss_growth_mb": round((sampler.peak_total_kb - before_kb) / 1024, 1),
        "peak_process_rss_mb": round(sampler.peak_process_kb / 1024, 1),
    }


def narrate_batches(
    client: httpx.Client, key: dict[str, str], files: dict[str, Path], pid: int
) -> dict[str, Any]:
    """The batch job on a fifth of the rows, then on all rows, and how memory grew.

    Memory bounded by the chunk size means the peak on all rows is about the peak on a
    fifth of them. Each job's growth is counted from the server tree's resident memory
    just before that job: job worker processes are pooled and keep what an earlier job
    allocated (with ``--workers N`` the two jobs may even run in different pools), so
    counting both from before the first job would charge the second with the first's
    leftovers. The growth of both from before the first job is kept too.

    Args:
        client: Signed in to the server.
        key: The deployment key's Authorization header.
        files: ``fifth`` and ``full`` Parquet files.
        pid: The server's process id.

    Returns:
        ``batch_fifth``, ``batch`` (all rows) and ``batch_memory``.
    """
    print("== narrate batch", flush=True)
    baseline_kb, _ = TreeSampler(pid).snapshot()
    fifth = narrate_batch(client, key, files["fifth"], pid)
    full = narrate_batch(client, key, files["full"], pid)
    since_first = {
        name: (run["peak_rss_mb"] - baseline_kb / 1024)
        for name, run in (("fifth", fifth), ("full", full))
    }
    own = {"fifth": fifth["peak_rss_growth_mb"], "full": full["peak_rss_growth_mb"]}
    return {
        "batch_fifth": fifth,
        "batch": full,
        "batch_memory": {
            "rss_before_batches_mb": round(baseline_kb / 1024, 1),
            "peak_growth_fifth_mb": round(own["fifth"], 1),
            "peak_growth_full_mb": round(own["full"], 1),
            "growth_ratio": round(own["full"] / own["fifth"], 2) if own["fifth"] > 0 else None,
            "peak_growth_since_first_job_mb": {k: round(v, 1) for k, v in since_first.items()},
            "peak_process_rss_mb": {
                "fifth": fifth.get("peak_process_rss_mb"),
                "full": full.get("peak_process_rss_mb"),
            },
        },
    }
