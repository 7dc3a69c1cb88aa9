"""Train → Evaluate in real Chromium: live leaderboard, narrative, charts, API errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_ui_shell import sign_in
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

FAST_FAMILIES = {"baseline", "linear", "lightgbm"}


def _upload(page: Any, server: AppServer, path: Path) -> str:
    """Sign in, upload a file on the Upload page and return the new dataset's id."""
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/stages/clean?dataset=*", timeout=60_000)
    return str(page.url.split("dataset=", 1)[1])


def _open_train(page: Any, dataset_id: str) -> None:
    page.click("nav.stages a[data-stage=train]")
    page.wait_for_url("**/stages/train")
    page.select_option("#train-dataset", dataset_id)
    page.wait_for_url(f"**/stages/train?dataset={dataset_id}")


def _keep_it_small(page: Any) -> None:
    """A 15 s budget, three trials, three fast families and no ensembles."""
    page.fill("#train-budget", "15")
    page.click("#train-advanced summary")
    page.fill("#train-max-trials", "3")
    for box in page.locator("#train-families input[type=checkbox]").all():
        box.set_checked(box.get_attribute("value") in FAST_FAMILIES)
    page.locator("#train-ensembles").set_checked(False)


def test_train_with_live_leaderboard_then_see_the_evaluation(page: Any, server: AppServer) -> None:
    dataset_id = _upload(page, server, SAMPLES / "credit_data.csv")
    _open_train(page, dataset_id)
    page.select_option("#train-target", "Status")
    _keep_it_small(page)
    page.click("[data-testid=train-start]")
    page.wait_for_selector("[data-testid=train-run]", state="visible")
    assert "binary classification" in page.locator("[data-testid=detected-problem]").inner_text()
    assert "model=" in page.url  # a reload keeps following the run
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=leaderboard] tbody tr').length >= 1",
        timeout=60_000,
    )
    link = page.locator("[data-testid=see-evaluation]")
    link.wait_for(state="visible", timeout=90_000)
    families = page.locator("[data-testid=leaderboard] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.family)"
    )
    assert len(families) >= 2
    assert set(families) <= FAST_FAMILIES
    assert page.locator("[data-testid=train-error]").is_hidden()

    link.click()
    page.wait_for_url("**/stages/evaluate?model=*")
    assert "Status" in page.locator("[data-testid=model-narrative]").inner_text()
    assert page.locator("[data-testid=metrics] tr[data-metric=roc_auc]").count() == 1
    page.wait_for_selector("[data-testid=chart-roc] .main-svg", timeout=30_000)
    page.wait_for_selector("[data-testid=chart-confusion] .main-svg")
    assert page.locator("[data-testid=evaluate-leaderboard] tbody tr").count() >= 2
    card = page.locator("[data-testid=card-md]").get_attribute("href")
    assert card is not None
    assert page.request.get(server.base_url + card).text().startswith("# Model card")
    served = page.locator("[data-testid=model-serving]").get_attribute("href")
    assert served is not None
    # The serving copy is a zip (manifest + arrays), downloadable with the session.
    assert page.request.get(server.base_url + served).body()[:2] == b"PK"


def test_train_page_shows_the_api_error_for_a_constant_target(
    page: Any, server: AppServer, tmp_path: Path
) -> None:
    rows = "\n".join(f"{i},same,{i * 1.5},{'yes' if i % 3 else 'no'}" for i in range(40))
    csv = tmp_path / "constant.csv"
    csv.write_text("row,constant,amount,flag\n" + rows + "\n")
    dataset_id = _upload(page, server, csv)
    _open_train(page, dataset_id)
    page.select_option("#train-target", "constant")
    page.click("[data-testid=train-start]")
    error = page.locator("[data-testid=train-error]")
    error.wait_for(state="visible")
    assert "'constant' can't be the target" in error.inner_text()
    assert page.locator("[data-testid=train-run]").is_hidden()
