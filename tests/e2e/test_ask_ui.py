"""The "Ask about this dataset/model" box in real Chromium, against a small
OpenAI-compatible server on loopback: off by default (and it says so), then an answer
with its citations and what was sent; a failing model falls back with a note."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.test_ui_shell import sign_in
from tests.support.api import upload_sample
from tests.support.llm_server import FakeLlm, Reply, answer
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    try:
        yield server
    finally:
        server.stop()


def test_ask_box_off_then_answers_with_citations_then_falls_back(
    page: Any, server: AppServer, client: httpx.Client, llm: FakeLlm
) -> None:
    dataset = upload_sample(client, "credit_data.csv", "Status")
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    page.goto(f"{server.base_url}/stages/clean?dataset={dataset['id']}")
    status = page.locator("[data-testid=ask-status]")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=ask-status]').textContent"
        ".startsWith('Checking')"
    )
    assert "language model is off" in status.inner_text()
    assert page.locator("[data-testid=ask-form]").is_hidden()

    r = client.put(
        "/api/v1/admin/llm",
        json={"base_url": llm.base_url, "model": "tiny-test-model", "api_key": "sk-test"},
    )
    assert r.status_code == 200, r.text
    llm.script(answer({"answer": "There are 4,454 loans (F1).", "citations": ["F1"]}))
    page.reload()
    page.locator("[data-testid=ask-form]").wait_for()
    assert "No raw rows are sent" in status.inner_text()
    page.fill("[data-testid=ask-question]", "How many loans are there?")
    page.click("[data-testid=ask-submit]")
    page.locator("[data-testid=ask-answer]").wait_for()
    assert page.locator("[data-testid=ask-text]").inner_text() == "There are 4,454 loans (F1)."
    citations = page.locator("[data-testid=ask-citations] li").all_text_contents()
    assert citations == ["[F1] table rows = 4454 (profile.table)"]
    sent = page.locator("[data-testid=ask-sent]").text_content() or ""
    assert "0 raw rows" in sent
    assert "How many loans are there?" in llm.prompts()

    # The model fails: the page still answers, from the built-in text, and says why.
    llm.script(default=Reply(status=500, content="boom"))
    page.click("[data-testid=ask-submit]")
    note = page.locator("[data-testid=ask-note]")
    note.wait_for()
    assert note.inner_text()
    assert page.locator("[data-testid=ask-text]").inner_text() != "There are 4,454 loans (F1)."
