"""The assistant over real HTTP on SQLite and PostgreSQL: recommendations for a real
sample, one-click actions applied through the recipe API, and advice after training.

One small LightGBM model on hitters (263 rows: a small dataset) is trained per backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm, upload_sample, wait_job
from tests.support.recommendations import assert_grounded
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.core.automl.config import TrainConfig
from narrate.services import users

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"


@dataclass
class World:
    container: Container
    owner: httpx.Client
    other: httpx.Client
    loans_id: str
    hitters_id: str
    model_id: str
    mv_id: str


def _loans_csv(folder: Path) -> Path:
    """credit_data with a loan number per row: an identifier the assistant should drop."""
    frame = pl.read_csv(SAMPLES / "credit_data.csv")
    refs = pl.format("L{}", pl.int_range(10_000, 10_000 + frame.height))
    frame = frame.with_columns(refs.alias("loan_ref"))
    path = folder / "loans.csv"
    frame.select(["loan_ref", *frame.columns[:-1]]).write_csv(path)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("recommend")
    container = build_container(make_settings(tmp, backend_url(request, tmp)))
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
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
            model_id, mv_id = train_lightgbm(owner, hitters["version"]["id"], "Salary")
            yield World(container, owner, other, r.json()["id"], hitters["id"], model_id, mv_id)
    finally:
        server.stop()
        container.close()


def _items(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    for item in items:
        assert_grounded(item)
    return {item["id"]: item for item in items}


def _apply(client: httpx.Client, dataset_id: str, item: dict[str, Any]) -> dict[str, Any]:
    assert item["action"]["type"] == "recipe_steps"
    r = client.post(
        f"{API}/datasets/{dataset_id}/recipes/apply", json={"steps": item["action"]["steps"]}
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return dict(client.get(f"{API}/versions/{job['result']['version_id']}").json())


def test_a_real_sample_gets_grounded_recommendations(world: World) -> None:
    upload = world.owner.get(f"{API}/datasets/{world.loans_id}/versions").json()["items"][0]
    r = world.owner.get(
        f"{API}/datasets/{world.loans_id}/recommendations", params={"version_id": upload["id"]}
    )
    items = _items(r)
    assert r.json()["target"] == "Status"
    assert {
        "problem_type:Status",
        "exclude_identifier:loan_ref",
        "impute_missing:Income",
        "log_transform:Assets",
    } <= set(items)
    assert items["problem_type:Status"]["action"] == {
        "type": "training_options",
        "options": {"target": "Status", "task": "binary"},
    }
    rows = f"{pl.read_csv(SAMPLES / 'credit_data.csv').height:,}"
    reason = items["exclude_identifier:loan_ref"]["reason"]
    assert f"{rows} distinct values in {rows} rows" in reason


def test_applying_the_identifier_item_removes_the_column(world: World) -> None:
    before = _items(world.owner.get(f"{API}/datasets/{world.loans_id}/recommendations"))
    version = _apply(world.owner, world.loans_id, before["exclude_identifier:loan_ref"])
    assert "loan_ref" not in [c["name"] for c in version["columns"]]
    after = world.owner.get(f"{API}/datasets/{world.loans_id}/recommendations")
    assert after.json()["version_id"] == version["id"]
    assert "exclude_identifier:loan_ref" not in _items(after)


def test_applying_the_impute_item_fills_the_gaps(world: World) -> None:
    items = _items(world.owner.get(f"{API}/datasets/{world.loans_id}/recommendations"))
    version = _apply(world.owner, world.loans_id, items["impute_missing:Income"])
    profile = world.owner.get(f"{API}/versions/{version['id']}/profile").json()
    assert profile["columns"]["Income"]["missing"] == 0


def test_another_target_and_an_older_version_can_be_asked_for(world: World) -> None:
    versions = world.owner.get(f"{API}/datasets/{world.loans_id}/versions").json()["items"]
    first = versions[0]["id"]
    r = world.owner.get(
        f"{API}/datasets/{world.loans_id}/recommendations",
        params={"version_id": first, "target": "Home"},
    )
    items = _items(r)
    assert r.json()["version_id"] == first and r.json()["target"] == "Home"
    assert items["problem_type:Home"]["action"]["options"]["task"] == "multiclass"
    assert "exclude_identifier:loan_ref" in items


def test_an_unknown_target_is_refused_naming_it(world: World) -> None:
    r = world.owner.get(
        f"{API}/datasets/{world.loans_id}/recommendations", params={"target": "Nope"}
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "unknown_column"
    assert error["details"] == {"parameter": "target", "column": "Nope"}
    assert "'Nope'" in error["message"]


def test_a_version_of_another_dataset_is_not_found(world: World) -> None:
    other_version = world.owner.get(f"{API}/datasets/{world.hitters_id}").json()["version"]["id"]
    r = world.owner.get(
        f"{API}/datasets/{world.loans_id}/recommendations", params={"version_id": other_version}
    )
    assert r.status_code == 404
    assert r.json()["error"]["details"]["parameter"] == "version_id"


def test_another_user_sees_neither_route(world: World) -> None:
    for path in (
        f"{API}/datasets/{world.loans_id}/recommendations",
        f"{API}/models/{world.model_id}/recommendations",
    ):
        r = world.other.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


def test_a_trained_model_on_small_data_gets_advice(world: World) -> None:
    r = world.owner.get(f"{API}/models/{world.model_id}/recommendations")
    items = _items(r)
    assert r.json()["model_version_id"] == world.mv_id
    small = items["small_dataset"]
    assert small["kind"] == "train"
    assert "labelled rows, under 1,000" in small["reason"]
    TrainConfig.model_validate({"target": "Salary", **small["action"]["options"]})


def test_model_advice_uses_importances_once_they_are_stored(world: World) -> None:
    r = world.owner.get(f"{API}/model-versions/{world.mv_id}/importances")
    assert r.status_code == 200, r.text
    items = _items(world.owner.get(f"{API}/models/{world.model_id}/recommendations"))
    # hitters has no leaking column: importances are spread, so no drop is suggested
    assert not [i for i in items.values() if i["rule"] == "leaking_column"]
