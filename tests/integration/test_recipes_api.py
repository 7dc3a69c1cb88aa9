"""The Transform stage over real HTTP: validate, preview, apply (job), lineage, diff, reproduce."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.conftest import SAMPLES

RECIPE = {
    "steps": [
        {"step": "drop_missing", "columns": ["Income"], "how": "any"},
        {"step": "filter", "expression": "Age >= 20"},
        {"step": "derive", "name": "ratio", "expression": "Amount / (Price + 1)"},
        {"step": "impute", "columns": ["Assets"], "strategy": "median"},
        {"step": "scale", "columns": ["Amount"], "method": "standard"},
        {"step": "encode", "columns": ["Home"], "method": "one_hot"},
    ]
}


@pytest.fixture
def credit(client: httpx.Client) -> dict[str, Any]:
    r = client.post(
        "/api/v1/datasets",
        files={"file": ("credit.csv", (SAMPLES / "credit_data.csv").read_bytes())},
        data={"target": "Status"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def _apply(
    client: httpx.Client, dataset_id: str, recipe: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    r = client.post(f"/api/v1/datasets/{dataset_id}/recipes/apply", json={**recipe, **extra})
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return job


def test_step_catalog_lists_every_step_with_a_schema(client: httpx.Client) -> None:
    items = client.get("/api/v1/recipes/steps").json()["items"]
    names = {i["name"] for i in items}
    assert {"impute", "filter", "derive", "encode", "scale", "drop_missing", "pii", "sort"} <= names
    assert all(i["json_schema"]["type"] == "object" and i["description"] for i in items)


@pytest.mark.parametrize(
    ("steps", "words", "step_index"),
    [
        ([{"step": "scale", "columns": ["nope"], "method": "standard"}], "nope", 0),
        ([{"step": "scale", "columns": ["Home"], "method": "standard"}], "Home", 0),
        ([{"step": "filter", "expression": "Age >>= 3"}], "Age >>= 3", 0),
        (
            [{"step": "drop_columns", "columns": ["Age"]}, {"step": "impute", "columns": ["Age"]}],
            "Age",
            1,
        ),
    ],
    ids=["unknown-column", "scale-text-column", "bad-expression", "uses-dropped-column"],
)
def test_validation_names_step_and_column(
    client: httpx.Client,
    credit: dict[str, Any],
    steps: list[dict[str, Any]],
    words: str,
    step_index: int,
) -> None:
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/validate", json={"steps": steps})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    issue = body["issues"][0]
    assert issue["step_index"] == step_index
    assert words in issue["message"]


def test_unknown_step_type_is_422_listing_valid_steps(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/validate", json={"steps": [{"step": "teleport"}]}
    )
    assert r.status_code == 422
    assert "impute" in r.json()["error"]["message"]


def test_preview_shows_before_and_after(client: httpx.Client, credit: dict[str, Any]) -> None:
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/preview", json=RECIPE)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["rows"]["before"] == 4454 and 0 < p["rows"]["after"] < 4454
    assert "ratio" in p["columns"]["added"] and "Home" in p["columns"]["removed"]
    assert p["sample"]["changed_cells"]


def test_invalid_recipe_preview_is_422_with_issues(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/preview",
        json={"steps": [{"step": "impute", "columns": ["ghost"], "strategy": "mean"}]},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["issues"][0]["column"] == "ghost"


def test_apply_creates_a_version_with_lineage_and_same_recipe_reuses_it(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    job = _apply(client, credit["id"], RECIPE)
    vid = job["result"]["version_id"]
    assert vid != credit["version_id"]
    version = client.get(f"/api/v1/versions/{vid}").json()
    assert version["parent_version_id"] == credit["version_id"]
    assert version["recipe"]["steps"][0]["step"] == "drop_missing"
    assert client.get(f"/api/v1/datasets/{credit['id']}").json()["version_id"] == vid
    again = _apply(client, credit["id"], RECIPE, version_id=credit["version_id"])
    assert again["result"]["version_id"] == vid and again["result"]["reused"] is True
    graph = client.get(f"/api/v1/versions/{vid}/lineage").json()
    assert {n["id"] for n in graph["nodes"]} == {credit["version_id"], vid}
    assert graph["edges"] == [
        {
            "from": credit["version_id"],
            "to": vid,
            "type": "recipe",
            "steps": [s["step"] for s in RECIPE["steps"]],
        }
    ]


def test_data_loss_needs_confirmation_and_creates_nothing_without_it(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    lossy = {"steps": [{"step": "filter", "expression": "Age > 60"}]}
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/apply", json=lossy)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "confirm_data_loss"
    assert len(client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]) == 1
    job = _apply(client, credit["id"], lossy, confirm_data_loss=True)
    assert client.get(f"/api/v1/versions/{job['result']['version_id']}").json()["n_rows"] < 2000


def test_dropping_the_target_needs_confirmation(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/apply",
        json={"steps": [{"step": "drop_columns", "columns": ["Status"]}]},
    )
    assert r.status_code == 409 and "target" in r.json()["error"]["message"]


def test_empty_result_is_refused(client: httpx.Client, credit: dict[str, Any]) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/apply",
        json={"steps": [{"step": "filter", "expression": "Age > 1000"}], "confirm_data_loss": True},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_result"


def test_compare_reproduce_and_restore(client: httpx.Client, credit: dict[str, Any]) -> None:
    vid = _apply(client, credit["id"], RECIPE)["result"]["version_id"]
    diff = client.post(
        "/api/v1/versions/compare", json={"a": credit["version_id"], "b": vid}
    ).json()["diff"]
    assert "ratio" in str(diff) and "Home" in str(diff)
    rep = client.post(f"/api/v1/versions/{vid}/reproduce").json()
    assert rep["matches"] is True, rep
    assert rep["reproduced_hash"] == rep["expected_hash"]
    restored = client.post(f"/api/v1/versions/{credit['version_id']}/restore")
    assert restored.status_code == 200
    assert (
        client.get(f"/api/v1/datasets/{credit['id']}").json()["version_id"] == credit["version_id"]
    )
    assert len(client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]) == 2


def test_recipe_can_be_sent_as_yaml_text_through_the_cli_service(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    from narrate.services.recipes import parse_recipe

    parsed = parse_recipe("steps:\n  - step: impute\n    columns: [Assets]\n    strategy: median\n")
    assert parsed.steps[0].step == "impute"  # type: ignore[union-attr]
