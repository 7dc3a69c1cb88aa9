"""Names, descriptions and training options are bounded: no control characters, no huge
numbers (a NUL is refused by PostgreSQL, so it must be a 422 on every backend)."""

from __future__ import annotations

import httpx
import pytest
from tests.support.api import upload_sample


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"description": "line\x1b[31m red"}, "description"),
    ],
    ids=["nul-name", "escape-description"],
)
def test_dataset_names_with_control_characters_are_422(
    client: httpx.Client, body: dict[str, str], parameter: str
) -> None:
    dataset = upload_sample(client, "penguins.csv", "species")
    r = client.patch(f"/api/v1/datasets/{dataset['id']}", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["details"]["parameter"]) == ("control_characters", parameter)
    assert client.get(f"/api/v1/datasets/{dataset['id']}").json()["name"] == "penguins"


def test_upload_name_with_a_nul_is_422_and_stores_nothing(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/datasets",
        files={"file": ("p.csv", b"a,b\n1,2\n")},
        data={"name": "x\x00y"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["parameter"] == "name"
    assert client.get("/api/v1/datasets").json()["total"] == 0


def test_descriptions_keep_tabs_and_line_breaks(client: httpx.Client) -> None:
    dataset = upload_sample(client, "penguins.csv", "species")
    r = client.patch(f"/api/v1/datasets/{dataset['id']}", json={"description": "one\ttwo\r\nthree"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_trials": 10**40}, "max_trials"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"n_jobs": 10**6}, "n_jobs"),
        ({"name": "m\x00"}, "name"),
    ],
    ids=["trials", "negative-seed", "huge-seed", "jobs", "nul-name"],
)
def test_training_options_out_of_range_are_422_before_a_job_starts(
    client: httpx.Client, extra: dict[str, object], field: str
) -> None:
    dataset = upload_sample(client, "penguins.csv", "species")
    r = client.post("/api/v1/models", json={"dataset_id": dataset["id"], **extra})
    assert r.status_code == 422, r.text
    assert field in r.text
    assert client.get("/api/v1/jobs").json()["items"] == []


def test_token_names_with_control_characters_are_422(client: httpx.Client) -> None:
    r = client.post("/api/v1/me/tokens", json={"name": "ci\x00"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "control_characters"
