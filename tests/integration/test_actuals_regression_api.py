"""Actuals and live performance of a regression deployment over real HTTP, on SQLite and
PostgreSQL: numbers only, and RMSE/MAE/R² equal to scikit-learn's on the same rows."""

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
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm
from tests.support.servers import AppServer

from narrate.bootstrap import build_container
from narrate.services import datasets, users
from narrate.storage.sql.visibility import Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
TARGET = "Salary"


@dataclass
class World:
    owner: httpx.Client
    mv_id: str
    frame: pd.DataFrame

    def deploy_and_predict(self, count: int) -> tuple[str, list[dict[str, Any]], list[float]]:
        name = "r-" + uuid.uuid4().hex[:10]
        r = self.owner.post(
            f"{API}/deployments", json={"name": name, "model_version_id": self.mv_id}
        )
        assert r.status_code == 201, r.text
        part = self.frame.head(count)
        rows = [
            {k: (None if pd.isna(v) else v) for k, v in row.items() if k != TARGET}
            for row in part.to_dict(orient="records")
        ]
        r = self.owner.post(f"{API}/deployments/{name}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        return name, r.json()["predictions"], [float(v) for v in part[TARGET]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("actuals-regression")
    container = build_container(
        make_settings(tmp, backend_url(request, tmp), prediction_log_flush_s=0.2)
    )
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with login(server.base_url, "alice", ALICE_PASSWORD) as owner:
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "hitters.csv", filename="hitters.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            _, mv_id = train_lightgbm(owner, dataset["version"]["id"], TARGET)
            frame = pd.read_csv(SAMPLES / "hitters.csv").dropna(subset=[TARGET])
            yield World(owner, mv_id, frame)
    finally:
        server.stop()


def test_regression_metrics_equal_sklearn(world: World) -> None:
    name, predictions, truth = world.deploy_and_predict(120)
    body = {
        "actuals": [
            {"prediction_id": p["prediction_id"], "actual": t}
            for p, t in zip(predictions, truth, strict=True)
        ]
    }
    r = world.owner.post(f"{API}/deployments/{name}/actuals", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == 120
    out = world.owner.get(f"{API}/deployments/{name}/performance", params={"window": "7d"})
    assert out.status_code == 200, out.text
    result = out.json()
    latest = result["windows"][-1]
    predicted = np.array([p["prediction"] for p in predictions], dtype=float)
    assert latest["n"] == 120
    assert latest["metrics"]["rmse"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(truth, predicted)), rel=1e-6
    )
    assert latest["metrics"]["mae"] == pytest.approx(
        skm.mean_absolute_error(truth, predicted), rel=1e-6
    )
    assert latest["metrics"]["r2"] == pytest.approx(skm.r2_score(truth, predicted), rel=1e-6)
    assert result["primary_metric"] == "rmse"
    assert set(latest["intervals"]) == {"rmse", "mae", "r2"}
    assert "rmse" in result["baseline"]


@pytest.mark.parametrize(
    "actual", ["512.5", True, "lots", None], ids=["numeric-text", "bool", "word", "null"]
)
def test_regression_actuals_must_be_numbers(world: World, actual: Any) -> None:
    name, predictions, _ = world.deploy_and_predict(2)
    body = {
        "actuals": [
            {"prediction_id": predictions[0]["prediction_id"], "actual": 500.0},
            {"prediction_id": predictions[1]["prediction_id"], "actual": actual},
        ]
    }
    r = world.owner.post(f"{API}/deployments/{name}/actuals", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_actual"
    assert error["details"]["row"] == 1
    assert error["details"]["field"] == "actual"
    assert "must be a number" in error["message"]


def test_csv_cells_are_read_as_numbers(world: World) -> None:
    name, predictions, truth = world.deploy_and_predict(3)
    csv = "id;y\n" + "".join(
        f"{p['prediction_id']};{t}\n" for p, t in zip(predictions, truth, strict=True)
    )
    r = world.owner.post(
        f"{API}/deployments/{name}/actuals",
        files={"file": ("y.csv", csv.replace(";", ",").encode())},
        data={"id_column": "id", "actual_column": "y"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == 3
