"""A model's life after training, over real HTTP: refit onto a newer dataset version and
evaluate on other labelled versions, keeping what training decided."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.support.api import upload_sample, wait_job

OPTIONS = {
    "max_trials": 4,
    "families": ["baseline", "linear", "lightgbm"],
    "n_jobs": 1,
    "sensitive_columns": ["Marital"],
    "threshold": {"objective": "f1"},
}


def _apply(client: httpx.Client, dataset_id: str, expression: str) -> str:
    r = client.post(
        f"/api/v1/datasets/{dataset_id}/recipes/apply",
        json={"steps": [{"step": "filter", "expression": expression}], "confirm_data_loss": True},
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return str(job["result"]["version_id"])


@pytest.fixture
def trained(client: httpx.Client) -> dict[str, Any]:
    dataset = upload_sample(client, "credit_data.csv", "Status")
    r = client.post(
        "/api/v1/models/train",
        json={
            "version_id": dataset["version_id"],
            "target": "Status",
            "time_budget_s": 40,
            "options": OPTIONS,
        },
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    model = client.get(f"/api/v1/models/{r.json()['model_id']}").json()
    mv = client.get(f"/api/v1/model-versions/{model['current_version_id']}").json()
    assert mv["threshold"] is not None and mv["cv_score"] is not None
    return {"dataset": dataset, "model": model, "version": mv}


def test_refit_onto_a_newer_version_keeps_family_and_threshold(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    source = trained["version"]
    newer = _apply(client, trained["dataset"]["id"], "Age >= 20")
    r = client.post(f"/api/v1/models/{trained['model']['id']}/refit", json={"version_id": newer})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    refitted = client.get(f"/api/v1/model-versions/{job['result']['model_version_id']}").json()
    assert refitted["number"] == 2 and refitted["parent_version_id"] == source["id"]
    assert refitted["dataset_version_id"] == newer
    assert refitted["family"] == source["family"]
    assert refitted["threshold"] == pytest.approx(source["threshold"])
    assert refitted["evaluation"]["threshold"] == pytest.approx(source["threshold"])
    assert refitted["evaluation"]["fairness"], "sensitive columns carry over to the refit"
    # The newer version comes from a recipe: the serving copy runs it before the model.
    serving = refitted["details"]["serving"]
    assert serving["available"] is True, serving
    assert serving["blob"] != source["details"]["serving"]["blob"]


def test_evaluation_on_other_rows_keeps_positive_class_threshold_and_fairness(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    # Keep every 'bad' row and few 'good' ones, so 'good' becomes the minority class.
    flipped = _apply(client, trained["dataset"]["id"], "Status = 'bad' OR Seniority >= 25")
    assert client.get(f"/api/v1/versions/{flipped}").json()["n_rows"] < 2000
    r = client.post(
        f"/api/v1/models/{trained['model']['id']}/evaluations", json={"version_id": flipped}
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["positive_class"] == "bad"
    assert ev["threshold"] == pytest.approx(trained["version"]["threshold"])
    assert ev["fairness"], "the model's sensitive columns are analysed on the new rows too"
