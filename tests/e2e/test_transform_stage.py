"""Transform stage in real Chromium: stats preview, YAML loading, cancel."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.conftest import ADMIN_PASSWORD, SAMPLES, login
from tests.e2e.test_ui_shell import sign_in
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e


def _dataset(server: AppServer, name: str, data: bytes, target: str | None = None) -> str:
    with login(server.base_url, "admin", ADMIN_PASSWORD) as client:
        extra = {"target": target} if target else {}
        r = client.post("/api/v1/datasets", files={"file": (name, data)}, data=extra)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _open(page: Any, server: AppServer, dataset_id: str) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/transform?dataset={dataset_id}")
    page.wait_for_selector("#step-palette option[value=impute]", state="attached")


def test_yaml_recipe_loads_and_preview_shows_before_after_stats(
    page: Any, server: AppServer, tmp_path: Path
) -> None:
    dataset_id = _dataset(server, "credit.csv", (SAMPLES / "credit_data.csv").read_bytes())
    _open(page, server, dataset_id)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "steps:\n"
        "  - {step: impute, columns: [Income], strategy: median}\n"
        "  - step: scale\n"
        "    columns: [Amount]\n"
    )
    page.set_input_files("#load-recipe", str(recipe))
    page.wait_for_function("() => document.querySelectorAll('#recipe-steps li').length === 2")
    stats = page.locator("[data-testid=preview-stats]")
    stats.wait_for()
    changed = stats.locator("tbody tr")
    assert sorted(changed.nth(i).get_attribute("data-column") for i in range(changed.count())) == [
        "Amount",
        "Income",
    ]
    income_missing = stats.locator("tr[data-column=Income] td[data-stat=missing]")
    assert income_missing.inner_text().endswith("→ 0")
    assert "→" in stats.locator("tr[data-column=Amount] td[data-stat=mean]").inner_text()


def test_broken_yaml_file_names_the_line(page: Any, server: AppServer, tmp_path: Path) -> None:
    dataset_id = _dataset(server, "credit.csv", (SAMPLES / "credit_data.csv").read_bytes())
    _open(page, server, dataset_id)
    recipe = tmp_path / "broken.yml"
    recipe.write_text("steps:\n  - step: impute\n    columns: [Income]\n   strategy: median\n")
    page.set_input_files("#load-recipe", str(recipe))
    issues = page.locator("#preview-issues")
    issues.wait_for(state="visible")
    assert "line 4" in issues.inner_text()


def test_cancel_button_stops_the_apply_job(page: Any, server: AppServer, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=10_000)
    a[rng.random(10_000) < 0.5] = np.nan
    frame = pl.DataFrame({"a": a, "b": rng.normal(size=10_000)}).with_columns(
        pl.col("a").fill_nan(None)
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    _open(page, server, _dataset(server, "slow.csv", buffer.getvalue()))
    recipe = tmp_path / "slow.yaml"
    recipe.write_text(
        "steps:\n  - {step: impute, columns: [a, b], strategy: knn, max_train_rows: 50000}\n"
    )
    page.set_input_files("#load-recipe", str(recipe))
    page.wait_for_function("() => document.querySelectorAll('#recipe-steps li').length === 1")
    page.click("#apply-recipe")
    page.locator("#cancel-apply").wait_for(state="visible")
    page.click("#cancel-apply")
    page.wait_for_function(
        "() => document.getElementById('apply-status').innerText.includes('Cancelled')",
        timeout=60_000,
    )
    assert page.locator("#cancel-apply").is_hidden()
    assert page.locator("#lineage-table tbody tr").count() == 1
