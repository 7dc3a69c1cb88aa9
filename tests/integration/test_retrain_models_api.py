"""Retraining over real HTTP by policy and model kind: a new AutoML search within a budget,
a regression model judged on RMSE, and a model trained on a version made by recipes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sqlalchemy import select
from tests.conftest import SAMPLES
from tests.support.api import train_lightgbm, wait_job
from tests.support.retrain import API, BATCHES, TARGET, World, auc, make_world, run_retrain

from narrate.services import datasets
from narrate.storage.sql.tables import DatasetVersion, ModelVersion
from narrate.storage.sql.visibility import Owner


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    yield from make_world(request, tmp_path_factory)


def test_search_policy_reruns_automl_within_the_budget(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 100)
    run = run_retrain(world, name, policy="search", budget_s=15)
    assert run["policy"] == "search" and run["budget_s"] == 15
    assert run["status"] == "awaiting_decision"
    assert run["n_eval_rows"] == 50 and run["n_train_rows"] == 50
    with world.container.db.session() as s:
        challenger = s.get(ModelVersion, run["challenger_version_id"])
        assert challenger is not None
        # A new search, with the champion's options: its own leaderboard and budget.
        assert challenger.config["time_budget_s"] == 15
        assert challenger.config["families"] == ["lightgbm"]
        assert challenger.leaderboard
        assert challenger.parent_version_id == world.mv_id
        assert challenger.details["retrain_run_id"] == run["retrain_run_id"]
    sides = run["metrics"]
    assert set(sides["champion"]["metrics"]) == set(sides["challenger"]["metrics"])


def test_regression_deployment_is_judged_on_rmse_lower_is_better(world: World) -> None:
    frame = pd.read_csv(SAMPLES / "hitters.csv").dropna(subset=["Salary"]).iloc[:200]
    with world.container.db.session() as s:
        alice = s.scalar(select(ModelVersion.owner_id).where(ModelVersion.id == world.mv_id))
        assert alice is not None
    dataset = datasets.ingest_file(
        world.container, alice, SAMPLES / "hitters.csv", filename="hitters.csv"
    )
    datasets.update_dataset(world.container, Owner(alice), dataset["id"], target="Salary")
    _, mv_id = train_lightgbm(world.owner, dataset["version"]["id"], "Salary")
    name = "h-" + uuid.uuid4().hex[:10]
    r = world.owner.post(f"{API}/deployments", json={"name": name, "model_version_id": mv_id})
    assert r.status_code == 201, r.text
    served: list[tuple[float, float]] = []
    pairs = []
    for chunk in np.array_split(np.arange(len(frame)), BATCHES):
        part = frame.iloc[chunk]
        rows = [
            {k: (None if pd.isna(v) else v) for k, v in row.items() if k != "Salary"}
            for row in part.to_dict(orient="records")
        ]
        answers = world.owner.post(f"{API}/deployments/{name}/predict", json={"rows": rows})
        assert answers.status_code == 200, answers.text
        for answer, truth in zip(answers.json()["predictions"], part["Salary"], strict=True):
            served.append((float(answer["prediction"]), float(truth)))
            pairs.append({"prediction_id": answer["prediction_id"], "actual": float(truth)})
    r = world.owner.post(f"{API}/deployments/{name}/actuals", json={"actuals": pairs})
    assert r.status_code == 200, r.text
    run = run_retrain(world, name, auto_promote=True, margin=0.0)
    assert run["metric"] == "rmse" and run["n_eval_rows"] == 60
    window = served[-60:]
    expected = skm.root_mean_squared_error([t for _, t in window], [p for p, _ in window])
    champion = run["metrics"]["champion"]["metrics"]["rmse"]
    challenger = run["metrics"]["challenger"]["metrics"]["rmse"]
    assert champion == pytest.approx(expected, rel=1e-5)
    assert "(lower is better)" in run["narrative"]["text"]
    # Lower RMSE wins: promoted exactly when the challenger's error is not higher.
    assert run["status"] == ("promoted" if challenger <= champion else "rejected")


def test_a_model_trained_on_a_recipe_version_retrains_from_raw_logged_inputs(
    world: World,
) -> None:
    with world.container.db.session() as s:
        version = s.get(DatasetVersion, world.dataset_version_id)
        assert version is not None
        dataset_id = version.dataset_id
    recipe = {
        "steps": [
            {"step": "filter", "expression": "Age >= 20"},
            {"step": "derive", "name": "ratio", "expression": "Amount / (Price + 1)"},
            {"step": "scale", "columns": ["Amount"], "method": "standard"},
            {"step": "encode", "columns": ["Home"], "method": "one_hot"},
        ]
    }
    r = world.owner.post(f"{API}/datasets/{dataset_id}/recipes/apply", json=recipe)
    assert r.status_code == 202, r.text
    job = wait_job(world.owner, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    recipe_version = job["result"]["version_id"]
    _, mv_id = train_lightgbm(world.owner, recipe_version, TARGET)
    name = "rc-" + uuid.uuid4().hex[:10]
    r = world.owner.post(f"{API}/deployments", json={"name": name, "model_version_id": mv_id})
    assert r.status_code == 201, r.text
    served = world.traffic(name, 200)  # raw credit_data rows: the recipe runs when serving
    run = run_retrain(world, name)
    assert run["status"] == "awaiting_decision", run
    assert run["n_train_rows"] == 140 and run["n_eval_rows"] == 60
    champion = run["metrics"]["champion"]["metrics"]["roc_auc"]
    assert champion == pytest.approx(auc(world, served[-60:]), abs=1e-6)
    with world.container.db.session() as s:
        trained = s.get(DatasetVersion, run["dataset_version_id"])
        parent = s.get(DatasetVersion, recipe_version)
        assert trained is not None and parent is not None
        # The logged rows went through the recipe: the new version has its columns.
        assert trained.parent_version_id == recipe_version
        assert trained.n_rows == parent.n_rows + 140
        assert [c["name"] for c in trained.columns] == [c["name"] for c in parent.columns]
    promoted = world.owner.post(f"{API}/retrain-runs/{run['retrain_run_id']}/promote")
    assert promoted.status_code == 200, promoted.text
    # The challenger takes raw rows, like the champion did.
    answer = world.predict(name, world.shifted.iloc[140:200])
    assert answer["model_version_id"] == run["challenger_version_id"]
    truth = [t for _, t in served[-60:]]
    rescored = auc(world, list(zip(answer["predictions"], truth, strict=True)))
    challenger = run["metrics"]["challenger"]["metrics"]["roc_auc"]
    assert rescored == pytest.approx(challenger, abs=1e-6)
