"""Interpret over real HTTP on SQLite and PostgreSQL: reasons per prediction for a model
version and a deployment (additive, in raw columns, with a grounded sentence), deployment
keys scoped to their deployment, bad rows named, and importances computed once and stored.

One small LightGBM model on credit_data is trained once per backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.services import datasets, users
from narrate.storage.sql.visibility import Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
TARGET = "Status"


@dataclass
class World:
    container: Container
    server: AppServer
    owner: httpx.Client
    other: httpx.Client
    mv_id: str
    rows: list[dict[str, Any]]
    columns: list[str]

    def deploy(self) -> str:
        name = "x-" + uuid.uuid4().hex[:10]
        r = self.owner.post(
            f"{API}/deployments", json={"name": name, "model_version_id": self.mv_id}
        )
        assert r.status_code == 201, r.text
        return name


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("explain")
    url = backend_url(request, tmp)
    container = build_container(make_settings(tmp, url, deploy_refresh_s=0.2))
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
        ):
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            _, mv_id = train_lightgbm(owner, dataset["version"]["id"], TARGET)
            frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET])
            rows = [
                {k: (None if pd.isna(v) else v) for k, v in row.items()}
                for row in frame.head(20).to_dict(orient="records")
            ]
            yield World(container, server, owner, other, mv_id, rows, list(frame.columns))
    finally:
        server.stop()
        container.close()


def _assert_explained(world: World, body: dict[str, Any], n: int) -> None:
    assert body["model_version_id"] == world.mv_id
    assert body["scale"] == "log_odds" and body["method"] == "native"
    assert len(body["explanations"]) == n
    for e in body["explanations"]:
        assert set(e["contributions"]) == set(world.columns)
        total = e["base_value"] + sum(e["contributions"].values())
        assert total == pytest.approx(e["output"], rel=1e-6, abs=1e-9)
        natural = e["natural"]
        assert natural["scale"] == "probability"
        total = natural["base_value"] + sum(natural["contributions"].values())
        assert total == pytest.approx(natural["output"], rel=1e-6, abs=1e-9)
        assert e["explained_class"] == e["prediction"]
        assert f"likely '{e['prediction']}'" in e["narrative"]["text"]
        assert e["narrative"]["facts"]


def test_a_model_version_explains_rows_additively_in_raw_columns(world: World) -> None:
    r = world.owner.post(
        f"{API}/model-versions/{world.mv_id}/explain", json={"rows": world.rows[:5]}
    )
    assert r.status_code == 200, r.text
    _assert_explained(world, r.json(), 5)


def test_a_deployment_explains_what_it_predicts(world: World) -> None:
    name = world.deploy()
    rows = world.rows[:8]
    predicted = world.owner.post(f"{API}/deployments/{name}/predict", json={"rows": rows})
    r = world.owner.post(f"{API}/deployments/{name}/explain", json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["deployment"] == name and body["revision"] == 1
    _assert_explained(world, body, 8)
    labels = [p["prediction"] for p in predicted.json()["predictions"]]
    assert [e["prediction"] for e in body["explanations"]] == labels
    for e, p in zip(body["explanations"], predicted.json()["predictions"], strict=True):
        assert e["natural"]["output"] == pytest.approx(
            p["probabilities"][e["prediction"]], abs=1e-5
        )


def test_a_deployment_key_explains_its_own_deployment_only(world: World) -> None:
    mine, elsewhere = world.deploy(), world.deploy()
    key = world.owner.post(f"{API}/deployments/{mine}/keys", json={"name": "app"}).json()["key"]
    rows = {"rows": world.rows[:1]}
    with httpx.Client(base_url=world.server.base_url, timeout=60) as anonymous:
        auth = {"Authorization": f"Bearer {key}"}
        r = anonymous.post(f"{API}/deployments/{mine}/explain", json=rows, headers=auth)
        assert r.status_code == 200, r.text
        r = anonymous.post(f"{API}/deployments/{elsewhere}/explain", json=rows, headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_scope"
        # A key is for its deployment's routes, not for the model behind it.
        r = anonymous.post(f"{API}/model-versions/{world.mv_id}/explain", json=rows, headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_scope"
        assert anonymous.post(f"{API}/deployments/{mine}/explain", json=rows).status_code == 401
    assert world.other.post(f"{API}/deployments/{mine}/explain", json=rows).status_code == 404
    assert (
        world.other.post(f"{API}/model-versions/{world.mv_id}/explain", json=rows).status_code
        == 404
    )


@pytest.mark.parametrize("route", ["version", "deployment"])
def test_bad_rows_are_refused_naming_row_and_column(world: World, route: str) -> None:
    url = (
        f"{API}/model-versions/{world.mv_id}/explain"
        if route == "version"
        else f"{API}/deployments/{world.deploy()}/explain"
    )
    bad = [dict(world.rows[0]), {**world.rows[1], "Income": "lots"}]
    r = world.owner.post(url, json={"rows": bad})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"]["row"] == 1 and error["details"]["column"] == "Income"
    missing = {k: v for k, v in world.rows[0].items() if k != "Age"}
    r = world.owner.post(url, json={"rows": [missing]})
    assert r.status_code == 422 and r.json()["error"]["details"]["column"] == "Age"
    for rows in ([], world.rows * 6):
        r = world.owner.post(url, json={"rows": rows})
        assert r.status_code == 422, len(rows)


def test_importances_rank_a_strong_column_high_and_are_stored(world: World) -> None:
    r = world.owner.get(f"{API}/model-versions/{world.mv_id}/importances")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "permutation" and body["score"] == "roc_auc"
    assert body["repeats"] == 3 and body["n_rows"] == 4454
    assert {c["column"] for c in body["columns"]} == set(world.columns)
    top = [c["column"] for c in body["columns"][:3]]
    assert {"Income", "Seniority", "Records", "Amount", "Job"} & set(top), top
    assert all(c["std"] >= 0 for c in body["columns"])
    assert body["columns"][0]["mean_abs_contribution"] > 0
    stored = world.owner.get(f"{API}/model-versions/{world.mv_id}").json()["details"]
    assert stored["importances"]["columns"] == body["columns"]
    assert world.owner.get(f"{API}/model-versions/{world.mv_id}/importances").json() == body
    r = world.other.get(f"{API}/model-versions/{world.mv_id}/importances")
    assert r.status_code == 404
