"""Interpret in real Chromium: importances, the dependence plot, a row explained with its
waterfall and narrative, and a what-if control that moves the answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import train_lightgbm, upload_sample
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e


def _rendered(page: Any, testid: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector('[data-testid={testid}]').dataset.rendered === '1'",
        timeout=60_000,
    )


def test_interpret_importances_dependence_explain_and_what_if(
    page: Any, server: AppServer, client: httpx.Client
) -> None:
    dataset = upload_sample(client, "credit_data.csv", "Status")
    _, mv = train_lightgbm(client, dataset["version"]["id"], "Status")
    importances = client.get(f"/api/v1/model-versions/{mv}/importances").json()["columns"]
    top = importances[0]["column"]

    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/interpret?version={mv}")

    # Importances: a bar per column, most important on top, and the computation stated.
    _rendered(page, "importance-chart")
    bars = page.evaluate("() => document.querySelector('[data-testid=importance-chart]').data[0].y")
    assert bars[-1] == top  # Plotly draws horizontal bars bottom-up
    assert "rows" in page.locator("[data-testid=importances-status]").inner_text()

    # Dependence: the most important column first, average + ICE curves + distribution.
    assert page.locator("[data-testid=dependence-column]").input_value() == top
    _rendered(page, "dependence-chart")
    traces = page.evaluate(
        "() => document.querySelector('[data-testid=dependence-chart]').data.map(t => t.name)"
    )
    assert "average (partial dependence)" in traces and "rows" in traces
    assert len(traces) > 10  # the ICE curves are there too

    # Explain a training row: prediction, a waterfall that adds up, a grounded narrative.
    page.locator("[data-testid=explain-row]").first.click()
    page.locator("[data-testid=explain-result]").wait_for()
    _rendered(page, "waterfall-chart")
    prediction = page.locator("[data-testid=explain-prediction]").inner_text()
    assert prediction in {"good", "bad"}
    steps = page.evaluate(
        "() => { const t = document.querySelector('[data-testid=waterfall-chart]').data[0];"
        " return {y: t.y, m: t.measure}; }"
    )
    total = sum(v for v, m in zip(steps["y"], steps["m"], strict=True) if m != "total")
    assert total == pytest.approx(steps["y"][-1], abs=1e-6)
    narrative = page.locator("[data-testid=explain-narrative]")
    assert narrative.inner_text()
    assert "Facts behind this sentence" in (narrative.get_attribute("title") or "")

    # What-if: move the slider of a numeric column to its far end; the answer moves.
    result = page.locator("[data-testid=what-if-result]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=what-if-result]').textContent.length > 0"
    )
    assert "Move a control" in result.inner_text()
    slider = page.locator("[data-testid=what-if-controls] input[type=range]").first
    column = slider.evaluate("e => e.dataset.column")
    for end in ("max", "min"):
        slider.evaluate(f"e => {{ e.value = e.{end}; e.dispatchEvent(new Event('change')); }}")
        page.wait_for_function(
            "c => document.querySelector('[data-testid=what-if-result]').textContent"
            ".includes('With ' + c)",
            arg=column,
        )
        delta = float(result.get_attribute("data-delta") or "nan")
        assert delta == delta  # a number came back
        if delta != 0:
            break
    assert delta != 0, f"moving {column} to either end changed nothing"


def test_interpret_without_models_says_what_to_do(page: Any, server: AppServer) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/interpret")
    assert "Train a model" in page.locator("[data-testid=empty-state]").inner_text()


def test_interpret_of_an_unknown_version_is_not_found(page: Any, server: AppServer) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    response = page.goto(f"{server.base_url}/stages/interpret?version=nope")
    assert response is not None and response.status == 404
