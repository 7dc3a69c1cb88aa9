"""The optional LLM over real HTTP: ask about a dataset and a model, reword a narrative,
the status, and the admin configuration with its key sealed at rest.

The app runs on a real SQLite file and on PostgreSQL; the LLM is a small OpenAI-compatible server on
loopback (tests/support/llm_server.py) reached through the real ``openai`` client. Each
test sets the LLM configuration it needs first (admin PUT), so none depends on another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from sqlalchemy import text
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_quickly, upload_sample
from tests.support.llm_server import FakeLlm, Reply, answer
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.services import llm_answers, users
from narrate.storage.sql.visibility import Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
SECRET = "sk-test-only-4f1c9a7e2b"
FIRST_REF = "L10000"  # the first row's unique loan number


@dataclass
class World:
    container: Container
    llm: FakeLlm
    admin: httpx.Client
    owner: httpx.Client
    other: httpx.Client
    alice_id: str
    loans_id: str
    model_id: str

    def use_llm(self, *, api_key: str | None = "") -> None:
        r = self.admin.put(
            f"{API}/admin/llm",
            json={"base_url": self.llm.base_url, "model": "tiny-test-model", "api_key": api_key},
        )
        assert r.status_code == 200, r.text

    def llm_off(self) -> None:
        r = self.admin.put(f"{API}/admin/llm", json={"base_url": "", "model": ""})
        assert r.status_code == 200, r.text


def _loans_csv(folder: Path) -> Path:
    """credit_data with a unique loan number per row: a raw value that must not be sent."""
    frame = pl.read_csv(SAMPLES / "credit_data.csv")
    refs = pl.format("L{}", pl.int_range(10_000, 10_000 + frame.height))
    path = folder / "loans.csv"
    frame.with_columns(refs.alias("loan_ref")).write_csv(path)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("assistant")
    llm = FakeLlm().start()
    settings = make_settings(
        tmp,
        backend_url(request, tmp),
        llm_timeout_s=2.0,
        llm_backoff_s=0.01,
        llm_breaker_fail_max=1000,  # faults are tested in tests/unit/services/test_llm.py
    )
    container = build_container(settings)
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
        ):
            r = owner.post(
                f"{API}/datasets",
                files={"file": ("loans.csv", _loans_csv(tmp).read_bytes())},
                data={"target": "Status"},
            )
            assert r.status_code == 201, r.text
            hitters = upload_sample(owner, "hitters.csv", "Salary")
            model_id = train_quickly(owner, hitters["id"])
            yield World(container, llm, admin, owner, other, alice.id, r.json()["id"], model_id)
    finally:
        server.stop()
        container.close()
        llm.stop()


def _ask(client: httpx.Client, kind: str, record_id: str, question: str) -> httpx.Response:
    return client.post(f"{API}/{kind}/{record_id}/ask", json={"question": question})


def test_ask_about_a_dataset_cites_only_facts_it_was_given(world: World) -> None:
    world.use_llm()
    world.llm.script(answer({"answer": "It has 4,454 rows (F1).", "citations": ["F1", "F999", 7]}))
    r = _ask(world.owner, "datasets", world.loans_id, "How many rows are there?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "llm"
    assert body["answer"] == "It has 4,454 rows (F1)."
    assert body["citations"] == [
        {"id": "F1", "source": "profile.table", "name": "table rows", "value": 4454}
    ]
    assert "note" not in body
    assert body["sent"]["raw_rows"] == 0
    assert set(body["sent"]["kinds"]) == {"profile_summary", "narratives"}
    prompt = world.llm.prompts()
    assert "[F1] (profile.table) table rows: 4454" in prompt
    assert "Income: share missing" in prompt
    assert "How many rows are there?" in prompt
    # Only summaries: no raw row of the file reaches the LLM.
    assert FIRST_REF not in prompt
    assert "L1000" not in prompt


def test_a_wide_dataset_describes_the_columns_the_question_names_first(
    world: World, tmp_path: Path
) -> None:
    wide = pl.DataFrame({f"col_{i}": [float(i * 1000 + r) for r in range(50)] for i in range(50)})
    path = tmp_path / "wide.csv"
    wide.write_csv(path)
    r = world.owner.post(f"{API}/datasets", files={"file": ("wide.csv", path.read_bytes())})
    assert r.status_code == 201, r.text
    world.use_llm()
    world.llm.script(answer({"answer": "50 rows.", "citations": ["F1"]}))
    r = _ask(world.owner, "datasets", r.json()["id"], "What is the mean of col_49?")
    assert r.status_code == 200, r.text
    prompt = world.llm.prompts()
    assert "col_49: mean: 49024\n" in prompt  # 49,024.5: whole numbers from 1,000 up
    assert "col_0: kind" in prompt
    assert "col_23: kind" in prompt
    assert "col_24: kind" not in prompt  # 25 columns: col_49, then col_0 ... col_23
    assert "(only some of the 50 columns are listed)" in prompt


def test_rows_are_sent_only_when_an_admin_allows_them(world: World, tmp_path: Path) -> None:
    """The same database through a process with NARRATE_LLM_ALLOW_ROWS=true."""
    world.use_llm()
    settings = world.container.settings.model_copy(update={"llm_allow_rows": True})
    allowing = build_container(settings, with_executor=False)
    try:
        world.llm.script(answer({"answer": "The first loan is L10000.", "citations": ["F2"]}))
        out = llm_answers.ask(
            allowing, Owner(world.alice_id), "dataset", world.loans_id, "Show me a loan."
        )
    finally:
        allowing.close()
    assert out["sent"]["raw_rows"] == 5
    assert "rows" in out["sent"]["kinds"]
    assert FIRST_REF in world.llm.prompts()


def test_an_answer_citing_no_known_fact_falls_back_to_the_narrative(world: World) -> None:
    world.use_llm()
    world.llm.script(answer({"answer": "About 9,000 rows.", "citations": ["F9999"]}))
    r = _ask(world.owner, "datasets", world.loans_id, "How many rows are there?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "deterministic"
    assert "cited none of the facts" in body["note"]
    assert body["answer"].startswith("loans has 4,454 rows and 15 columns.")
    assert [c["name"] for c in body["citations"]] == ["data narrative"]


def test_a_failing_llm_answers_with_the_narrative_and_a_note(world: World) -> None:
    world.use_llm()
    world.llm.script(default=Reply(status=500))
    try:
        r = _ask(world.owner, "datasets", world.loans_id, "Which column is missing most?")
    finally:
        world.llm.script(default=answer({"answer": "", "citations": []}))
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "deterministic"
    assert "HTTP 500" in r.json()["note"]


def test_ask_about_a_model_uses_metrics_and_importances(world: World) -> None:
    world.use_llm()
    world.llm.script(answer({"answer": "RMSE is the error.", "citations": ["F1", "F5"]}))
    r = _ask(world.owner, "models", world.model_id, "How good is this model?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "llm"
    assert [c["id"] for c in body["citations"]] == ["F1", "F5"]
    assert body["citations"][0] == {
        "id": "F1",
        "source": "evaluation",
        "name": "task",
        "value": "regression",
    }
    assert {"evaluation_metrics", "importances", "narratives"} <= set(body["sent"]["kinds"])
    prompt = world.llm.prompts()
    assert "(evaluation.metrics) rmse (holdout):" in prompt
    assert "(importances) importance of " in prompt


@pytest.mark.parametrize("kind", ["datasets", "models"])
def test_with_the_llm_off_ask_answers_409_with_how_to_turn_it_on(world: World, kind: str) -> None:
    world.llm_off()
    record = world.loans_id if kind == "datasets" else world.model_id
    world.llm.script()
    r = _ask(world.owner, kind, record, "Anything?")
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "llm_off"
    assert "NARRATE_LLM_BASE_URL" in error["hint"] and "/admin/llm" in error["hint"]
    assert world.llm.attempts == 0


@pytest.mark.parametrize(
    ("question", "code"),
    [("x" * 1001, "question_too_long"), ("   ", "question_empty")],
    ids=["too-long", "blank"],
)
def test_a_bad_question_is_refused_naming_the_field(world: World, question: str, code: str) -> None:
    world.use_llm()
    r = _ask(world.owner, "datasets", world.loans_id, question)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["details"]["field"] == "question"


@pytest.mark.parametrize("kind", ["datasets", "models"])
def test_another_analyst_cannot_ask_about_records_they_cannot_see(world: World, kind: str) -> None:
    world.use_llm()
    record = world.loans_id if kind == "datasets" else world.model_id
    world.llm.script()
    r = _ask(world.other, kind, record, "How many rows?")
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert world.llm.attempts == 0


def test_status_says_whether_the_llm_is_on_and_what_is_sent(world: World) -> None:
    world.llm_off()
    r = world.owner.get(f"{API}/assistant/status")
    assert r.json() == {"llm": "off", "model": None, "sends_rows": False}
    world.use_llm()
    r = world.owner.get(f"{API}/assistant/status")
    assert r.json() == {"llm": "on", "model": "tiny-test-model", "sends_rows": False}


NARRATIVE: dict[str, Any] = {
    "text": "loans has 4,454 rows; 8.6% of Income is empty.",
    "facts": [
        {"name": "rows", "value": 4454, "source": "profile.table.rows"},
        {"name": "Income missing share", "value": 0.086, "source": "profile.columns.Income"},
    ],
}


def test_reword_keeps_the_numbers_or_keeps_the_text(world: World) -> None:
    world.use_llm()
    world.llm.script(answer({"text": "There are 4,454 loans. Income is blank for 8.6%."}))
    r = world.owner.post(f"{API}/narratives/reword", json=NARRATIVE)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "text": "There are 4,454 loans. Income is blank for 8.6%.",
        "facts": NARRATIVE["facts"],
        "source": "llm",
    }
    world.llm.script(answer({"text": "There are about 4,500 loans."}))
    r = world.owner.post(f"{API}/narratives/reword", json=NARRATIVE)
    assert r.json()["source"] == "deterministic"
    assert r.json()["text"] == NARRATIVE["text"]
    assert "4,500" in r.json()["note"]


def test_reword_with_the_llm_off_returns_the_text_with_a_note(world: World) -> None:
    world.llm_off()
    r = world.owner.post(f"{API}/narratives/reword", json=NARRATIVE)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "deterministic"
    assert "LLM is off" in r.json()["note"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "", "facts": []}, "body.text"),
        ({"text": "x" * 4001, "facts": []}, "body.text"),
        ({"text": "ok", "facts": [{"name": "n", "value": 1}] * 101}, "body.facts"),
    ],
    ids=["empty", "too-long", "too-many-facts"],
)
def test_reword_refuses_a_bad_narrative_naming_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    r = world.owner.post(f"{API}/narratives/reword", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
    assert f"'{field}'" in r.json()["error"]["message"]


def test_llm_configuration_is_for_admins_only(world: World) -> None:
    body = {"base_url": world.llm.base_url, "model": "m"}
    assert world.owner.put(f"{API}/admin/llm", json=body).status_code == 403
    r = world.owner.get(f"{API}/admin/llm")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "url",
    ["ftp://llm.internal/v1", "localhost:11434", "http://user:pw@llm.internal/v1", "http:///v1"],
    ids=["ftp", "no-scheme", "credentials", "no-host"],
)
def test_a_bad_base_url_is_refused_naming_the_field(world: World, url: str) -> None:
    r = world.admin.put(f"{API}/admin/llm", json={"base_url": url, "model": "m"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_base_url"
    assert error["details"]["field"] == "base_url"


def test_the_api_key_is_sealed_at_rest_never_returned_and_sent_as_bearer(world: World) -> None:
    world.use_llm(api_key=SECRET)
    r = world.admin.get(f"{API}/admin/llm")
    assert r.status_code == 200, r.text
    assert r.json()["api_key_set"] is True
    assert r.json()["source"] == "database"
    assert SECRET not in r.text
    with world.container.db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM llm_config")).mappings().one()
    assert not any(SECRET in str(value) for value in row.values())
    assert str(row["api_key_sealed"]).startswith("fernet:")
    world.llm.script(answer({"answer": "15 columns.", "citations": ["F2"]}))
    r = _ask(world.owner, "datasets", world.loans_id, "How many columns?")
    assert r.status_code == 200, r.text
    assert world.llm.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    # Omitting the key keeps it; an empty key removes it.
    r = world.admin.put(
        f"{API}/admin/llm", json={"base_url": world.llm.base_url, "model": "tiny-test-model"}
    )
    assert r.json()["api_key_set"] is True
    world.use_llm(api_key="")
    assert world.admin.get(f"{API}/admin/llm").json()["api_key_set"] is False
