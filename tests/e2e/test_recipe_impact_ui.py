"""Transform stage in real Chromium: after applying a recipe the new working version
shows what the recipe did, with its facts on hover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_transform_stage import _dataset, _open
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e


def test_applying_a_recipe_shows_its_impact(page: Any, server: AppServer, tmp_path: Path) -> None:
    dataset_id = _dataset(server, "credit.csv", (SAMPLES / "credit_data.csv").read_bytes())
    _open(page, server, dataset_id)
    assert page.locator("[data-testid=recipe-impact]").count() == 0
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "steps:\n"
        "  - {step: drop_missing, columns: [Income]}\n"
        "  - {step: impute, columns: [Assets], strategy: median}\n"
    )
    page.set_input_files("#load-recipe", str(recipe))
    page.wait_for_function("() => document.querySelectorAll('#recipe-steps li').length === 2")
    page.wait_for_selector("#apply-recipe:not([disabled])")
    page.click("#apply-recipe")
    impact = page.locator("[data-testid=recipe-impact]")
    impact.wait_for(timeout=60_000)
    text = impact.inner_text()
    assert text.startswith("Removed 381 rows (8.6%), by dropping rows with empty 'Income'")
    assert "'Assets' is now median-filled" in text
    hover = impact.get_attribute("title") or ""
    assert "rows removed = 381 (parent.n_rows - version.n_rows)" in hover
    # the lineage table shows it under the recipe version's steps; the upload has none
    listed = page.locator("#lineage-table [data-testid=version-impact]")
    listed.first.wait_for()
    assert listed.count() == 1
    assert listed.first.inner_text() == text
