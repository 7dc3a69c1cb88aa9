"""Personal data is masked everywhere the profile shows it, unless its owner reveals it.

A small CSV of e-mails, phone numbers and card numbers (as text and as plain integers) is
uploaded through the real app; the profile JSON and the Clean page HTML must not contain
one raw value, and ``reveal=true`` shows them to the owner only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import login
from tests.support.servers import AppServer

from narrate.bootstrap import Container
from narrate.core.data.pii import mask_profile
from narrate.services import users

OWNER_PASSWORD = "owner-password-123"
ROWS = 60


def _luhn(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass the Luhn test."""
    total = 0
    for index, char in enumerate(reversed(prefix + "0")):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return prefix + str((10 - total % 10) % 10)


def _table() -> dict[str, list[str]]:
    people = [i % 30 for i in range(ROWS)]  # each value twice, so top values repeat them
    cards = [_luhn(f"453914880{p:06d}") for p in people]
    return {
        "email": [f"person{p}.name@example.org" for p in people],
        "phone": [f"+1 415 555 {1000 + p}" for p in people],
        "card": [f"{c[:4]} {c[4:8]} {c[8:12]} {c[12:]}" for c in cards],
        "card_digits": [_luhn(f"52041234567{p:04d}") for p in people],
        # Nearly constant: the quality warning quotes the top value.
        "support": ["helpdesk.team@example.org"] * (ROWS - 1) + ["a.b@example.org"],
        "amount": [str(10 + p) for p in people],
    }


def _csv(table: dict[str, list[str]]) -> bytes:
    lines = [",".join(table)] + [",".join(row) for row in zip(*table.values(), strict=True)]
    return ("\n".join(lines) + "\n").encode()


def _raw_values(table: dict[str, list[str]]) -> set[str]:
    return {value for name, values in table.items() if name != "amount" for value in values}


@pytest.fixture
def owner(server: AppServer, container: Container) -> Iterator[httpx.Client]:
    users.create_user(container.db, "owner", OWNER_PASSWORD, "analyst")
    with login(server.base_url, "owner", OWNER_PASSWORD) as c:
        yield c


@pytest.fixture
def dataset(owner: httpx.Client) -> dict[str, Any]:
    r = owner.post("/api/v1/datasets", files={"file": ("customers.csv", _csv(_table()))}, data={})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _leaked(text: str) -> list[str]:
    return sorted(value for value in _raw_values(_table()) if value in text)


def test_profile_json_masks_every_value_of_personal_data_columns(
    owner: httpx.Client, dataset: dict[str, Any]
) -> None:
    for url in (
        f"/api/v1/datasets/{dataset['id']}/profile",
        f"/api/v1/versions/{dataset['version_id']}/profile",
    ):
        r = owner.get(url)
        assert r.status_code == 200, r.text
        assert _leaked(r.text) == []
        profile = r.json()
        assert profile["pii_masked"] is True
        found = {p["column"]: p["kind"] for p in profile["pii"]}
        assert found == {
            "email": "email",
            "phone": "phone",
            "card": "credit_card",
            "card_digits": "credit_card",
            "support": "email",
        }
        columns = profile["columns"]
        assert columns["email"]["top_values"][0]["value"].startswith("p***@example.org")
        assert "histogram" not in columns["card_digits"]  # its edges are card numbers
        assert str(columns["card_digits"]["max"]).startswith("*")
        # Columns without personal data keep their values and statistics.
        assert columns["amount"]["histogram"]["counts"]
        quoted = [w["message"] for w in profile["warnings"] if w["code"] == "near_constant"]
        assert quoted == [
            "'support' is 'h***@example.org' in 98.3% of rows; the other values "
            "are too rare to learn from."
        ]


def test_clean_page_masks_charts_warnings_and_narrative(
    owner: httpx.Client, dataset: dict[str, Any]
) -> None:
    page = owner.get("/stages/clean", params={"dataset": dataset["id"]})
    assert page.status_code == 200
    assert _leaked(page.text) == []
    assert 'data-testid="pii-reveal"' in page.text
    assert "h***@example.org" in page.text


def test_owner_can_reveal_personal_data_in_the_profile_and_the_page(
    owner: httpx.Client, dataset: dict[str, Any]
) -> None:
    r = owner.get(f"/api/v1/datasets/{dataset['id']}/profile", params={"reveal": "true"})
    assert r.status_code == 200
    assert "pii_masked" not in r.json()
    assert "helpdesk.team@example.org" in r.text
    assert "person0.name@example.org" in r.text
    page = owner.get("/stages/clean", params={"dataset": dataset["id"], "reveal": "true"})
    assert page.status_code == 200
    assert "helpdesk.team@example.org" in page.text
    assert "Mask them again" in page.text


def test_only_the_owner_may_reveal_not_even_an_admin(
    client: httpx.Client, dataset: dict[str, Any]
) -> None:
    for url in (
        f"/api/v1/datasets/{dataset['id']}/profile",
        f"/api/v1/versions/{dataset['version_id']}/profile",
    ):
        r = client.get(url, params={"reveal": "true"})
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "reveal_forbidden"
        assert error["message"] == "Only the dataset's owner can reveal its personal data."
        masked = client.get(url)
        assert masked.status_code == 200
        assert _leaked(masked.text) == []
    page = client.get("/stages/clean", params={"dataset": dataset["id"], "reveal": "true"})
    assert page.status_code == 403
    assert "helpdesk.team@example.org" not in page.text
    page = client.get("/stages/clean", params={"dataset": dataset["id"]})
    assert page.status_code == 200
    assert 'data-testid="pii-reveal"' not in page.text
    assert _leaked(page.text) == []


@pytest.mark.parametrize("value", ["yes-please", "2"], ids=["word", "number"])
def test_reveal_must_be_a_boolean(owner: httpx.Client, dataset: dict[str, Any], value: str) -> None:
    r = owner.get(f"/api/v1/datasets/{dataset['id']}/profile", params={"reveal": value})
    assert r.status_code == 422
    assert "reveal" in r.text


def test_mask_profile_masks_a_personal_target_and_leaves_its_input_alone() -> None:
    profile = {
        "pii": [{"column": "email", "kind": "email"}],
        "columns": {"email": {"top_values": [{"value": "ann.lee@example.org", "count": 3}]}},
        "target": {"column": "email", "classes": [{"value": "ann.lee@example.org", "count": 3}]},
        "warnings": [{"message": "'email' is 'ann.lee@example.org' in 99% of rows"}],
        "narrative": "The most common is 'ann.lee@example.org'.",
    }
    before = json.dumps(profile)
    masked = mask_profile(profile)
    assert json.dumps(profile) == before
    assert "ann.lee" not in json.dumps(masked)
    assert masked["target"]["classes"][0]["value"] == "a***@example.org"
    assert masked["narrative"] == "The most common is 'a***@example.org'."
