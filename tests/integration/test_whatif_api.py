"""What-if and dependence over real HTTP on SQLite and PostgreSQL.

What-if answers match what predict answers for the same changed rows; dependence curves
are built from real training rows, and each ICE point is the model's answer for that
training row with the column set to the grid value (checked through what-if). Bad input
is refused naming the variant or parameter and the column; other users get 404;
deployment keys only reach their own deployment.

One small LightGBM model on credit_data (binary "Status") is trained once per backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
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

    def deploy(self) -> str:
        name = "w-" + uuid.uuid4().hex[:10]
        r = self.owner.post(
            f"{API}/deployments", json={"name": name, "model_version_id": self.mv_id}
        )
        assert r.status_code == 201, r.text
        return name

    def what_if(self, body: dict[str, Any]) -> httpx.Response:
        return self.owner.post(f"{API}/model-versions/{self.mv_id}/what-if", json=body)

    def dependence(self, body: dict[str, Any]) -> httpx.Response:
        return self.owner.post(f"{API}/model-versions/{self.mv_id}/dependence", json=body)


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("whatif")
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
            rows = _json_rows(pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET]))
            yield World(container, server, owner, other, mv_id, rows)
    finally:
        server.stop()
        container.close()


# --- what-if -----------------------------------------------------------------------------


def test_what_if_scores_variants_as_predict_would_with_deltas(world: World) -> None:
    row = world.rows[0]
    variants = [{"Income": 20.0}, {"Income": 400.0, "Records": "yes"}, {"Job": "partime"}]
    r = world.what_if({"row": row, "variants": variants})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version_id"] == world.mv_id
    positive = body["explained_class"]
    assert positive in ("good", "bad") and body["target"] == f"probability of class '{positive}'"
    name = world.deploy()
    changed = [row] + [{**row, **v} for v in variants]
    predicted = world.owner.post(f"{API}/deployments/{name}/predict", json={"rows": changed})
    assert predicted.status_code == 200, predicted.text
    answers = [body["base"], *body["variants"]]
    for answer, p in zip(answers, predicted.json()["predictions"], strict=True):
        assert answer["prediction"] == p["prediction"]
        assert answer["probabilities"] == pytest.approx(p["probabilities"], abs=1e-6)
        assert answer["output"] == pytest.approx(p["probabilities"][positive], abs=1e-6)
    for v, sent in zip(body["variants"], variants, strict=True):
        assert v["changes"] == sent
        assert v["delta"] == pytest.approx(v["output"] - body["base"]["output"], abs=1e-12)
    # The changes move the answer: income and records are among credit's strongest signals.
    assert any(abs(v["delta"]) > 0.01 for v in body["variants"])


def test_what_if_flags_a_value_outside_the_training_range(world: World) -> None:
    r = world.what_if({"row": world.rows[0], "variants": [{"Income": 1e9}]})
    assert r.status_code == 200, r.text
    assert "out_of_range:Income" in r.json()["variants"][0]["flags"]
    assert "out_of_range:Income" not in r.json()["base"]["flags"]


def test_a_deployment_answers_what_if_for_its_owner_and_its_own_key_only(world: World) -> None:
    mine, elsewhere = world.deploy(), world.deploy()
    key = world.owner.post(f"{API}/deployments/{mine}/keys", json={"name": "app"}).json()["key"]
    body = {"row": world.rows[1], "variants": [{"Amount": 5000}]}
    direct = world.what_if(body).json()
    r = world.owner.post(f"{API}/deployments/{mine}/what-if", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["deployment"] == mine and r.json()["revision"] == 1
    assert r.json()["variants"] == direct["variants"]
    with httpx.Client(base_url=world.server.base_url, timeout=60) as anonymous:
        auth = {"Authorization": f"Bearer {key}"}
        r = anonymous.post(f"{API}/deployments/{mine}/what-if", json=body, headers=auth)
        assert r.status_code == 200, r.text
        r = anonymous.post(f"{API}/deployments/{elsewhere}/what-if", json=body, headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_scope"
        r = anonymous.post(f"{API}/model-versions/{world.mv_id}/what-if", json=body, headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_scope"
        assert anonymous.post(f"{API}/deployments/{mine}/what-if", json=body).status_code == 401
    assert world.other.post(f"{API}/deployments/{mine}/what-if", json=body).status_code == 404
    r = world.other.post(f"{API}/model-versions/{world.mv_id}/what-if", json=body)
    assert r.status_code == 404


@pytest.mark.parametrize("route", ["version", "deployment"])
def test_bad_what_if_input_names_the_variant_and_column(world: World, route: str) -> None:
    url = (
        f"{API}/model-versions/{world.mv_id}/what-if"
        if route == "version"
        else f"{API}/deployments/{world.deploy()}/what-if"
    )
    row = world.rows[0]

    def refused(body: Any) -> dict[str, Any]:
        r = world.owner.post(url, json=body)
        assert r.status_code == 422, r.text
        return dict(r.json()["error"])

    error = refused({"row": row, "variants": [{"Income": 50}, {"Colour": "red"}]})
    assert error["code"] == "unknown_column"
    assert error["details"] == {"variant": 1, "column": "Colour"}
    assert "variants[1]" in error["message"] and "'Colour'" in error["message"]
    error = refused({"row": row, "variants": [{"Age": 30}, {"Income": "lots"}]})
    assert error["code"] == "unparseable_value"
    assert error["details"]["variant"] == 1 and error["details"]["column"] == "Income"
    assert error["message"].startswith("variants[1]")
    missing = {k: v for k, v in row.items() if k != "Age"}
    error = refused({"row": missing, "variants": [{"Income": 50}]})
    assert error["code"] == "missing_column"
    assert error["details"]["parameter"] == "row" and error["details"]["column"] == "Age"
    assert error["message"].startswith("row has no 'Age'")
    for variants in ([], [{"Income": 1}] * 101):
        error = refused({"row": row, "variants": variants})
        assert error["code"] in ("invalid_variants", "invalid_input")
        assert "variants" in str(error["details"])
    error = refused({"row": row, "variants": [{}]})
    assert error["code"] == "invalid_variants" and error["details"]["variant"] == 0


# --- dependence --------------------------------------------------------------------------


def test_dependence_of_a_numeric_column_matches_what_if_at_every_point(world: World) -> None:
    r = world.dependence({"column": "Income", "grid_points": 12, "rows": 300, "ice_rows": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["column"] == "Income" and body["kind"] == "numeric"
    assert body["target"] == f"probability of class '{body['explained_class']}'"
    assert body["n_rows"] == 300 and "300 rows sampled" in body["rows"]
    grid = body["grid"]
    assert 2 <= len(grid) <= 12 and grid == sorted(grid) and len(set(grid)) == len(grid)
    incomes = {v["Income"] for v in world.rows if v["Income"] is not None}
    assert set(grid) <= incomes
    assert len(body["average"]) == len(grid) and len(body["ice"]) == 4
    hist = body["distribution"]
    assert sum(hist["counts"]) + hist["missing"] == 300
    assert len(hist["edges"]) == len(hist["counts"]) + 1
    # Each ICE point is the model's answer for that training row with Income at the value.
    curve = body["ice"][2]
    row = world.rows[curve["row"]]
    answer = world.what_if({"row": row, "variants": [{"Income": g} for g in grid]}).json()
    assert [v["output"] for v in answer["variants"]] == pytest.approx(curve["values"], abs=1e-6)


def test_the_mean_of_every_ice_curve_is_the_partial_dependence(world: World) -> None:
    body = world.dependence({"column": "Seniority", "rows": 150, "ice_rows": 150}).json()
    curves = np.array([c["values"] for c in body["ice"]])
    assert curves.shape == (150, len(body["grid"]))
    np.testing.assert_allclose(curves.mean(axis=0), body["average"], rtol=1e-9)
    assert len({c["row"] for c in body["ice"]}) == 150


def test_dependence_of_a_categorical_column_uses_its_categories_by_count(world: World) -> None:
    body = world.dependence({"column": "Home", "grid_points": 3}).json()
    assert body["kind"] == "categorical" and len(body["grid"]) == 3
    dist = body["distribution"]
    assert dist["categories"] == body["grid"]
    assert dist["counts"] == sorted(dist["counts"], reverse=True)
    assert sum(dist["counts"]) + dist["other"] + dist["missing"] == body["n_rows"] == 500
    homes = pd.read_csv(SAMPLES / "credit_data.csv")["Home"].value_counts()
    assert body["grid"][0] == homes.index[0]  # the most common home in the data
    assert set(body["grid"]) <= set(homes.index)


def test_dependence_can_explain_the_other_class(world: World) -> None:
    one = world.dependence({"column": "Income", "rows": 100, "grid_points": 5}).json()
    other = "good" if one["explained_class"] == "bad" else "bad"
    two = world.dependence(
        {"column": "Income", "rows": 100, "grid_points": 5, "class": other}
    ).json()
    assert two["explained_class"] == other
    assert np.add(one["average"], two["average"]) == pytest.approx([1.0] * 5, abs=1e-6)


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"column": "Colour"}, "unknown_column", "Colour"),
        ({"column": TARGET}, "unknown_column", TARGET),
        ({"column": "Income", "grid_points": 1}, "invalid_input", "grid_points"),
        ({"column": "Income", "grid_points": 101}, "invalid_input", "grid_points"),
        ({"column": "Income", "rows": 5_001}, "invalid_input", "rows"),
        ({"column": "Income", "ice_rows": 201}, "invalid_input", "ice_rows"),
        ({"column": "Income", "class": "maybe"}, "invalid_class", "maybe"),
        ({}, "invalid_input", "column"),
    ],
    ids=["unknown", "target", "grid-1", "grid-101", "rows", "ice", "class", "no-column"],
)
def test_bad_dependence_requests_are_refused_naming_what_is_wrong(
    world: World, body: dict[str, Any], code: str, named: str
) -> None:
    r = world.dependence(body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert named in error["message"] or named in str(error["details"])


def test_the_target_column_is_named_as_not_taken_by_the_model(world: World) -> None:
    error = world.dependence({"column": TARGET}).json()["error"]
    assert error["message"] == f"'{TARGET}' is in the data but the model does not take it."
    assert error["details"] == {"parameter": "column", "column": TARGET}


def test_another_user_cannot_see_a_versions_dependence(world: World) -> None:
    r = world.other.post(
        f"{API}/model-versions/{world.mv_id}/dependence", json={"column": "Income"}
    )
    assert r.status_code == 404
