"""Monitor in real Chromium: the operations overview, a drift check run from the page,
actuals uploaded from a CSV with live performance drawn, and an alert rule added, fired,
acknowledged and resolved."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import train_lightgbm, upload_sample
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

NAME = "credit-monitor"
TARGET = "Status"
ROWS = 300


def _rows() -> tuple[list[dict[str, Any]], list[str]]:
    """The last rows of credit_data (inputs as text, as a file has them) and their labels."""
    with (SAMPLES / "credit_data.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[-ROWS:]
    labels = [r.pop(TARGET) for r in rows]
    return rows, labels


def _deploy_and_predict(client: httpx.Client) -> tuple[list[str], list[str]]:
    dataset = upload_sample(client, "credit_data.csv", TARGET)
    _, mv = train_lightgbm(client, dataset["version"]["id"], TARGET)
    r = client.post("/api/v1/deployments", json={"name": NAME, "model_version_id": mv})
    assert r.status_code == 201, r.text
    rows, labels = _rows()
    # Shifted traffic: incomes ten times higher than anything in training.
    shifted = [{**row, "Income": str(float(row["Income"] or 100) * 10)} for row in rows]
    r = client.post(f"/api/v1/deployments/{NAME}/predict", json={"rows": shifted})
    assert r.status_code == 200, r.text
    return [p["prediction_id"] for p in r.json()["predictions"]], labels


def _rendered(page: Any, testid: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector('[data-testid={testid}]').dataset.rendered === '1'",
        timeout=60_000,
    )


def test_monitor_overview_drift_actuals_and_alerts(
    page: Any, server: AppServer, client: httpx.Client, tmp_path: Path
) -> None:
    ids, labels = _deploy_and_predict(client)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/monitor")

    # The operations overview: the deployment with its traffic, filled in by the page.
    row = page.locator(f"[data-testid=operations-table] tr[data-name={NAME}]")
    requests = row.locator("[data-field=requests]")
    page.wait_for_function(
        f"() => document.querySelector('tr[data-name={NAME}] [data-field=requests]')"
        ".textContent !== '…'"
    )
    assert requests.inner_text() == str(ROWS)
    assert "not checked" in row.locator("[data-field=drift]").inner_text()
    assert "no actuals" in row.locator("[data-field=performance]").inner_text()
    row.locator("a").click()
    page.wait_for_url(f"**/stages/monitor?deployment={NAME}")

    # A drift check from the page: the shifted income is found and drawn.
    page.select_option("[data-testid=drift-window]", "1d")
    page.click("[data-testid=drift-run]")
    page.locator("[data-testid=drift-report]").wait_for(timeout=120_000)
    income = page.locator("[data-testid=drift-columns] tr[data-column=Income]")
    assert income.get_attribute("data-level") == "high"
    assert "Income" in page.locator("[data-testid=drift-narrative]").inner_text()
    income.click()
    _rendered(page, "drift-distribution")
    _rendered(page, "drift-history")

    # Actuals from a CSV: every id matches, and performance is drawn against the baseline.
    actuals = tmp_path / "outcomes.csv"
    with actuals.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "outcome"])
        writer.writerows(zip(ids, labels, strict=True))
    page.set_input_files("[data-testid=actuals-file]", str(actuals))
    page.fill("[data-testid=actuals-id]", "id")
    page.fill("[data-testid=actuals-actual]", "outcome")
    page.click("[data-testid=actuals-submit]")
    result = page.locator("[data-testid=actuals-result]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=actuals-result]').textContent.length > 0"
    )
    assert f"Received {ROWS} outcomes: {ROWS} matched" in result.inner_text()
    page.wait_for_function(
        "n => document.querySelector('[data-testid=performance-status]').textContent"
        ".includes(n + ' predictions with an actual')",
        arg=str(ROWS),
    )
    _rendered(page, "performance-chart")
    points = page.evaluate(
        "() => document.querySelector('[data-testid=performance-chart]').data[0].y.length"
    )
    assert points == 1  # one window of a day holds all of them

    # An in-app drift rule added from the page, fired by a check, then handled.
    page.select_option("[data-testid=rule-kind]", "drift")
    page.select_option("[data-testid=rule-level]", "medium")
    page.click("[data-testid=rule-submit]")
    page.locator("[data-testid=rules-list] li[data-rule]").wait_for()
    rules = client.get("/api/v1/alert-rules", params={"deployment": NAME}).json()["items"]
    assert [(r["kind"], r["level"]) for r in rules] == [("drift", "medium")]
    check = client.post(f"/api/v1/alert-rules/{rules[0]['rule_id']}/check").json()
    assert check["firing"] is True, check
    page.reload()
    alert = page.locator("[data-testid=alerts-table] tr[data-alert]").first
    alert.wait_for()
    assert alert.get_attribute("data-status") == "open"
    alert.locator("[data-testid=alert-acknowledge]").click()
    page.wait_for_selector("[data-testid=alerts-table] tr[data-status=acknowledged]")
    page.locator("[data-testid=alerts-table] [data-testid=alert-resolve]").first.click()
    page.wait_for_selector("[data-testid=alerts-table] tr[data-status=resolved]")


def test_monitor_without_deployments_says_what_to_do(page: Any, server: AppServer) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/monitor")
    assert "deploy a model" in page.locator("[data-testid=empty-state]").inner_text()


def test_monitor_of_an_unknown_deployment_is_not_found(page: Any, server: AppServer) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    response = page.goto(f"{server.base_url}/stages/monitor?deployment=nope")
    assert response is not None and response.status == 404
