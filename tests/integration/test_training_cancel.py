"""Cancelling a training job over real HTTP keeps the best model found so far."""

from __future__ import annotations

from typing import Any

import httpx
from tests.support.api import FINISHED, upload_sample, wait_job


def _leaderboard_size(job: dict[str, Any]) -> int:
    boards = [(e.get("data") or {}).get("leaderboard") or [] for e in job.get("events", [])]
    return max((len(b) for b in boards), default=0)


def test_cancel_during_search_keeps_the_best_model_so_far(client: httpx.Client) -> None:
    d = upload_sample(client, "credit_data.csv", "Status")
    r = client.post(
        "/api/v1/models/train",
        json={
            "version_id": d["version_id"],
            "target": "Status",
            "time_budget_s": 120,
            "options": {"families": ["baseline", "linear", "lightgbm"], "n_jobs": 1},
        },
    )
    assert r.status_code == 202, r.text
    job_id, model_id = r.json()["job_id"], r.json()["model_id"]
    # Wait until the live leaderboard holds at least two candidates, then cancel.
    wait_job(
        client,
        job_id,
        lambda j: j["status"] == "running" and _leaderboard_size(j) >= 2,
    )
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code in (200, 202)
    job = wait_job(client, job_id, lambda j: j["status"] in FINISHED, timeout=120)
    assert job["status"] == "cancelled", job
    assert "best so far" in job["message"]
    assert job["result"]["partial"] is True and job["result"]["model_version_id"]
    m = client.get(f"/api/v1/models/{model_id}").json()
    assert m["status"] == "ready" and len(m["versions"]) == 1
    mv = client.get(f"/api/v1/model-versions/{m['current_version_id']}").json()
    assert mv["leaderboard"] and mv["cv_score"] == mv["leaderboard"][0]["cv_score_mean"]
    assert mv["evaluation"]["metrics"]["roc_auc"]["value"] > 0.5


def test_unknown_metric_is_refused_before_a_job_starts(client: httpx.Client) -> None:
    d = upload_sample(client, "penguins.csv", "species")
    r = client.post(
        "/api/v1/models/train",
        json={"version_id": d["version_id"], "target": "species", "metric": "rmse"},
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert "rmse" in error["message"] and "multiclass" in error["message"]
    assert error["details"]["parameter"] == "metric"
    assert client.get("/api/v1/models").json()["items"] == []
