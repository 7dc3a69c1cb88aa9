"""The LLM client under every fault, with the real ``openai`` client against a small
OpenAI-compatible server on loopback: good answers, slow answers, 429, 500, malformed
JSON, empty answers, the circuit breaker open and half-open, and rewordings that change
a number."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import make_settings
from tests.support.llm_server import FakeLlm, Reply, answer

from narrate.bootstrap import Container, build_container
from narrate.services.llm import llm_status
from narrate.services.llm_answers import reword

NARRATIVE = {
    "text": "82% likely 'bad' (the average is 63%), mainly because Income is 45 (+14 points).",
    "facts": [
        {"name": "probability", "value": 82, "source": "prediction"},
        {"name": "average", "value": 63, "source": "base_value"},
        {"name": "Income", "value": 45, "source": "row"},
        {"name": "Income points", "value": 14, "source": "contribution"},
    ],
}
PLAIN = "There is an 82% chance of 'bad'; usually it is 63%. Income of 45 adds 14 points."


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    yield server
    server.stop()


def _container(tmp_path: Path, llm: FakeLlm, **extra: Any) -> Container:
    options: dict[str, Any] = {
        "llm_base_url": llm.base_url,
        "llm_model": "tiny-test-model",
        "llm_timeout_s": 0.5,
        "llm_backoff_s": 0.01,
        **extra,
    }
    container = build_container(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'narrate.db'}", **options),
        with_executor=False,
    )
    container.db.upgrade()
    return container


@pytest.fixture
def container(tmp_path: Path, llm: FakeLlm) -> Iterator[Container]:
    c = _container(tmp_path, llm)
    yield c
    c.close()


def test_a_good_rewording_is_used_and_sent_to_the_configured_model(
    container: Container, llm: FakeLlm
) -> None:
    llm.script(answer({"text": PLAIN}))
    out = reword(container, NARRATIVE)
    assert out == {"text": PLAIN, "facts": NARRATIVE["facts"], "source": "llm"}
    assert llm.attempts == 1
    request = llm.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["json"]["model"] == "tiny-test-model"
    assert NARRATIVE["text"] in llm.prompts()


def test_a_rewording_that_changes_a_number_is_rejected(container: Container, llm: FakeLlm) -> None:
    llm.script(answer({"text": PLAIN.replace("82%", "85%")}))
    out = reword(container, NARRATIVE)
    assert out["source"] == "deterministic"
    assert out["text"] == NARRATIVE["text"]
    assert "85%" in out["note"] and "changed or added numbers" in out["note"]


def test_a_rewording_that_adds_a_number_is_rejected(container: Container, llm: FakeLlm) -> None:
    llm.script(answer({"text": PLAIN + " About 3 in 4 people like this default."}))
    out = reword(container, NARRATIVE)
    assert out["source"] == "deterministic"
    assert "3" in out["note"]


def test_a_slow_answer_falls_back_after_every_attempt_timed_out(
    container: Container, llm: FakeLlm
) -> None:
    llm.script(default=Reply(content='{"text": "late"}', delay=1.5))
    started = time.monotonic()
    out = reword(container, NARRATIVE)
    assert out["source"] == "deterministic"
    assert out["text"] == NARRATIVE["text"]
    assert "did not answer in time" in out["note"]
    assert llm.attempts == 3  # timeouts are retried (NARRATE_LLM_MAX_ATTEMPTS)
    assert time.monotonic() - started < 10


def test_429_then_success_is_retried(container: Container, llm: FakeLlm) -> None:
    llm.script(Reply(status=429), answer({"text": PLAIN}))
    out = reword(container, NARRATIVE)
    assert out["source"] == "llm"
    assert llm.attempts == 2


def test_500_every_time_falls_back_after_three_attempts_and_is_logged(
    container: Container, llm: FakeLlm, caplog: pytest.LogCaptureFixture
) -> None:
    llm.script(default=Reply(status=500))
    with caplog.at_level(logging.WARNING, logger="narrate.services.llm"):
        out = reword(container, NARRATIVE)
    assert out["source"] == "deterministic"
    assert "HTTP 500" in out["note"]
    assert llm.attempts == 3
    assert [r.getMessage() for r in caplog.records] == [f"LLM not used: {out['note']}"]


def test_a_client_error_is_not_retried(container: Container, llm: FakeLlm) -> None:
    llm.script(default=Reply(status=400))
    out = reword(container, NARRATIVE)
    assert out["source"] == "deterministic"
    assert "HTTP 400" in out["note"]
    assert llm.attempts == 1


@pytest.mark.parametrize(
    ("reply", "note"),
    [
        (Reply(content="Sure! Here is the text: {not json"), "not valid JSON"),
        (Reply(content=""), "empty answer"),
        (Reply(content='["a list"]'), "not a JSON object"),
        (Reply(content='{"text": ""}'), "gave no text"),
        (Reply(body=b"<html>bad gateway page</html>"), "could not be read"),
    ],
    ids=["malformed-json", "empty", "not-an-object", "no-text", "body-not-json"],
)
def test_an_unreadable_answer_falls_back_with_a_note(
    container: Container, llm: FakeLlm, reply: Reply, note: str
) -> None:
    llm.script(reply)
    out = reword(container, NARRATIVE)
    assert out["source"] == "deterministic"
    assert out["text"] == NARRATIVE["text"]
    assert note in out["note"]
    assert llm.attempts == 1


def test_the_breaker_opens_then_half_opens_after_the_reset_time(
    tmp_path: Path, llm: FakeLlm
) -> None:
    container = _container(
        tmp_path, llm, llm_max_attempts=1, llm_breaker_fail_max=2, llm_breaker_reset_s=0.6
    )
    try:
        llm.script(default=Reply(status=503))
        assert reword(container, NARRATIVE)["source"] == "deterministic"
        assert llm_status(container)["llm"] == "on"
        tripped = reword(container, NARRATIVE)
        assert "several times in a row" in tripped["note"]
        assert "HTTP 503" in tripped["note"]
        assert llm.attempts == 2
        assert llm_status(container)["llm"] == "breaker_open"
        # While open, nothing reaches the server.
        out = reword(container, NARRATIVE)
        assert out["source"] == "deterministic" and "paused" in out["note"]
        assert llm.attempts == 2
        time.sleep(0.7)
        assert llm_status(container)["llm"] == "on"
        llm.script(answer({"text": PLAIN}))
        assert reword(container, NARRATIVE)["source"] == "llm"  # the half-open trial
        assert llm.attempts == 1
        assert llm_status(container)["llm"] == "on"
    finally:
        container.close()


def test_with_no_base_url_the_llm_is_off_and_nothing_is_sent(tmp_path: Path, llm: FakeLlm) -> None:
    container = _container(tmp_path, llm, llm_base_url="")
    try:
        llm.script()
        out = reword(container, NARRATIVE)
        assert out["source"] == "deterministic"
        assert "LLM is off" in out["note"]
        assert llm.attempts == 0
        assert llm_status(container) == {"llm": "off", "model": None, "sends_rows": False}
    finally:
        container.close()
