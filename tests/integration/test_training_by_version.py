"""POST /models/train by dataset version, and the leaderboard and evaluation of a model."""

from __future__ import annotations

import time
from typing import Any

import httpx
from tests.conftest import SAMPLES

FAST_OPTIONS = {"max_trials": 3, "families": ["baseline", "linear"], "n_jobs": 1}


def _version_of(client: httpx.Client, name: str) -> str:
    r = client.post("/api/v1/datasets", files={"file": (name, (SAMPLES / name).read_bytes())})
    assert r.status_code == 201, r.text
    return str(r.json()["version_id"])


def _wait_job(client: httpx.Client, job_url: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(job_url).json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        time.sleep(0.3)
    raise AssertionError("training did not finish")


def test_train_by_version_then_read_leaderboard_and_evaluation(client: httpx.Client) -> None:
    version_id = _version_of(client, "penguins.csv")
    r = client.post(
        "/api/v1/models/train",
        json={
            "version_id": version_id,
            "target": "species",
            "time_budget_s": 30,
            "metric": "accuracy",
            "options": {**FAST_OPTIONS, "ensembles": False},
        },
    )
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["task"] == "multiclass"
    job = _wait_job(client, started["job_url"])
    assert job["status"] == "succeeded", job

    board = client.get(f"/api/v1/models/{started['model_id']}/leaderboard")
    assert board.status_code == 200
    body = board.json()
    assert body["live"] is False and body["status"] == "succeeded"
    assert body["metric"] == "accuracy"
    families = [row["family"] for row in body["items"]]
    assert set(families) == {"baseline", "linear"}
    assert [row["rank"] for row in body["items"]] == [1, 2]

    evaluation = client.get(f"/api/v1/models/{started['model_id']}/evaluation")
    assert evaluation.status_code == 200, evaluation.text
    ev = evaluation.json()
    assert ev["model_version_id"] == body["model_version_id"]
    assert ev["kind"] == "holdout"
    assert 0.8 <= ev["metrics"]["accuracy"]["value"] <= 1.0
    model = client.get(f"/api/v1/models/{started['model_id']}").json()
    assert model["versions"][0]["dataset_version_id"] == version_id


def test_train_by_version_refuses_bad_requests(client: httpx.Client) -> None:
    version_id = _version_of(client, "hitters.csv")
    unknown = client.post("/api/v1/models/train", json={"version_id": "nope", "target": "Salary"})
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]["message"]
    clash = client.post(
        "/api/v1/models/train",
        json={"version_id": version_id, "target": "Salary", "options": {"target": "Hits"}},
    )
    assert clash.status_code == 422
    assert clash.json()["error"]["details"]["keys"] == ["target"]
    typo = client.post("/api/v1/models/train", json={"version_id": version_id, "budget": 10})
    assert typo.status_code == 422
    bad_option = client.post(
        "/api/v1/models/train",
        json={"version_id": version_id, "target": "Salary", "options": {"n_folds": 1}},
    )
    assert bad_option.status_code == 422
    assert "n_folds" in bad_option.json()["error"]["message"]
    assert client.get("/api/v1/models").json()["items"] == []  # nothing was created


def test_leaderboard_and_evaluation_of_an_unknown_model_are_404(client: httpx.Client) -> None:
    for path in ("leaderboard", "evaluation"):
        r = client.get(f"/api/v1/models/nope/{path}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
