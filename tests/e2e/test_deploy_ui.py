"""Deploy in real Chromium: deploy from Evaluate, predict from the form generated from the
input signature, score a file and download it, keys, switch versions and roll back."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import train_quickly, upload_sample, wait_job
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

NAME = "penguins-e2e"
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
SCORED_ROWS = 30


def _two_versions(client: httpx.Client) -> tuple[str, str, str]:
    """A small classifier of penguin species and its refit: (model id, v1 id, v2 id)."""
    dataset = upload_sample(client, "penguins.csv", "species")
    model_id = train_quickly(client, dataset["id"], families=["linear"], max_trials=2)
    v1 = client.get(f"/api/v1/models/{model_id}").json()["current_version_id"]
    r = client.post(f"/api/v1/models/{model_id}/refit", json={})
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["job_id"])["status"] == "succeeded"
    v2 = client.get(f"/api/v1/models/{model_id}").json()["current_version_id"]
    assert v2 != v1
    return model_id, v1, v2


def _rows_to_score(tmp_path: Path) -> Path:
    """The first rows of penguins.csv without the target, as a new CSV file."""
    with (SAMPLES / "penguins.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[:SCORED_ROWS]
    path = tmp_path / "new penguins.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c != "species"])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != "species"} for row in rows)
    return path


def _deploy_from_evaluate(page: Any, server: AppServer, model_id: str, v1: str) -> None:
    page.goto(f"{server.base_url}/stages/evaluate?model={model_id}&version={v1}")
    page.click("[data-testid=deploy-model]")
    name = page.locator("[data-testid=deploy-model-name]")
    assert name.input_value().startswith("penguins")  # the model's name, slugified
    name.fill(NAME)
    page.click("[data-testid=deploy-model-submit]")
    page.wait_for_url(f"**/stages/deploy?deployment={NAME}")


def _predict_from_the_form(page: Any) -> None:
    submit = page.locator("[data-testid=try-submit]")
    page.wait_for_function("() => !document.querySelector('[data-testid=try-submit]').disabled")
    # One field per model column, of the right kind, prefilled from a real training row.
    assert page.locator(".try-field[data-column=bill_length_mm] input[type=number]").input_value()
    islands = page.locator(".try-field[data-column=island] select option").all_inner_texts()
    assert sorted(islands) == ["(empty)", "Biscoe", "Dream", "Torgersen"]
    submit.click()
    prediction = page.locator("[data-testid=try-prediction]")
    prediction.wait_for()
    assert prediction.inner_text() in CLASSES
    classes = page.locator("[data-testid=try-probabilities] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.class)"
    )
    assert sorted(classes) == CLASSES
    # A value outside the training range is accepted and explained in plain language.
    page.fill(".try-field[data-column=bill_length_mm] input", "150")
    submit.click()
    flag = page.locator("[data-testid=try-flags] li[data-flag='out_of_range:bill_length_mm']")
    flag.wait_for()
    assert "'bill_length_mm' is 150, outside the range seen in training (" in flag.inner_text()
    # What the API refuses is said in plain language, naming the column (the field is made
    # a text box here: a number box would not let anyone type words).
    year = page.locator(".try-field[data-column=year] input")
    year.evaluate("input => { input.type = 'text'; }")
    year.fill("two thousand")
    submit.click()
    error = page.locator("[data-testid=try-error]")
    error.wait_for()
    assert error.inner_text().startswith("The value for 'year' can't be used: \"two thousand\"")
    assert "leave the field empty" in error.inner_text()
    assert year.get_attribute("aria-invalid") == "true"
    snippet = page.locator("[data-testid=snippet-python]").inner_text()
    assert f"/api/v1/deployments/{NAME}/predict" in snippet and '"island": ' in snippet


def _score_a_file(page: Any, server: AppServer, tmp_path: Path) -> None:
    page.set_input_files("[data-testid=batch-file]", str(_rows_to_score(tmp_path)))
    page.click("[data-testid=batch-submit]")
    csv_link = page.locator("[data-testid=batch-csv]")
    csv_link.wait_for(timeout=60_000)
    assert f"Scored {SCORED_ROWS} rows" in page.locator("[data-testid=batch-status]").inner_text()
    with page.expect_download() as info:
        csv_link.click()
    scored = pl.read_csv(info.value.path())
    assert scored.height == SCORED_ROWS
    assert {"island", "prediction", "probability_Gentoo", "prediction_id"} <= set(scored.columns)
    assert set(scored.get_column("prediction").to_list()) <= set(CLASSES)
    parquet = page.locator("[data-testid=batch-parquet]").get_attribute("href")
    body = page.request.get(server.base_url + parquet).body()
    assert pl.read_parquet(io.BytesIO(body)).height == SCORED_ROWS


def _create_a_key(page: Any, server: AppServer, client: httpx.Client) -> None:
    page.fill("[data-testid=key-name]", "loan website")
    page.click("[data-testid=key-create]")
    secret = page.locator("[data-testid=key-secret]")
    secret.wait_for()
    key = secret.inner_text()
    assert key.startswith("ndk_")
    assert page.locator("[data-testid=key-list] tbody tr").count() == 1
    row = client.get(f"/api/v1/deployments/{NAME}/signature").json()["signature"]["example_row"]
    r = httpx.post(
        f"{server.base_url}/api/v1/deployments/{NAME}/predict",
        headers={"Authorization": f"Bearer {key}"},
        json={"rows": [row]},
    )
    assert r.status_code == 200, r.text


def test_deploy_from_evaluate_predict_score_a_file_switch_and_roll_back(
    page: Any, server: AppServer, client: httpx.Client, tmp_path: Path
) -> None:
    model_id, v1, v2 = _two_versions(client)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    _deploy_from_evaluate(page, server, model_id, v1)
    assert "v1" in page.locator("[data-testid=deployment-version]").inner_text()
    assert page.locator(f"[data-testid=deployment-list] tr[data-name={NAME}]").count() == 1

    _predict_from_the_form(page)
    page.wait_for_function(
        "() => /^2 predictions/.test(document.querySelector('[data-testid=stats-summary]')"
        ".textContent)"
    )
    page.wait_for_selector("[data-testid=stats-chart] .main-svg")
    _score_a_file(page, server, tmp_path)
    _create_a_key(page, server, client)

    # The name is taken now: deploying again under it says so on the Evaluate page.
    page.goto(f"{server.base_url}/stages/evaluate?model={model_id}&version={v2}")
    page.click("[data-testid=deploy-model]")
    page.fill("[data-testid=deploy-model-name]", NAME)
    page.click("[data-testid=deploy-model-submit]")
    error = page.locator("[data-testid=deploy-model-error]")
    error.wait_for()
    assert f"'{NAME}' is taken" in error.inner_text()

    # Switch to v2 (revision 2), then roll back through the confirmation dialog.
    page.goto(f"{server.base_url}/stages/deploy?deployment={NAME}")
    page.select_option("[data-testid=switch-version]", v2)
    page.fill("#switch-reason", "refit on all rows")
    page.click("[data-testid=switch-submit]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=deployment-revision]').textContent === '2'"
    )
    assert "v2" in page.locator("[data-testid=deployment-version]").inner_text()
    page.click("[data-testid=rollback]")
    dialog = page.locator("[data-testid=rollback-dialog]")
    dialog.wait_for()
    assert "v1" in page.locator("[data-testid=rollback-target]").inner_text()
    page.click("[data-testid=rollback-cancel]")  # changing one's mind keeps revision 2
    assert dialog.is_hidden()
    page.click("[data-testid=rollback]")
    page.fill("[data-testid=rollback-reason]", "complaints since the switch")
    page.click("[data-testid=rollback-confirm]")
    page.wait_for_selector("[data-testid=revisions] tr[data-action=rollback]")
    assert page.locator("[data-testid=deployment-revision]").inner_text() == "3"
    assert "v1" in page.locator("[data-testid=deployment-version]").inner_text()
    newest = page.locator("[data-testid=revisions] tbody tr").first
    assert "complaints since the switch" in newest.inner_text()
    assert "admin" in newest.inner_text()
    served = client.get(f"/api/v1/deployments/{NAME}").json()
    assert served["model_version_id"] == v1 and served["revision"] == 3
