"""The world of the retraining tests: a server on SQLite or PostgreSQL with a champion
trained on the younger applicants of the credit data (Age < 35), and the older applicants
(Age ≥ 45, a subpopulation it never saw) as shifted traffic with real outcomes."""

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
from sklearn import metrics as skm

from narrate.bootstrap import Container, build_container
from narrate.services import datasets, users
from narrate.storage.sql.tables import ModelVersion
from narrate.storage.sql.visibility import Owner
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm, wait_job
from tests.support.servers import AppServer

__all__ = [
    "API",
    "BATCHES",
    "IN_APP",
    "TARGET",
    "World",
    "auc",
    "deployment",
    "make_world",
    "run_retrain",
]

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
TARGET = "Status"
IN_APP = [{"type": "in_app"}]
BATCHES = 10  # 30% of the labelled rows is then exactly the last three requests


@dataclass
class World:
    """A server with a champion trained on the younger applicants, and the older ones."""

    container: Container
    server: AppServer
    owner: httpx.Client
    other: httpx.Client
    admin: httpx.Client
    mv_id: str
    dataset_version_id: str
    shifted: pd.DataFrame
    positive: str

    def deploy(self) -> str:
        """A new deployment of the champion."""
        name = "r-" + uuid.uuid4().hex[:10]
        r = self.owner.post(
            f"{API}/deployments", json={"name": name, "model_version_id": self.mv_id}
        )
        assert r.status_code == 201, r.text
        return name

    def predict(self, name: str, part: pd.DataFrame) -> dict[str, Any]:
        """The deployment's answer to ``part`` (``model_version_id``, ``predictions``)."""
        rows = [
            {k: (None if pd.isna(v) else v) for k, v in row.items() if k != TARGET}
            for row in part.to_dict(orient="records")
        ]
        r = self.owner.post(f"{API}/deployments/{name}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def traffic(self, name: str, count: int) -> list[tuple[dict[str, Any], str]]:
        """Send ``count`` shifted rows in a few requests (so they are answered at
        different times) and post their real outcomes; returns (prediction, truth)."""
        part = self.shifted.iloc[:count]
        out: list[tuple[dict[str, Any], str]] = []
        for chunk in np.array_split(np.arange(count), BATCHES):
            rows = part.iloc[chunk]
            answers = self.predict(name, rows)["predictions"]
            out += list(zip(answers, [str(v) for v in rows[TARGET]], strict=True))
        body = {"actuals": [{"prediction_id": p["prediction_id"], "actual": t} for p, t in out]}
        r = self.owner.post(f"{API}/deployments/{name}/actuals", json=body)
        assert r.status_code == 200, r.text
        return out


def make_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Set up the world for a module-scoped fixture parametrised over the backends."""
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("retrain")
    url = backend_url(request, tmp)
    container = build_container(
        make_settings(tmp, url, prediction_log_flush_s=0.2, deploy_refresh_s=0.2)
    )
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    frame = pd.read_csv(SAMPLES / "credit_data.csv")
    young = frame[frame["Age"] < 35]
    shifted = frame[frame["Age"] >= 45].sample(frac=1.0, random_state=0).reset_index(drop=True)
    path = tmp / "credit_young.csv"
    young.to_csv(path, index=False)
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
        ):
            dataset = datasets.ingest_file(container, alice.id, path, filename=path.name)
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            version_id = dataset["version"]["id"]
            _, mv_id = train_lightgbm(owner, version_id, TARGET)
            with container.db.session() as s:
                mv = s.get(ModelVersion, mv_id)
                assert mv is not None
                positive = str(mv.details["problem"]["positive_class"])
            yield World(
                container, server, owner, other, admin, mv_id, version_id, shifted, positive
            )
    finally:
        server.stop()


def run_retrain(world: World, name: str, **body: Any) -> dict[str, Any]:
    """Start a run over HTTP, wait for its job to succeed, and return the run."""
    r = world.owner.post(f"{API}/deployments/{name}/retrain", json=body)
    assert r.status_code == 202, r.text
    started = dict(r.json())
    job = wait_job(world.owner, started["job_id"])
    assert job["status"] == "succeeded", job
    run = world.owner.get(f"{API}/retrain-runs/{started['created_id']}")
    assert run.status_code == 200, run.text
    return dict(run.json())


def auc(world: World, pairs: list[tuple[dict[str, Any], str]]) -> float:
    """scikit-learn's ROC AUC of answers (with probabilities) against their truths."""
    y = [int(t == world.positive) for _, t in pairs]
    p = [a["probabilities"][world.positive] for a, _ in pairs]
    return float(skm.roc_auc_score(y, p))


def deployment(world: World, name: str) -> dict[str, Any]:
    """``GET /deployments/{name}``."""
    r = world.owner.get(f"{API}/deployments/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())
