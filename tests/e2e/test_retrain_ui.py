"""The Retraining card of the Monitor page in real Chromium: "Retrain now", the run with
champion vs challenger and its narrative, and Promote, after which the deployment serves
the challenger."""

from __future__ import annotations

import csv
from typing import Any

import httpx
import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import train_lightgbm, upload_sample
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

NAME = "credit-retrain-ui"
TARGET = "Status"
ROWS = 200


def _deploy_with_labels(client: httpx.Client) -> str:
    """Deploy a model, predict the last rows of credit_data in a few requests and post
    their real outcomes; returns the deployed version."""
    dataset = upload_sample(client, "credit_data.csv", TARGET)
    _, mv = train_lightgbm(client, dataset["version"]["id"], TARGET)
    r = client.post("/api/v1/deployments", json={"name": NAME, "model_version_id": mv})
    assert r.status_code == 201, r.text
    with (SAMPLES / "credit_data.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[-ROWS:]
    pairs = []
    for start in range(0, ROWS, 50):
        chunk = rows[start : start + 50]
        labels = [row.pop(TARGET) for row in chunk]
        r = client.post(f"/api/v1/deployments/{NAME}/predict", json={"rows": chunk})
        assert r.status_code == 200, r.text
        ids = [p["prediction_id"] for p in r.json()["predictions"]]
        pairs += [{"prediction_id": i, "actual": a} for i, a in zip(ids, labels, strict=True)]
    r = client.post(f"/api/v1/deployments/{NAME}/actuals", json={"actuals": pairs})
    assert r.status_code == 200, r.text
    return mv


def test_retrain_now_then_promote_from_the_card(
    page: Any, server: AppServer, client: httpx.Client
) -> None:
    champion = _deploy_with_labels(client)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/monitor?deployment={NAME}")
    page.locator("[data-testid=retrain-empty]").wait_for()

    page.click("[data-testid=retrain-run]")
    run = page.locator("[data-testid=retrain-item]").first
    page.locator("[data-testid=retrain-promote]").wait_for(timeout=180_000)
    narrative = run.locator("[data-testid=retrain-narrative]").inner_text()
    assert narrative.startswith("The challenger scores ROC AUC")
    assert "60 labelled cases" in narrative  # 30% of 200 labelled predictions
    scores = run.locator("[data-testid=retrain-metrics] [data-field=score]").all_inner_texts()
    assert len(scores) == 2 and all(s != "—" for s in scores)

    page.click("[data-testid=retrain-promote]")
    page.wait_for_selector("[data-testid=retrain-item] .level-none")
    assert "promoted" in run.inner_text()
    assert page.locator("[data-testid=retrain-promote]").count() == 0
    (item,) = client.get(f"/api/v1/deployments/{NAME}/retrain-runs").json()["items"]
    assert item["status"] == "promoted" and item["champion_version_id"] == champion
    served = client.get(f"/api/v1/deployments/{NAME}").json()["model_version_id"]
    assert served == item["challenger_version_id"] != champion
