"""Helpers for tests that drive the API over real HTTP: upload a bundled sample, wait for a job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import SAMPLES

__all__ = ["FINISHED", "train_lightgbm", "train_quickly", "upload_sample", "wait_job"]

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


def upload_sample(client: httpx.Client, name: str, target: str) -> dict[str, Any]:
    """Upload ``src/narrate/samples/<name>`` with ``target`` set; returns the 201 body."""
    r = client.post(
        "/api/v1/datasets",
        files={"file": (name, (SAMPLES / name).read_bytes())},
        data={"target": target},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def wait_job(
    client: httpx.Client,
    job_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda job: job["status"] in FINISHED,
    timeout: float = 180,
) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` until ``done(job)`` (default: the job finished)."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = dict(client.get(f"/api/v1/jobs/{job_id}").json())
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach the expected state: {job}")


def train_quickly(client: httpx.Client, dataset_id: str, **extra: Any) -> str:
    """Train a small model (baseline + linear, 3 trials) and wait; returns its model id."""
    r = client.post(
        "/api/v1/models",
        json={
            "dataset_id": dataset_id,
            "time_budget_s": 15,
            "max_trials": 3,
            "families": ["baseline", "linear"],
            "ensembles": False,
            **extra,
        },
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return str(r.json()["model_id"])


def train_lightgbm(client: httpx.Client, version_id: str, target: str) -> tuple[str, str]:
    """Train a small LightGBM model (2 trials, no ensembles) on a dataset version and wait;
    returns the model id and its version id."""
    r = client.post(
        "/api/v1/models/train",
        json={
            "version_id": version_id,
            "target": target,
            "time_budget_s": 20,
            "options": {"max_trials": 2, "families": ["lightgbm"], "ensembles": False},
        },
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    model_id = str(r.json()["model_id"])
    return model_id, str(client.get(f"/api/v1/models/{model_id}").json()["current_version_id"])
