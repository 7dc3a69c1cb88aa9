"""The CSP has no 'unsafe-eval', and the Clean and Evaluate pages still draw every chart in
real Chromium without a single CSP violation (security review, issue 12)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import train_quickly, upload_sample
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

# Registered before any page script runs; records what the browser blocked.
_WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""


@pytest.fixture
def trained(client: httpx.Client) -> dict[str, str]:
    """The credit sample and a small binary model trained on it over the API."""
    dataset = upload_sample(client, "credit_data.csv", "Status")
    return {"dataset_id": dataset["id"], "model_id": train_quickly(client, dataset["id"])}


def _open(page: Any, url: str) -> None:
    response = page.goto(url)
    csp = response.headers["content-security-policy"]
    assert "'unsafe-eval'" not in csp, csp
    assert page.evaluate("htmx.config.allowEval") is False


def _no_violations(page: Any, console: list[str]) -> None:
    assert page.evaluate("window.__csp") == []
    assert [c for c in console if "Content Security Policy" in c] == []


def test_clean_and_evaluate_draw_charts_without_eval(
    page: Any, server: AppServer, trained: dict[str, str]
) -> None:
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.add_init_script(_WATCH_CSP)
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")

    _open(page, f"{server.base_url}/stages/clean?dataset={trained['dataset_id']}")
    page.wait_for_selector("#chart-pearson .main-svg", timeout=30_000)
    page.wait_for_selector("#chart-missing .main-svg")
    assert page.locator(".column-card .chart .main-svg").count() >= 5
    _no_violations(page, console)

    _open(page, f"{server.base_url}/stages/evaluate?model={trained['model_id']}")
    page.wait_for_selector("[data-testid=chart-roc] .main-svg", timeout=30_000)
    page.wait_for_selector("[data-testid=chart-confusion] .main-svg")
    assert page.locator(".js-plotly-plot").count() >= 2
    _no_violations(page, console)

    # Injected markup can no longer run script through htmx attributes.
    page.evaluate(
        """() => {
      const b = document.createElement('button');
      b.id = 'injected';
      b.setAttribute('hx-on:click', 'window.__pwned = 1');
      document.body.appendChild(b);
      htmx.process(b);
    }"""
    )
    page.click("#injected")
    assert page.evaluate("window.__pwned") is None
    # (A direct eval('1') from page.evaluate is not a test of the CSP: code run through
    # the DevTools protocol is exempt from the page's eval checks in current Chromium. The
    # header checked in _open is what the browser enforces for the page's own scripts.)


def test_api_docs_render_without_eval(page: Any, server: AppServer) -> None:
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.add_init_script(_WATCH_CSP)
    response = page.goto(f"{server.base_url}/docs")
    assert "'unsafe-eval'" not in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() > 10
    _no_violations(page, console)
