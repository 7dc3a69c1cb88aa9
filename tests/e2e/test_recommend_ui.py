"""Recommendation cards in real Chromium: apply one from Clean, fill the Train form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_ui_shell import sign_in
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e


def _upload_loans(page: Any, server: AppServer, folder: Path) -> str:
    """credit_data plus a loan number per row, uploaded through the UI; the dataset id."""
    frame = pl.read_csv(SAMPLES / "credit_data.csv")
    refs = pl.format("L{}", pl.int_range(10_000, 10_000 + frame.height))
    path = folder / "loans.csv"
    frame.with_columns(refs.alias("loan_ref")).write_csv(path)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/stages/clean?dataset=*", timeout=60_000)
    return str(page.url.split("dataset=")[1].split("&")[0])


def test_apply_a_recommendation_from_clean(page: Any, server: AppServer, tmp_path: Path) -> None:
    _upload_loans(page, server, tmp_path)
    card = page.locator("[data-rec-id='exclude_identifier:loan_ref']")
    card.wait_for()
    assert "4,454 distinct values in 4,454 rows" in card.inner_text()
    assert "profile.columns.loan_ref.distinct" in (card.get_attribute("title") or "")
    assert page.locator(".column-card[data-column=loan_ref]").count() == 1
    with page.expect_navigation(timeout=60_000):
        card.locator("[data-testid=rec-apply]").click()
    page.locator("[data-testid=rec-status]").filter(has_text="recommendation").wait_for()
    assert "version 2" in page.locator("#clean-app h2").inner_text()
    assert page.locator(".column-card[data-column=loan_ref]").count() == 0
    assert page.locator("[data-rec-id='exclude_identifier:loan_ref']").count() == 0


def test_a_target_card_fills_the_train_form(page: Any, server: AppServer, tmp_path: Path) -> None:
    dataset_id = _upload_loans(page, server, tmp_path)
    page.goto(f"{server.base_url}/stages/train?dataset={dataset_id}")
    card = page.locator("[data-rec-id='target_candidate:Status']")
    card.wait_for()
    card.locator("[data-testid=rec-apply]").click()
    assert page.locator("#train-target").input_value() == "Status"
    assert card.locator("[data-testid=rec-apply]").inner_text() == "Filled in"


def test_many_recommendations_show_twelve_then_the_rest(
    page: Any, server: AppServer, tmp_path: Path
) -> None:
    rows = 300
    # 15 long-tailed columns: one log-transform card each
    columns = {
        f"amount_{i}": [float(2 ** ((j * (i + 3)) % 17)) for j in range(rows)] for i in range(15)
    }
    path = tmp_path / "wide.csv"
    pl.DataFrame(columns).write_csv(path)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/stages/clean?dataset=*", timeout=60_000)
    page.locator("[data-testid=rec-more]").wait_for()
    status = page.locator("[data-testid=rec-status]").inner_text()
    total = int(status.split()[0])
    assert total > 12
    assert page.locator(".rec-card").count() == 12
    page.locator("[data-testid=rec-more]").click()
    assert page.locator(".rec-card").count() == total
    assert page.locator("[data-testid=rec-more]").count() == 0
