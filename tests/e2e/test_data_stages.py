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

    # the missing-values matrix: one column per table column, darker where empty
    page.wait_for_selector("#chart-missing .main-svg")
    missing = _plot(page, "#chart-missing")
    assert missing["type"] == "heatmap"
    assert {"Home", "Income", "Assets", "Debt"} <= set(missing["x"])
    assert max(max(row) for row in missing["z"]) > 0

    # the categorical association heatmap (Cramér's V), symmetric with ones on the diagonal
    page.wait_for_selector("#chart-cramers_v .main-svg")
    cramers = _plot(page, "#chart-cramers_v")
    assert cramers["type"] == "heatmap"
    assert {"Status", "Home", "Marital", "Job"} <= set(cramers["x"])
    index = cramers["x"].index("Home")
    assert cramers["z"][index][index] == 1

    # top-values bar charts for categorical columns, histograms for numbers
    home = page.locator(".column-card[data-column=Home] [data-testid=top-values]")
    home.locator(".main-svg").first.wait_for()
    bars = _plot(page, ".column-card[data-column=Home] [data-testid=top-values]")
    assert bars["type"] == "bar" and bars["orientation"] == "h"
    assert bars["y"][-1] == "owner" and bars["x"][-1] == 2107  # the most common, on top
    assert page.locator("[data-testid=top-values] .main-svg").count() >= 5
    assert page.locator(".column-card[data-column=Age] [data-testid=histogram] .main-svg").count()


def _plot(page: Any, selector: str) -> dict[str, Any]:
    """The first trace Plotly drew in the element (Plotly keeps it on the element)."""
    trace: dict[str, Any] = page.eval_on_selector(
        selector,
        "el => { const t = el.data[0]; return {type: t.type, orientation: t.orientation || null,"
        " x: Array.from(t.x || []), y: Array.from(t.y || []),"
        " z: (t.z || []).map(r => Array.from(r))}; }",
    )
    return trace


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


def test_excel_upload_offers_the_workbook_sheets_as_a_list(
    page: Any, server: AppServer, tmp_path: Any
) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Notes"
    wb.active.append(["Exported from the shop system"])
    data = wb.create_sheet("Orders 2024")
    data.append(["order", "amount"])
    for i in range(5):
        data.append([f"o{i}", i * 2.5])
    book = tmp_path / "shop.xlsx"
    wb.save(book)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    assert page.locator("[data-testid=sheet-list]").is_hidden()
    page.set_input_files("#upload-file", str(book))
    sheets = page.locator("[data-testid=sheet-list]")
    sheets.wait_for(state="visible")
    assert sheets.locator("option").all_inner_texts() == ["Notes", "Orders 2024"]
    assert page.locator("#upload-sheet").is_hidden()
    sheets.select_option("Orders 2024")
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/stages/clean?dataset=*", timeout=60_000)
    assert "5 rows and 2 columns" in page.locator("[data-testid=narrative]").inner_text()


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
        "() => document.querySelector('[data-testid=preview-summary]')"
        ".innerText.includes('Rows after')"
    )
    page.wait_for_selector("[data-testid=preview-rows]")
    assert page.locator("#recipe-steps li").count() == 3
    page.click("#apply-recipe")
    page.wait_for_function(
        "() => document.querySelectorAll('#lineage-table tbody tr').length === 2", timeout=60_000
    )
    rows = page.locator("#lineage-table tbody tr")
    assert "v2 (working)" in rows.nth(1).inner_text()
    assert "impute → filter → encode" in rows.nth(1).inner_text()
    page.wait_for_selector("[data-testid=lineage-graph] .main-svg")
