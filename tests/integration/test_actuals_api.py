"""Actuals and live performance over real HTTP on SQLite and PostgreSQL.

One small LightGBM model on the credit data is trained once per backend; each test makes
its own deployment, predicts real rows through it, posts actuals for them and reads the
performance back, checking the numbers against scikit-learn on the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sqlalchemy import func, select
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.services import datasets, users
from narrate.storage.sql.tables import ModelVersion, PredictionActual
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
    frame: pd.DataFrame
    positive: str

    def deploy(self) -> str:
        name = "a-" + uuid.uuid4().hex[:10]
        r = self.owner.post(
            f"{API}/deployments", json={"name": name, "model_version_id": self.mv_id}
        )
        assert r.status_code == 201, r.text
        return name

    def predict(self, name: str, start: int, count: int) -> tuple[list[dict[str, Any]], list[str]]:
        """Predict rows ``start:start+count`` of the credit data; returns the predictions
        and the true labels of those rows."""
        part = self.frame.iloc[start : start + count]
        rows = [
            {k: (None if pd.isna(v) else v) for k, v in row.items() if k != TARGET}
            for row in part.to_dict(orient="records")
        ]
        r = self.owner.post(f"{API}/deployments/{name}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        return r.json()["predictions"], [str(v) for v in part[TARGET]]

    def actuals(self) -> int:
        with self.container.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(PredictionActual)) or 0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("actuals")
    url = backend_url(request, tmp)
    container = build_container(
        make_settings(tmp, url, prediction_log_flush_s=0.2, deploy_refresh_s=0.2)
    )
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
            with container.db.session() as s:
                mv = s.get(ModelVersion, mv_id)
                assert mv is not None
                positive = str(mv.details["problem"]["positive_class"])
            frame = pd.read_csv(SAMPLES / "credit_data.csv")
            yield World(container, server, owner, other, mv_id, frame, positive)
    finally:
        server.stop()


def _post(client: httpx.Client, name: str, pairs: list[tuple[str, Any]]) -> httpx.Response:
    body = {"actuals": [{"prediction_id": p, "actual": a} for p, a in pairs]}
    return client.post(f"{API}/deployments/{name}/actuals", json=body)


def _performance(client: httpx.Client, name: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"{API}/deployments/{name}/performance", params={"window": "1d", **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_live_metrics_equal_sklearn_on_the_same_rows(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 0, 300)
    r = _post(
        world.owner,
        name,
        [(p["prediction_id"], t) for p, t in zip(predictions, truth, strict=True)],
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "received": 300,
        "matched": 300,
        "replaced": 0,
        "unmatched": {"count": 0, "examples": []},
    }
    out = _performance(world.owner, name)
    latest = out["windows"][-1]
    assert latest["n"] == 300
    assert latest["is_complete"] is True
    assert sum(w["n"] for w in out["windows"]) == 300
    y = np.array([t == world.positive for t in truth], dtype=int)
    pred = np.array([p["prediction"] == world.positive for p in predictions], dtype=int)
    p_pos = np.array([p["probabilities"][world.positive] for p in predictions])
    classes = sorted(predictions[0]["probabilities"])
    proba = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, p_pos),
        "log_loss": skm.log_loss(truth, proba, labels=classes),
    }
    for metric, value in expected.items():
        assert latest["metrics"][metric] == pytest.approx(value, abs=1e-5), metric
        low, high = latest["intervals"][metric]
        assert low <= latest["metrics"][metric] <= high
    with world.container.db.session() as s:
        mv = s.get(ModelVersion, world.mv_id)
        assert mv is not None
        assert out["baseline"]["roc_auc"] == pytest.approx(mv.metrics["roc_auc"]["value"])
    assert out["primary_metric"] == "roc_auc"
    # In-sample rows score at least as well as the holdout did: nothing degraded.
    assert out["degraded"] is False
    assert out["degradation"] is None
    assert "300 labelled predictions" in out["narrative"]["text"]
    assert out["interval_method"]["repeats"] == 200


def test_corrupted_labels_are_a_degradation(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 300, 200)
    classes = sorted(predictions[0]["probabilities"])
    flipped = [classes[1 - classes.index(t)] for t in truth]
    r = _post(
        world.owner,
        name,
        [(p["prediction_id"], f) for p, f in zip(predictions, flipped, strict=True)],
    )
    assert r.status_code == 200, r.text
    out = _performance(world.owner, name)
    assert out["degraded"] is True
    drop = out["degradation"]
    assert drop["metric"] == "roc_auc"
    assert drop["threshold"] == pytest.approx(0.10)
    assert drop["current"] == out["windows"][-1]["metrics"]["roc_auc"]
    assert drop["relative_drop"] == pytest.approx(
        (drop["baseline"] - drop["current"]) / drop["baseline"], abs=1e-5
    )
    assert "degraded" in out["narrative"]["text"]


def test_too_few_labelled_cases_are_not_called_degraded(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 500, 40)
    classes = sorted(predictions[0]["probabilities"])
    flipped = [classes[1 - classes.index(t)] for t in truth]
    _post(
        world.owner,
        name,
        [(p["prediction_id"], f) for p, f in zip(predictions, flipped, strict=True)],
    )
    out = _performance(world.owner, name)
    assert out["windows"][-1]["n"] == 40
    assert out["degraded"] is False
    assert "100 labelled cases are needed" in out["narrative"]["text"]


def test_duplicates_replace_and_keep_a_record(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 600, 3)
    ids = [p["prediction_id"] for p in predictions]
    classes = sorted(predictions[0]["probabilities"])
    other = [classes[1 - classes.index(t)] for t in truth]
    assert (
        _post(world.owner, name, [(ids[0], other[0]), (ids[1], truth[1])]).json()["replaced"] == 0
    )
    # ids[0] corrected, ids[2] sent twice in one request: the later one wins, both recorded.
    r = _post(world.owner, name, [(ids[0], truth[0]), (ids[2], other[2]), (ids[2], truth[2])])
    assert r.json()["replaced"] == 2
    assert r.json()["received"] == 3
    with world.container.db.session() as s:
        rows = {
            a.prediction_id: a
            for a in s.scalars(
                select(PredictionActual).where(PredictionActual.prediction_id.in_(ids))
            )
        }
        assert rows[ids[0]].actual == truth[0]
        assert rows[ids[0]].replaced == 1
        assert [p["actual"] for p in rows[ids[0]].previous] == [other[0]]
        assert rows[ids[2]].actual == truth[2]
        assert [p["actual"] for p in rows[ids[2]].previous] == [other[2]]
        assert rows[ids[1]].previous == []
    out = _performance(world.owner, name)
    expected = np.mean([p["prediction"] == t for p, t in zip(predictions, truth, strict=True)])
    assert out["windows"][-1]["n"] == 3
    assert out["windows"][-1]["metrics"]["accuracy"] == pytest.approx(expected)


def test_unmatched_ids_are_reported(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 700, 2)
    missing = [f"nope-{i:02d}" for i in range(25)]
    pairs = [(p["prediction_id"], t) for p, t in zip(predictions, truth, strict=True)]
    r = _post(world.owner, name, pairs + [(m, truth[0]) for m in missing])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matched"] == 2
    assert body["received"] == 27
    assert body["unmatched"]["count"] == 25
    assert body["unmatched"]["examples"] == missing[:20]


def test_csv_upload_names_its_columns(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 800, 5)
    csv = "pid,outcome\n" + "".join(
        f"{p['prediction_id']},{t}\n" for p, t in zip(predictions, truth, strict=True)
    )
    r = world.owner.post(
        f"{API}/deployments/{name}/actuals",
        files={"file": ("actuals.csv", csv.encode())},
        data={"id_column": "pid", "actual_column": "outcome"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == 5
    bad = csv + "x-1,maybe\n"
    r = world.owner.post(
        f"{API}/deployments/{name}/actuals",
        files={"file": ("actuals.csv", bad.encode())},
        data={"id_column": "pid", "actual_column": "outcome"},
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_actual"
    assert error["details"] == {**error["details"], "row": 5, "line": 7, "column": "outcome"}
    r = world.owner.post(
        f"{API}/deployments/{name}/actuals",
        files={"file": ("actuals.csv", csv.encode())},
        data={"id_column": "id", "actual_column": "outcome"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "missing_column"
    assert r.json()["error"]["details"]["parameter"] == "id_column"


BAD_BODIES = [
    ({"actuals": []}, "no_actuals", {"parameter": "actuals"}),
    ({"rows": []}, "invalid_actuals", {"parameter": "actuals"}),
    (
        {"actuals": [{"prediction_id": "a", "actual": "good"}, {"actual": "good"}]},
        "invalid_actuals",
        {"row": 1, "field": "prediction_id"},
    ),
    ({"actuals": [{"prediction_id": "a"}]}, "invalid_actuals", {"row": 0, "field": "actual"}),
    (
        {
            "actuals": [
                {"prediction_id": "a", "actual": "good"},
                {"prediction_id": 7, "actual": "good"},
            ]
        },
        "invalid_prediction_id",
        {"row": 1, "field": "prediction_id"},
    ),
    (
        {"actuals": [{"prediction_id": "x" * 65, "actual": "good"}]},
        "invalid_prediction_id",
        {"row": 0, "field": "prediction_id"},
    ),
    (
        {
            "actuals": [
                {"prediction_id": "a", "actual": "good"},
                {"prediction_id": "b", "actual": "bad"},
                {"prediction_id": "c", "actual": "maybe"},
            ]
        },
        "invalid_actual",
        {"row": 2, "field": "actual"},
    ),
    (
        {"actuals": [{"prediction_id": "a", "actual": None}]},
        "invalid_actual",
        {"row": 0, "field": "actual"},
    ),
    (
        {"actuals": [{"prediction_id": "a", "actual": ["good"]}]},
        "invalid_actual",
        {"row": 0, "field": "actual"},
    ),
]


@pytest.mark.parametrize(
    ("body", "code", "where"),
    BAD_BODIES,
    ids=[
        "empty",
        "no-actuals-key",
        "no-id",
        "no-actual",
        "id-not-text",
        "id-too-long",
        "unknown-class",
        "null",
        "list",
    ],
)
def test_bad_actuals_are_422_naming_row_and_field_and_write_nothing(
    world: World, body: dict[str, Any], code: str, where: dict[str, Any]
) -> None:
    name = world.deploy()
    before = world.actuals()
    r = world.owner.post(f"{API}/deployments/{name}/actuals", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["details"] == {**error["details"], **where}
    if "row" in where:
        assert f"Row {where['row']}" in error["message"]
    assert world.actuals() == before


def test_too_many_actuals_is_413(world: World) -> None:
    name = world.deploy()
    pairs = [(f"p{i}", "good") for i in range(100_001)]
    r = _post(world.owner, name, pairs)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_many_actuals"


def test_not_json_or_csv_is_415(world: World) -> None:
    name = world.deploy()
    r = world.owner.post(
        f"{API}/deployments/{name}/actuals", content=b"a,b", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    assert r.json()["error"]["details"]["content_type"] == "text/plain"


def test_other_users_deployment_is_404(world: World) -> None:
    name = world.deploy()
    assert _post(world.other, name, [("a", "good")]).status_code == 404
    r = world.other.get(f"{API}/deployments/{name}/performance")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_deployment_keys_post_only_to_their_own_deployment(world: World) -> None:
    mine, theirs = world.deploy(), world.deploy()
    predictions, truth = world.predict(mine, 900, 2)
    key = world.owner.post(f"{API}/deployments/{mine}/keys", json={"name": "labels"}).json()["key"]
    body = {
        "actuals": [
            {"prediction_id": p["prediction_id"], "actual": t}
            for p, t in zip(predictions, truth, strict=True)
        ]
    }
    with httpx.Client(
        base_url=world.server.base_url, headers={"Authorization": f"Bearer {key}"}
    ) as app:
        r = app.post(f"{API}/deployments/{mine}/actuals", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["matched"] == 2
        r = app.post(f"{API}/deployments/{theirs}/actuals", json=body)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "key_scope"
        # A key posts actuals; reading performance takes a user's token.
        r = app.get(f"{API}/deployments/{mine}/performance")
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "key_scope"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"window": "soon"}, "window"),
        ({"window": "1m", "since": "2020-01-01T00:00:00Z"}, "window"),
        ({"since": "2026-01-02T00:00:00"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
    ],
    ids=["unreadable-window", "too-many-windows", "naive-since", "reversed"],
)
def test_bad_performance_queries_are_422(
    world: World, params: dict[str, str], parameter: str
) -> None:
    name = world.deploy()
    r = world.owner.get(f"{API}/deployments/{name}/performance", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["parameter"] == parameter


def test_breakdown_by_arm_and_version(world: World) -> None:
    name = world.deploy()
    predictions, truth = world.predict(name, 1000, 20)
    _post(
        world.owner,
        name,
        [(p["prediction_id"], t) for p, t in zip(predictions, truth, strict=True)],
    )
    by_arm = _performance(world.owner, name, by="arm")["by"]
    assert by_arm["kind"] == "arm"
    assert [(g["key"], g["n"]) for g in by_arm["groups"]] == [("primary", 20)]
    by_version = _performance(world.owner, name, by="version")["by"]
    (group,) = by_version["groups"]
    assert group["key"] == world.mv_id
    assert group["baseline"]["roc_auc"] > 0
    assert group["windows"][-1]["n"] == 20


def test_no_actuals_yet_says_so(world: World) -> None:
    name = world.deploy()
    world.predict(name, 1100, 3)
    out = _performance(world.owner, name, window="7d")
    assert out["labelled"] == 0
    assert all(w["n"] == 0 and w["metrics"] == {} for w in out["windows"])
    assert len(out["windows"]) == 12
    assert out["degraded"] is False
    assert f"POST /api/v1/deployments/{name}/actuals" in out["narrative"]["text"]


def test_an_actual_posted_before_its_prediction_is_logged_counts_once_logged(
    world: World,
) -> None:
    from narrate.services.prediction_log import PredictionRecord
    from narrate.storage.sql.tables import utcnow

    name = world.deploy()
    late = "late-" + uuid.uuid4().hex[:8]
    r = _post(world.owner, name, [(late, "bad")])
    assert r.json()["unmatched"] == {"count": 1, "examples": [late]}
    deployment = world.owner.get(f"{API}/deployments/{name}").json()
    # As a batch job still running when the actual came would log it: later, same id. The
    # prediction is dated two days on, so the window it falls in starts after the actual
    # arrived: matching goes by id, not by when the actual came.
    answered = utcnow() + timedelta(days=2)
    sink = world.container.extras["prediction_log"]
    sink.append(
        PredictionRecord(
            prediction_id=late,
            deployment_id=deployment["deployment_id"],
            deployment_name=name,
            model_version_id=world.mv_id,
            at=answered,
            latency_ms=1.0,
            caller="batch",
            arm="primary",
            inputs={},
            prediction="good",
            probabilities={"bad": 0.3, "good": 0.7},
        )
    )
    since, until = answered - timedelta(hours=12), answered + timedelta(hours=12)
    out = _performance(world.owner, name, since=since.isoformat(), until=until.isoformat())
    assert [w["n"] for w in out["windows"]] == [1]
    assert out["windows"][0]["metrics"]["accuracy"] == 0.0
    assert out["windows"][0]["is_complete"] is False
