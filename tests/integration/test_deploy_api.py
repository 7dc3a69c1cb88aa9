"""Deploy over real HTTP on SQLite and PostgreSQL: deployments, predictions and each bad
input, rollback during traffic, stages, shadow and canary, key scoping, batch jobs with
cancel and clean-up, and the prediction log.

One small LightGBM model with two versions (a training run and a refit) is trained once
per backend; the tests share it and each creates its own deployments.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import polars as pl
import pytest
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm, wait_job
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.services import datasets, users
from narrate.storage.sql.visibility import SYSTEM, Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
TARGET = "Status"


@dataclass
class World:
    container: Container
    server: AppServer
    owner: httpx.Client
    admin: httpx.Client
    other: httpx.Client
    model_id: str
    mv1: str
    mv2: str
    rows: list[dict[str, Any]]
    frame: pd.DataFrame
    version_id: str

    def deploy(self, mv_id: str | None = None, **extra: Any) -> str:
        name = "d-" + uuid.uuid4().hex[:10]
        r = self.owner.post(
            f"{API}/deployments",
            json={"name": name, "model_version_id": mv_id or self.mv1, **extra},
        )
        assert r.status_code == 201, r.text
        return name


def _train(owner: httpx.Client, version_id: str) -> tuple[str, str, str]:
    model_id, mv1 = train_lightgbm(owner, version_id, TARGET)
    refit = owner.post(f"{API}/models/{model_id}/refit", json={"version_id": version_id})
    assert refit.status_code == 202, refit.text
    assert wait_job(owner, refit.json()["job_id"])["status"] == "succeeded"
    mv2 = owner.get(f"{API}/models/{model_id}").json()["current_version_id"]
    assert mv2 != mv1
    return model_id, mv1, mv2


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("deploy")
    url = backend_url(request, tmp)
    container = build_container(
        make_settings(tmp, url, prediction_log_flush_s=0.2, deploy_refresh_s=0.2)
    )
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    app = create_app(container.settings, container)
    server = AppServer(app).start()
    try:
        with (
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
        ):
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            model_id, mv1, mv2 = _train(owner, dataset["version"]["id"])
            frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET])
            rows = [
                {k: (None if pd.isna(v) else v) for k, v in row.items()}
                for row in frame.head(50).to_dict(orient="records")
            ]
            yield World(
                container,
                server,
                owner,
                admin,
                other,
                model_id,
                mv1,
                mv2,
                rows,
                frame,
                dataset["version"]["id"],
            )
    finally:
        server.stop()
        container.close()


def _predict(
    client: httpx.Client, name: str, rows: list[dict[str, Any]], **kw: Any
) -> httpx.Response:
    return client.post(f"{API}/deployments/{name}/predict", json={"rows": rows}, **kw)


# --- deployments --------------------------------------------------------------------------


def test_deploy_get_list_and_the_contract_shapes(world: World) -> None:
    name = world.deploy()
    got = world.owner.get(f"{API}/deployments/{name}").json()
    assert got["model_version_id"] == world.mv1
    assert got["previous_model_version_id"] is None
    assert got["status"] == "active" and got["engine"] == "serving"
    assert got["url"] == f"/api/v1/deployments/{name}/predict"
    assert [r["number"] for r in got["revisions"]] == [1]
    listed = world.owner.get(f"{API}/deployments", params={"limit": 1}).json()
    assert set(listed) == {"items", "total", "next"} and len(listed["items"]) == 1
    assert listed["total"] >= 1
    # Another analyst sees none of it; an admin sees it.
    assert world.other.get(f"{API}/deployments/{name}").status_code == 404
    assert _predict(world.other, name, world.rows[:1]).status_code == 404
    assert world.admin.get(f"{API}/deployments/{name}").status_code == 200


def test_bad_deployments_are_refused_with_the_parameter_named(world: World) -> None:
    name = world.deploy()
    r = world.owner.post(f"{API}/deployments", json={"name": name, "model_version_id": world.mv1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken"
    r = world.owner.post(
        f"{API}/deployments", json={"name": "Bad Name", "model_version_id": world.mv1}
    )
    assert r.status_code == 422
    r = world.owner.post(
        f"{API}/deployments", json={"name": "x-missing", "model_version_id": "nope"}
    )
    assert r.status_code == 404 and r.json()["error"]["details"]["parameter"] == "model_version_id"
    # Bob cannot deploy Alice's model version.
    r = world.other.post(
        f"{API}/deployments", json={"name": "x-bob", "model_version_id": world.mv1}
    )
    assert r.status_code == 404
    # A deployed model cannot be deleted.
    r = world.owner.delete(f"{API}/models/{world.model_id}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "model_deployed"


# --- predictions --------------------------------------------------------------------------


def test_predict_returns_labels_probabilities_and_ids(world: World) -> None:
    name = world.deploy()
    r = _predict(world.owner, name, world.rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version_id"] == world.mv1 and body["arm"] == "primary"
    assert len(body["predictions"]) == len(world.rows)
    ids = {p["prediction_id"] for p in body["predictions"]}
    assert len(ids) == len(world.rows)
    for p in body["predictions"]:
        assert p["prediction"] in {"good", "bad"}
        assert set(p["probabilities"]) == {"good", "bad"}
        assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_serving_equals_evaluation_on_the_same_rows(world: World) -> None:
    """The deployed model answers exactly as the joblib pipeline the evaluation uses,
    tuned threshold included."""
    from narrate.core.automl.search import predict_scores
    from narrate.services.training import load_pipeline
    from narrate.storage.sql.tables import ModelVersion

    name = world.deploy()
    rows = world.rows
    body = _predict(world.owner, name, rows).json()
    with world.container.db.session() as s:
        mv = s.get(ModelVersion, world.mv1)
        assert mv is not None
        s.expunge(mv)
    pipeline = load_pipeline(world.container, mv)
    # The evaluation scores the stored version (types inferred at upload: "no" is False);
    # the deployment got the same rows as they are in the file.
    version = datasets.get_version(world.container, SYSTEM, world.version_id)
    stored = datasets.load_frame(world.container, version).to_pandas().drop(columns=[TARGET])
    classes = sorted(str(c) for c in mv.details["problem"]["classes"])
    scores = predict_scores(pipeline, stored.head(len(rows)), "binary", classes)
    positive = classes.index(str(mv.details["problem"]["positive_class"]))
    threshold = 0.5 if mv.threshold is None else mv.threshold
    expected = np.where(scores[:, positive] >= threshold, classes[positive], classes[1 - positive])
    served = [p["prediction"] for p in body["predictions"]]
    assert served == expected.tolist()
    got = np.array([p["probabilities"][classes[positive]] for p in body["predictions"]])
    np.testing.assert_allclose(got, scores[:, positive], atol=1e-5)


@pytest.mark.parametrize(
    ("change", "code", "column"),
    [
        (lambda r: r.pop("Income"), "missing_column", "Income"),
        (lambda r: r.update(Income="lots"), "unparseable_value", "Income"),
        (lambda r: r.update(Income={"a": 1}), "wrong_type", "Income"),
    ],
    ids=["missing column", "unparseable value", "wrong type"],
)
def test_each_bad_input_is_a_422_naming_row_and_column(
    world: World, change: Any, code: str, column: str
) -> None:
    name = world.deploy()
    rows = [dict(r) for r in world.rows[:3]]
    change(rows[2])
    r = _predict(world.owner, name, rows)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["details"]["row"] == 2 and error["details"]["column"] == column
    assert "2" in error["message"] and column in error["message"]


def test_shapes_that_are_not_rows_are_refused(world: World) -> None:
    name = world.deploy()
    url = f"{API}/deployments/{name}/predict"
    assert world.owner.post(url, json={"rows": []}).status_code == 422
    assert world.owner.post(url, json={"rows": "x"}).status_code == 422
    assert world.owner.post(url, json={"nope": 1}).status_code == 422
    r = world.owner.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    too_many = [world.rows[0]] * (world.container.settings.max_predict_rows + 1)
    r = world.owner.post(url, json={"rows": too_many})
    assert r.status_code == 422 and r.json()["error"]["details"]["parameter"] == "rows"


def test_unseen_missing_and_out_of_range_values_are_flagged_not_refused(world: World) -> None:
    name = world.deploy()
    row = dict(world.rows[0])
    row.update(Home="castle", Income=None, Age=1000, Surprise="extra")
    r = _predict(world.owner, name, [row, world.rows[1]])
    assert r.status_code == 200, r.text
    body = r.json()
    flags = body["predictions"][0]["flags"]
    assert "unseen_category:Home" in flags
    assert "missing:Income" in flags
    assert "out_of_range:Age" in flags
    assert body["extra_columns"] == ["Surprise"]


# --- rollback, stages, challengers ------------------------------------------------------------


def test_patch_and_rollback_during_traffic_never_fail_a_request(world: World) -> None:
    name = world.deploy()
    key = world.owner.post(f"{API}/deployments/{name}/keys", json={"name": "traffic"}).json()["key"]
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=world.server.base_url, timeout=30) as app_client:
            while not stop.is_set():
                r = _predict(
                    app_client, name, world.rows[:2], headers={"Authorization": f"Bearer {key}"}
                )
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                else:
                    seen.append(r.json()["model_version_id"])

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        r = world.owner.patch(
            f"{API}/deployments/{name}", json={"model_version_id": world.mv2, "reason": "refit"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["previous_model_version_id"] == world.mv1
        time.sleep(0.3)
        r = world.owner.post(f"{API}/deployments/{name}/rollback", json={"reason": "worse"})
        assert r.status_code == 200, r.text
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert {world.mv1, world.mv2} <= set(seen)
    got = world.owner.get(f"{API}/deployments/{name}").json()
    assert got["model_version_id"] == world.mv1
    assert [(r["number"], r["action"]) for r in got["revisions"]] == [
        (3, "rollback"),
        (2, "update"),
        (1, "create"),
    ]
    assert got["revisions"][0]["reason"] == "worse"
    assert got["revisions"][1]["actor_id"]
    # The process that made the change answers with the new version at once.
    assert _predict(world.owner, name, world.rows[:1]).json()["model_version_id"] == world.mv1


def test_rollback_without_history_is_a_conflict(world: World) -> None:
    name = world.deploy()
    r = world.owner.post(f"{API}/deployments/{name}/rollback", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "nothing_to_roll_back"


def test_a_deployment_can_follow_the_production_stage(world: World) -> None:
    r = world.owner.post(f"{API}/model-versions/{world.mv1}/stage", json={"stage": "production"})
    assert r.status_code == 200, r.text
    name = "f-" + uuid.uuid4().hex[:8]
    r = world.owner.post(
        f"{API}/deployments",
        json={"name": name, "model_id": world.model_id, "follow_stage": "production"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_version_id"] == world.mv1
    r = world.owner.post(
        f"{API}/model-versions/{world.mv2}/stage", json={"stage": "production", "reason": "better"}
    )
    assert r.status_code == 200 and name in r.json()["switched_deployments"]
    assert _predict(world.owner, name, world.rows[:1]).json()["model_version_id"] == world.mv2
    history = world.owner.get(f"{API}/model-versions/{world.mv1}/stage").json()
    assert history["stage"] == "archived"
    assert [h["to_stage"] for h in history["history"]][:2] == ["archived", "production"]
    got = world.owner.get(f"{API}/deployments/{name}").json()
    assert got["revisions"][0]["action"] == "stage"
    r = world.owner.post(f"{API}/model-versions/{world.mv1}/stage", json={"stage": "gold"})
    assert r.status_code == 422


def _log(world: World, name: str, expect: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = world.owner.get(
            f"{API}/deployments/{name}/predictions", params={"limit": 500}
        ).json()["items"]
        if len(items) >= expect:
            return items
        time.sleep(0.2)
    raise AssertionError(f"the log holds {len(items)} of {expect} predictions")


def test_shadow_is_logged_not_returned_and_compared(world: World) -> None:
    name = world.deploy(shadow_model_version_id=world.mv2)
    body = _predict(world.owner, name, world.rows[:10]).json()
    assert body["model_version_id"] == world.mv1
    assert all(p["arm"] == "primary" for p in body["predictions"])
    items = _log(world, name, 20)
    arms = {(i["arm"], i["model_version_id"]) for i in items}
    assert arms == {("primary", world.mv1), ("shadow", world.mv2)}
    primary_ids = {i["prediction_id"] for i in items if i["arm"] == "primary"}
    shadow_ids = {i["prediction_id"] for i in items if i["arm"] == "shadow"}
    assert primary_ids == shadow_ids
    stats = world.owner.get(f"{API}/deployments/{name}/stats").json()
    assert stats["arms"]["shadow"]["n"] == 10 and stats["arms"]["primary"]["n"] == 10
    assert 0 <= stats["agreement_rate"] <= 1
    assert stats["total"] == 10 and stats["series"]


def test_canary_gets_its_share_and_is_labelled(world: World) -> None:
    name = world.deploy(canary_model_version_id=world.mv2, canary_fraction=0.5)
    arms = []
    for _ in range(40):
        body = _predict(world.owner, name, world.rows[:1]).json()
        arms.append(body["arm"])
        expected = world.mv2 if body["arm"] == "canary" else world.mv1
        assert body["model_version_id"] == expected
        assert body["predictions"][0]["arm"] == body["arm"]
    assert 5 <= arms.count("canary") <= 35
    r = world.owner.post(
        f"{API}/deployments",
        json={
            "name": "x-both-" + uuid.uuid4().hex[:6],
            "model_version_id": world.mv1,
            "shadow_model_version_id": world.mv2,
            "canary_model_version_id": world.mv2,
            "canary_fraction": 0.1,
        },
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "shadow_and_canary"


# --- keys -----------------------------------------------------------------------------------


def test_a_key_predicts_on_its_deployment_only(world: World) -> None:
    a, b = world.deploy(), world.deploy()
    created = world.owner.post(f"{API}/deployments/{a}/keys", json={"name": "app"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("ndk_")
    listed = world.owner.get(f"{API}/deployments/{a}/keys").json()["items"]
    assert "key" not in listed[0] and listed[0]["prefix"] == key[:10]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=world.server.base_url, headers=headers) as app:
        assert _predict(app, a, world.rows[:1]).status_code == 200
        r = _predict(app, b, world.rows[:1])
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_scope"
        for method, path in [
            ("GET", f"{API}/deployments/{a}"),
            ("GET", f"{API}/deployments"),
            ("GET", f"{API}/datasets"),
            ("GET", f"{API}/models/{world.model_id}"),
            ("POST", f"{API}/deployments/{a}/rollback"),
            ("POST", f"{API}/deployments/{a}/keys"),
        ]:
            r = app.request(method, path, json={} if method == "POST" else None)
            assert r.status_code == 403, (method, path, r.status_code)
        # Revoked: refused at once by the server that revoked it.
        key_id = listed[0]["key_id"]
        assert world.owner.delete(f"{API}/deployments/{a}/keys/{key_id}").status_code == 204
        r = _predict(app, a, world.rows[:1])
        assert r.status_code == 401 and r.json()["error"]["code"] == "key_revoked"


def test_undeploy_and_restore(world: World) -> None:
    name = world.deploy()
    assert world.owner.delete(f"{API}/deployments/{name}").status_code == 204
    assert _predict(world.owner, name, world.rows[:1]).status_code == 404
    assert world.owner.get(f"{API}/deployments/{name}").status_code == 404
    r = world.owner.post(f"{API}/deployments", json={"name": name, "model_version_id": world.mv1})
    assert r.status_code == 409
    assert world.owner.post(f"{API}/deployments/{name}/restore").status_code == 200
    assert _predict(world.owner, name, world.rows[:1]).status_code == 200


# --- batch ----------------------------------------------------------------------------------


def _spool_entries(world: World) -> set[str]:
    folder = world.container.settings.data_dir / "spool"
    return {p.name for p in folder.glob("narrate-upload-batch-*")} if folder.exists() else set()


def test_batch_scores_a_file_and_cleans_up(world: World) -> None:
    name = world.deploy()
    data = (SAMPLES / "credit_data.csv").read_bytes()
    r = world.owner.post(
        f"{API}/deployments/{name}/batch", files={"file": ("new.csv", data, "text/csv")}
    )
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status_url"].endswith(started["job_id"])
    job = wait_job(world.owner, started["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["rows"] == len(world.frame)
    out = world.owner.get(f"{API}/jobs/{started['job_id']}/output", params={"format": "parquet"})
    assert out.status_code == 200
    scored = pl.read_parquet(io.BytesIO(out.content))
    assert scored.height == len(world.frame)
    assert {"prediction", "prediction_id", "probability_good", "probability_bad"} <= set(
        scored.columns
    )
    csv = world.owner.get(f"{API}/jobs/{started['job_id']}/output", params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.count("\n") == len(world.frame) + 1
    # The batch answers as the single-row route does.
    single = _predict(world.owner, name, world.rows[:5]).json()["predictions"]
    assert scored.get_column("prediction").head(5).to_list() == [p["prediction"] for p in single]
    assert not _spool_entries(world)


def test_batch_with_a_missing_column_fails_naming_it_and_cleans_up(world: World) -> None:
    name = world.deploy()
    frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=["Income"])
    r = world.owner.post(
        f"{API}/deployments/{name}/batch",
        files={"file": ("bad.csv", frame.to_csv(index=False).encode(), "text/csv")},
    )
    assert r.status_code == 202
    job = wait_job(world.owner, r.json()["job_id"])
    assert job["status"] == "failed"
    assert "Income" in str(job["error"])
    assert not _spool_entries(world)
    out = world.owner.get(f"{API}/jobs/{r.json()['job_id']}/output")
    assert out.status_code == 409


def test_batch_cancel_removes_temporary_files(world: World) -> None:
    name = world.deploy()
    big = pd.concat([pd.read_csv(SAMPLES / "credit_data.csv")] * 60, ignore_index=True)
    buffer = io.BytesIO()
    big.to_parquet(buffer)
    world.container.settings.batch_chunk_rows  # noqa: B018 - documented default chunking
    r = world.owner.post(
        f"{API}/deployments/{name}/batch",
        files={"file": ("big.parquet", buffer.getvalue(), "application/octet-stream")},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    cancel = world.owner.post(f"{API}/deployments/{name}/batch/{job_id}/cancel")
    assert cancel.status_code == 202
    job = wait_job(world.owner, job_id)
    assert job["status"] in {"cancelled", "succeeded"}
    deadline = time.monotonic() + 10
    while _spool_entries(world) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _spool_entries(world)


def test_batch_from_a_dataset_version_and_with_a_key(world: World) -> None:
    name = world.deploy()
    key = world.owner.post(f"{API}/deployments/{name}/keys", json={"name": "batch"}).json()["key"]
    version_id = world.version_id
    with httpx.Client(
        base_url=world.server.base_url, headers={"Authorization": f"Bearer {key}"}
    ) as app:
        r = app.post(f"{API}/deployments/{name}/batch", json={"version_id": version_id})
        assert r.status_code == 202, r.text
        status_url = r.json()["status_url"]
        deadline = time.monotonic() + 60
        while app.get(status_url).json()["status"] not in {"succeeded", "failed"}:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert app.get(status_url).json()["status"] == "succeeded"
        out = app.get(r.json()["output_url"], params={"format": "csv"})
        assert out.status_code == 200 and "prediction" in out.text.splitlines()[0]
        # The key cannot read the job through the general jobs route.
        assert app.get(f"{API}/jobs/{r.json()['job_id']}").status_code == 403


# --- the log --------------------------------------------------------------------------------


def test_the_log_holds_inputs_outputs_version_and_caller(world: World) -> None:
    name = world.deploy()
    body = _predict(world.owner, name, world.rows[:3]).json()
    items = _log(world, name, 3)
    by_id = {i["prediction_id"]: i for i in items}
    for p, row in zip(body["predictions"], world.rows[:3], strict=True):
        logged = by_id[p["prediction_id"]]
        assert logged["prediction"] == p["prediction"]
        assert logged["probabilities"] == pytest.approx(p["probabilities"])
        assert logged["model_version_id"] == world.mv1
        assert logged["caller"] == "alice" and logged["arm"] == "primary"
        assert logged["latency_ms"] >= 0
        assert logged["inputs"]["Income"] == row["Income"]
    page = world.owner.get(f"{API}/deployments/{name}/predictions", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = world.owner.get(page["next"]).json()["items"]
    assert [i["prediction_id"] for i in page["items"] + rest] == [i["prediction_id"] for i in items]
    export = world.owner.get(
        f"{API}/deployments/{name}/predictions/export", params={"format": "csv"}
    )
    assert export.status_code == 200 and export.text.count("\n") == 4
