"""Upload → Clean → Transform in real Chromium with real sample files."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_ui_shell import sign_in
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e


def _upload(page: Any, server: AppServer, filename: str) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.set_input_files("#upload-file", str(SAMPLES / filename))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/stages/clean?dataset=*", timeout=60_000)


def test_upload_csv_then_see_profile_warnings_charts_and_narrative(
    page: Any, server: AppServer
) -> None:
    _upload(page, server, "credit_data.csv")
    narrative = page.locator("[data-testid=narrative]").inner_text()
    assert "4,454" in narrative
    assert page.locator("[data-testid=warnings] tbody tr").count() >= 1
    page.wait_for_selector("#chart-pearson .main-svg", timeout=30_000)
    assert page.locator(".column-card .chart .main-svg").count() >= 5
    assert page.locator(".column-card[data-column=Home]").is_visible()


def test_bad_file_shows_a_clear_error_in_the_page(
    page: Any, server: AppServer, tmp_path: Any
) -> None:
    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b,c\n1,2,3\n4,5\n")
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-form button[type=submit]")
    error = page.locator("#upload-error")
    error.wait_for(state="visible")
    assert "line 3" in error.inner_text()


def test_build_preview_apply_recipe_and_see_lineage(page: Any, server: AppServer) -> None:
    _upload(page, server, "penguins.csv")
    page.click("text=Open in Transform")
    page.wait_for_url("**/stages/transform?dataset=*")
    page.wait_for_selector("#step-palette option[value=impute]", state="attached")
    # step 1: impute bill_length_mm with the median
    page.select_option("#step-palette", "impute")
    page.click("#add-step")
    page.locator("#recipe-steps li").nth(0).locator("select[name=columns]").select_option(
        ["bill_length_mm"]
    )
    # step 2: filter rows
    page.select_option("#step-palette", "filter")
    page.click("#add-step")
    page.locator("#recipe-steps li").nth(1).locator("input[name=expression]").fill("year >= 2008")
    # step 3: one-hot encode island
    page.select_option("#step-palette", "encode")
    page.click("#add-step")
    page.locator("#recipe-steps li").nth(2).locator("select[name=columns]").select_option(
        ["island"]
    )
    page.wait_for_function(
        "document.querySelector('[data-testid=preview-summary]').innerText.includes('Rows after')"
    )
    page.wait_for_selector("[data-testid=preview-rows]")
    assert page.locator("#recipe-steps li").count() == 3
    page.click("#apply-recipe")
    page.wait_for_function(
        "document.querySelectorAll('#lineage-table tbody tr').length === 2", timeout=60_000
    )
    rows = page.locator("#lineage-table tbody tr")
    assert "v2 (working)" in rows.nth(1).inner_text()
    assert "impute → filter → encode" in rows.nth(1).inner_text()
    page.wait_for_selector("[data-testid=lineage-graph] .main-svg")
