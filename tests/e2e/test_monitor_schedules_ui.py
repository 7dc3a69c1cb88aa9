"""Schedules on the Monitor page in real Chromium: a bad cron is refused naming it, a
drift schedule is added, paused, resumed and run now, and its run shows up."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import train_quickly, upload_sample
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

NAME = "penguins-schedules"


def test_add_pause_resume_and_run_a_schedule(
    page: Any, server: AppServer, client: httpx.Client
) -> None:
    dataset = upload_sample(client, "penguins.csv", "species")
    model_id = train_quickly(client, dataset["id"], families=["linear"], max_trials=2)
    mv = client.get(f"/api/v1/models/{model_id}").json()["current_version_id"]
    assert (
        client.post("/api/v1/deployments", json={"name": NAME, "model_version_id": mv}).status_code
        == 201
    )
    row = {
        "island": "Biscoe",
        "bill_length_mm": 45.1,
        "bill_depth_mm": 14.5,
        "flipper_length_mm": 215,
        "body_mass_g": 5000,
        "sex": "female",
        "year": 2008,
    }
    r = client.post(f"/api/v1/deployments/{NAME}/predict", json={"rows": [row] * 20})
    assert r.status_code == 200, r.text

    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/monitor?deployment={NAME}")
    table = page.locator("[data-testid=schedules-table]")
    page.locator("#schedules-empty").wait_for()

    page.fill("[data-testid=schedule-cron]", "61 * * * *")
    page.click("[data-testid=schedule-submit]")
    error = page.locator("[data-testid=schedule-error]")
    error.wait_for()
    assert "cron" in error.inner_text().lower()

    page.fill("[data-testid=schedule-cron]", "0 6 * * 1")
    page.select_option("[data-testid=schedule-kind]", "drift")
    page.click("[data-testid=schedule-submit]")
    schedule = table.locator("tr[data-schedule]")
    schedule.wait_for()
    assert "Drift check" in schedule.inner_text()
    assert "0 6 * * 1 UTC" in schedule.inner_text()

    schedule.locator("[data-testid=schedule-pause]").click()
    page.wait_for_selector("[data-testid=schedules-table] tr[data-paused=yes]")
    page.locator("[data-testid=schedule-resume]").click()
    page.wait_for_selector("[data-testid=schedules-table] tr[data-paused=no]")

    page.locator("[data-testid=schedule-run]").click()
    page.wait_for_function(
        "() => { const c = document.querySelector("
        "'[data-testid=schedules-table] [data-field=last-run]');"
        " return c && c.dataset.status; }",
        timeout=60_000,
    )
    (item,) = client.get("/api/v1/schedules", params={"deployment": NAME}).json()["items"]
    runs = client.get(f"/api/v1/schedules/{item['schedule_id']}/runs").json()["items"]
    assert [r["trigger"] for r in runs] == ["manual"]
