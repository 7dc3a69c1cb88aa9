"""Drift reports over real HTTP on SQLite and PostgreSQL: two dataset versions with and
without an injected shift, a deployment's prediction-log window against its training
data, the history, visibility, and each bad input.

A small model is trained once per backend on the credit sample; the reference and current
halves are random halves of the same file, the shifted one with incomes up by half and a
new kind of home.
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
import polars as pl
import pytest
from sqlalchemy import select
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_quickly, wait_job
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.errors import NotFound
from narrate.services import datasets, recovery, users
from narrate.storage.sql.tables import DriftReport, Job, User
from narrate.storage.sql.visibility import Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
TARGET = "Status"


@dataclass
class World:
    container: Container
    owner: httpx.Client
    admin: httpx.Client
    other: httpx.Client
    reference_id: str
    same_id: str
    shifted_id: str
    deployment: str
    rows: list[dict[str, Any]]
    model_version_id: str


def _ingest(container: Container, user_id: str, frame: pl.DataFrame, path: Path) -> str:
    frame.write_csv(path)
    out = datasets.ingest_file(container, user_id, path, filename=path.name)
    return str(out["version"]["id"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("drift")
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
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
        ):
            credit = pl.read_csv(SAMPLES / "credit_data.csv", infer_schema_length=10_000)
            shuffled = credit.sample(fraction=1.0, shuffle=True, seed=3)
            half = shuffled.height // 2
            first, second = shuffled.head(half), shuffled.slice(half)
            home = second["Home"].to_numpy().astype(object)
            home[(home == "rent") & (np.arange(len(home)) % 3 == 0)] = "coliving"
            shifted = second.with_columns(
                (pl.col("Income") * 1.5).alias("Income"), pl.Series("Home", home.tolist())
            )
            reference_id = _ingest(container, alice.id, first, tmp / "reference.csv")
            same_id = _ingest(container, alice.id, second, tmp / "same.csv")
            shifted_id = _ingest(container, alice.id, shifted, tmp / "shifted.csv")
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            model_id = train_quickly(owner, dataset["id"])
            mv = owner.get(f"{API}/models/{model_id}").json()["current_version_id"]
            deployment = "drift-" + uuid.uuid4().hex[:8]
            r = owner.post(f"{API}/deployments", json={"name": deployment, "model_version_id": mv})
            assert r.status_code == 201, r.text
            frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET]).head(300)
            frame["Income"] = frame["Income"] * 3
            rows = [
                {k: (None if pd.isna(v) else v) for k, v in row.items()}
                for row in frame.to_dict(orient="records")
            ]
            yield World(
                container,
                owner,
                admin,
                other,
                reference_id,
                same_id,
                shifted_id,
                deployment,
                rows,
                mv,
            )
    finally:
        server.stop()
        container.close()


def _report(client: httpx.Client, started: httpx.Response) -> dict[str, Any]:
    assert started.status_code == 202, started.text
    body = started.json()
    assert set(body) == {"job_id", "status_url", "created_id"}
    job = wait_job(client, body["job_id"])
    assert job["status"] == "succeeded", job
    r = client.get(f"{API}/drift-reports/{body['created_id']}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _column(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["columns"] if c["column"] == name)


def test_shifted_version_drifts_and_a_random_half_does_not(world: World) -> None:
    shifted = _report(
        world.owner,
        world.owner.post(
            f"{API}/drift",
            json={
                "reference_version_id": world.reference_id,
                "current_version_id": world.shifted_id,
            },
        ),
    )
    assert shifted["status"] == "ready"
    assert shifted["columns"][0]["column"] == "Income"
    income = _column(shifted, "Income")
    assert income["level"] == "high" and income["psi"] > 0.25
    assert income["ks_p"] < 1e-6 and income["wasserstein"] > 0
    home = _column(shifted, "Home")
    assert home["new_categories"] == ["coliving"] and home["chi2_p"] < 1e-6
    assert shifted["overall"]["level"] == "high"
    assert "'Income' (PSI" in shifted["narrative"]["text"]
    assert shifted["reference"]["rows"] == shifted["reference"]["sampled_rows"] > 2000
    assert shifted["thresholds"]["psi"] == [0.1, 0.2, 0.25]

    same = _report(
        world.owner,
        world.owner.post(
            f"{API}/drift",
            json={"reference_version_id": world.reference_id, "current_version_id": world.same_id},
        ),
    )
    assert same["overall"]["level"] == "none", same["overall"]
    assert same["narrative"]["text"].count("No drift") == 1


def test_columns_and_thresholds_are_honoured(world: World) -> None:
    report = _report(
        world.owner,
        world.owner.post(
            f"{API}/drift",
            json={
                "reference_version_id": world.reference_id,
                "current_version_id": world.same_id,
                "columns": ["Age", "Home"],
                "thresholds": {"psi": [0.0, 0.0, 0.0]},
            },
        ),
    )
    assert sorted(c["column"] for c in report["columns"]) == ["Age", "Home"]
    assert all(c["level"] == "high" for c in report["columns"])
    assert report["thresholds"]["psi"] == [0.0, 0.0, 0.0]


def test_deployment_window_compares_live_inputs_and_predictions(world: World) -> None:
    r = world.owner.post(f"{API}/deployments/{world.deployment}/predict", json={"rows": world.rows})
    assert r.status_code == 200, r.text
    report = _report(
        world.owner,
        world.owner.post(f"{API}/deployments/{world.deployment}/drift", json={"window": "24h"}),
    )
    assert report["deployment"] == world.deployment
    assert report["reference"]["kind"] == "training_data"
    assert report["current"]["kind"] == "prediction_log" and report["current"]["window"] == "24h"
    assert report["current"]["rows"] >= 300
    assert _column(report, "Income")["level"] == "high"
    assert TARGET not in {c["column"] for c in report["columns"]}
    assert report["prediction"] is not None and report["prediction"]["column"] == "prediction"
    assert report["reference"]["scored_rows"] > 0
    history = world.owner.get(f"{API}/deployments/{world.deployment}/drift-reports").json()
    assert set(history) == {"items", "total", "next"}
    assert history["total"] >= 1
    assert history["items"][0]["report_id"] == report["report_id"]
    assert history["items"][0]["narrative"]
    # Another analyst sees neither the report nor the history; an admin sees both.
    assert world.other.get(f"{API}/drift-reports/{report['report_id']}").status_code == 404
    assert world.other.get(f"{API}/deployments/{world.deployment}/drift-reports").status_code == 404
    assert world.admin.get(f"{API}/drift-reports/{report['report_id']}").status_code == 200


def test_a_deployment_keeps_its_own_drift_thresholds(world: World) -> None:
    url = f"{API}/deployments/{world.deployment}"
    defaults = world.owner.get(url).json()["drift_thresholds"]
    assert defaults["psi"] == [0.1, 0.2, 0.25]
    # Bad levels are refused naming the field as sent, and nothing changes.
    for bad, field in (
        ({"psi": [0.3, 0.2, 0.1]}, "drift_thresholds.psi"),
        ({"nonsense": [0.1, 0.2, 0.3]}, "drift_thresholds.nonsense"),
    ):
        r = world.owner.patch(url, json={"drift_thresholds": bad})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["parameter"] == field
    assert world.owner.get(url).json()["drift_thresholds"] == defaults
    r = world.owner.patch(url, json={"drift_thresholds": {"psi": [1000.0, 2000.0, 3000.0]}})
    assert r.status_code == 200, r.text
    assert r.json()["drift_thresholds"]["psi"] == [1000.0, 2000.0, 3000.0]
    assert r.json()["drift_thresholds"]["missing_rate"] == defaults["missing_rate"]
    assert r.json()["revision"] == world.owner.get(url).json()["revision"]  # not a new one
    try:
        r = world.owner.post(f"{url}/predict", json={"rows": world.rows})
        assert r.status_code == 200, r.text
        # A report that sets no thresholds uses the deployment's: by PSI nothing drifts now.
        report = _report(world.owner, world.owner.post(f"{url}/drift", json={"window": "24h"}))
        assert report["thresholds"]["psi"] == [1000.0, 2000.0, 3000.0]
        assert "psi" not in _column(report, "Income")["reasons"]
        # A report's own thresholds still win.
        report = _report(
            world.owner,
            world.owner.post(
                f"{url}/drift", json={"window": "24h", "thresholds": {"psi": [0.1, 0.2, 0.25]}}
            ),
        )
        assert "psi" in _column(report, "Income")["reasons"]
    finally:
        r = world.owner.patch(url, json={"drift_thresholds": None})
        assert r.status_code == 200, r.text
        assert r.json()["drift_thresholds"] == defaults


def test_deployment_report_ranks_inputs_by_stored_importance(world: World) -> None:
    r = world.owner.get(f"{API}/model-versions/{world.model_version_id}/importances")
    assert r.status_code == 200, r.text
    ranked = sorted(r.json()["columns"], key=lambda c: -c["importance"])
    expected = {c["column"]: i for i, c in enumerate(ranked, start=1)}
    predicted = world.owner.post(
        f"{API}/deployments/{world.deployment}/predict", json={"rows": world.rows[:100]}
    )
    assert predicted.status_code == 200, predicted.text
    report = _report(
        world.owner,
        world.owner.post(f"{API}/deployments/{world.deployment}/drift", json={"window": "1h"}),
    )
    for column in report["columns"]:
        assert column["importance_rank"] == expected.get(column["column"])
    income = _column(report, "Income")["importance_rank"]
    assert income is not None
    fact = {"name": "importance rank of Income", "value": income, "source": "importance.Income"}
    assert fact in report["narrative"]["facts"]
    assert "most important input" in report["narrative"]["text"]


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"reference_version_id": "nope", "current_version_id": "x"}, 404, "version_id"),
        ({"columns": ["Nope"]}, 422, "Nope"),
        ({"columns": []}, 422, "columns"),
        ({"thresholds": {"psi": [0.3, 0.2, 0.1]}}, 422, "thresholds.psi"),
        ({"thresholds": {"ks": [0.1, 0.2, 0.3]}}, 422, "ks"),
    ],
    ids=["unknown-version", "unknown-column", "empty-columns", "decreasing", "unknown-key"],
)
def test_bad_version_drift_is_refused_naming_it(
    world: World, body: dict[str, Any], status: int, named: str
) -> None:
    payload = {
        "reference_version_id": world.reference_id,
        "current_version_id": world.same_id,
        **body,
    }
    r = world.owner.post(f"{API}/drift", json=payload)
    assert r.status_code == status, r.text
    assert named in r.text


@pytest.mark.parametrize(
    "window", ["7", "7x", "0d", "400d", "-1d"], ids=["no-unit", "bad-unit", "zero", "long", "neg"]
)
def test_bad_window_is_a_422_naming_window(world: World, window: str) -> None:
    r = world.owner.post(f"{API}/deployments/{world.deployment}/drift", json={"window": window})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["parameter"] == "window"


def test_deployment_drift_errors(world: World) -> None:
    r = world.owner.post(f"{API}/deployments/no-such-one/drift", json={"window": "7d"})
    assert r.status_code == 404
    r = world.owner.post(
        f"{API}/deployments/{world.deployment}/drift",
        json={"window": "7d", "reference_version_id": "nope"},
    )
    assert r.status_code == 404
    assert world.owner.get(f"{API}/drift-reports/nope").status_code == 404
    # Another analyst can't start a report on someone else's versions or deployment.
    r = world.other.post(
        f"{API}/drift",
        json={"reference_version_id": world.reference_id, "current_version_id": world.same_id},
    )
    assert r.status_code == 404
    r = world.other.post(f"{API}/deployments/{world.deployment}/drift", json={"window": "7d"})
    assert r.status_code == 404


def test_a_window_without_predictions_is_a_409(world: World) -> None:
    name = "quiet-" + uuid.uuid4().hex[:8]
    r = world.owner.post(
        f"{API}/deployments", json={"name": name, "model_version_id": world.model_version_id}
    )
    assert r.status_code == 201, r.text
    r = world.owner.post(f"{API}/deployments/{name}/drift", json={"window": "24h"})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_state"
    assert error["message"] == f"Deployment '{name}' logged no predictions in the last 24h."
    assert error["details"] == {"deployment": name, "window": "24h"}


def test_a_report_whose_job_failed_is_reconciled_as_failed(world: World) -> None:
    with world.container.db.session() as s:
        owner_id = s.scalar(select(User.id).where(User.username == "alice"))
        assert owner_id is not None
        job = Job(owner_id=owner_id, kind="drift.report", status="failed")
        s.add(job)
        s.flush()
        report = DriftReport(owner_id=owner_id, job_id=job.id, status="queued")
        s.add(report)
        s.flush()
        report_id = report.id
    recovery.recover_jobs(world.container)
    with world.container.db.session() as s:
        row = s.get(DriftReport, report_id)
        assert row is not None and row.status == "failed"


def test_a_failing_job_marks_its_report_failed_at_once(world: World) -> None:
    from narrate.jobs.context import JobContext
    from narrate.services.drift import drift_job

    c = world.container
    with c.db.session() as s:
        owner_id = s.scalar(select(User.id).where(User.username == "alice"))
        assert owner_id is not None
        job = Job(owner_id=owner_id, kind="drift.report", status="running")
        s.add(job)
        s.flush()
        report = DriftReport(owner_id=owner_id, job_id=job.id, status="queued")
        s.add(report)
        s.flush()
        report_id, job_id = report.id, job.id
    params = {
        "mode": "versions",
        "report_id": report_id,
        "reference_version_id": "gone",
        "current_version_id": "gone",
        "thresholds": {},
    }
    ctx = JobContext(job_id, owner_id, params, c.settings, c.db, c.blobs)
    with pytest.raises(NotFound):
        drift_job(ctx)
    with c.db.session() as s:
        row = s.get(DriftReport, report_id)
        assert row is not None and row.status == "failed"
