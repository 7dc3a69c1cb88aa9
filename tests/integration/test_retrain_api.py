"""The retraining loop over real HTTP: shift → alert → retrain → compare → promote → rollback.

The champion is a small LightGBM model trained on the younger applicants of the credit
data (Age < 35). The deployment then serves older applicants (Age ≥ 45, a different
subpopulation the champion never saw) and their real outcomes are posted as actuals. A
drift alert fires on that traffic; a retrain run trains a challenger on the original rows
plus the older labelled rows and scores both on the newest labelled window. The scores
are checked against scikit-learn on the same rows, with the probabilities the deployment
itself answers before and after the promotion.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sqlalchemy import select
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm, wait_job
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.core.monitor.retrain import is_better
from narrate.jobs.records import STALE_AFTER_S
from narrate.services import datasets, users
from narrate.storage.sql.tables import DatasetVersion, ModelVersion, utcnow
from narrate.storage.sql.visibility import Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
TARGET = "Status"
IN_APP = [{"type": "in_app"}]
BATCHES = 10  # 30% of the labelled rows is then exactly the last three requests


@dataclass
class World:
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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
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


def _retrain(world: World, name: str, **body: Any) -> dict[str, Any]:
    r = world.owner.post(f"{API}/deployments/{name}/retrain", json=body)
    assert r.status_code == 202, r.text
    started = dict(r.json())
    job = wait_job(world.owner, started["job_id"])
    assert job["status"] == "succeeded", job
    run = world.owner.get(f"{API}/retrain-runs/{started['created_id']}")
    assert run.status_code == 200, run.text
    return dict(run.json())


def _auc(world: World, pairs: list[tuple[dict[str, Any], str]]) -> float:
    y = [int(t == world.positive) for _, t in pairs]
    p = [a["probabilities"][world.positive] for a, _ in pairs]
    return float(skm.roc_auc_score(y, p))


def _deployment(world: World, name: str) -> dict[str, Any]:
    r = world.owner.get(f"{API}/deployments/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_retraining_loop_end_to_end_shift_alert_retrain_promote_rollback(world: World) -> None:
    name = world.deploy()
    rule = world.owner.post(
        f"{API}/alert-rules",
        json={"deployment": name, "kind": "drift", "level": "medium", "channels": IN_APP},
    )
    assert rule.status_code == 201, rule.text
    served = world.traffic(name, 600)
    # The shift: a drift report on the live traffic fires the drift rule.
    r = world.owner.post(f"{API}/deployments/{name}/drift", json={"window": "1h"})
    assert r.status_code == 202, r.text
    assert wait_job(world.owner, r.json()["job_id"])["status"] == "succeeded"
    alerts = world.owner.get(f"{API}/alerts", params={"deployment": name}).json()["items"]
    (alert,) = [a for a in alerts if a["rule_id"] == rule.json()["rule_id"]]
    assert alert["kind"] == "drift"
    assert "Age" in alert["facts"]["most_drifted"]

    run = _retrain(world, name, alert_id=alert["alert_id"])
    assert run["trigger"] == "drift" and run["trigger_ref"] == alert["alert_id"]
    assert run["status"] == "awaiting_decision" and run["decision"] is None
    assert run["policy"] == "refit" and run["champion_version_id"] == world.mv_id
    # 30% of the 600 labelled cases evaluate (the newest); the other 420 join training.
    assert run["n_eval_rows"] == 180 and run["n_train_rows"] == 420
    window = served[-180:]
    assert run["metric"] == "roc_auc"
    champion = run["metrics"]["champion"]["metrics"]["roc_auc"]
    # The champion served these very rows: its score is sklearn's on its own answers.
    assert champion == pytest.approx(_auc(world, window), abs=1e-6)
    low, high = run["metrics"]["champion"]["intervals"]["roc_auc"]
    assert low <= champion <= high
    challenger = run["metrics"]["challenger"]["metrics"]["roc_auc"]
    assert run["narrative"]["text"].startswith(
        f"The challenger scores ROC AUC {challenger:.3f} vs {champion:.3f} on the last 30 "
        "days' 180 labelled cases"
    )
    # The window's first and last cases were answered in the last two requests' times.
    assert datetime.fromisoformat(run["window"]["start"]) <= datetime.fromisoformat(
        run["window"]["end"]
    )
    # The challenger's training data: a new version of the dataset, a child of the
    # champion's, holding the original rows plus the 420 older labelled rows.
    with world.container.db.session() as s:
        trained = s.get(DatasetVersion, run["dataset_version_id"])
        original = s.get(DatasetVersion, world.dataset_version_id)
        challenger_mv = s.get(ModelVersion, run["challenger_version_id"])
        assert trained is not None and original is not None and challenger_mv is not None
        assert trained.parent_version_id == world.dataset_version_id
        assert trained.n_rows == original.n_rows + 420
        assert challenger_mv.dataset_version_id == trained.id
        assert challenger_mv.parent_version_id == world.mv_id
    listed = world.owner.get(f"{API}/deployments/{name}/retrain-runs").json()
    assert listed["total"] == 1 and listed["items"][0]["retrain_run_id"] == run["retrain_run_id"]

    promoted = world.owner.post(
        f"{API}/retrain-runs/{run['retrain_run_id']}/promote", json={"reason": "looks right"}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["status"] == "promoted"
    assert promoted.json()["decided_by"] == run["owner_id"]  # alice decided
    assert promoted.json()["narrative"]["text"].endswith("Promoted by alice: looks right.")
    deployment = _deployment(world, name)
    assert deployment["model_version_id"] == run["challenger_version_id"]
    revisions = world.owner.get(f"{API}/deployments/{name}/revisions").json()["items"]
    assert revisions[0]["reason"] == f"retrain run {run['retrain_run_id']}: looks right"
    # The deployment now answers with the challenger: its score on the window is the run's.
    answer = world.predict(name, world.shifted.iloc[420:600])
    assert answer["model_version_id"] == run["challenger_version_id"]
    answers = answer["predictions"]
    rescored = _auc(world, list(zip(answers, [t for _, t in window], strict=True)))
    assert rescored == pytest.approx(challenger, abs=1e-6)
    # Deciding twice is refused.
    again = world.owner.post(f"{API}/retrain-runs/{run['retrain_run_id']}/reject")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "retrain_not_awaiting"
    assert "promoted" in again.json()["error"]["message"]

    back = world.owner.post(f"{API}/deployments/{name}/rollback", json={})
    assert back.status_code == 200, back.text
    assert _deployment(world, name)["model_version_id"] == world.mv_id
    assert world.predict(name, world.shifted.iloc[:5])["model_version_id"] == world.mv_id


def test_reject_keeps_the_champion_and_records_who_and_why(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 200)
    run = _retrain(world, name)
    assert run["trigger"] == "manual" and run["trigger_ref"] is None
    assert run["n_eval_rows"] == 60 and run["n_train_rows"] == 140
    r = world.owner.post(
        f"{API}/retrain-runs/{run['retrain_run_id']}/reject", json={"reason": "too noisy"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "rejected" and out["decision"] == "reject"
    assert out["reason"] == "too noisy" and out["decided_at"] is not None
    assert out["narrative"]["text"].endswith("Rejected by alice: too noisy.")
    assert _deployment(world, name)["model_version_id"] == world.mv_id
    promote = world.owner.post(f"{API}/retrain-runs/{run['retrain_run_id']}/promote")
    assert promote.status_code == 409
    assert promote.json()["error"]["code"] == "retrain_not_awaiting"
    # The model's current version is still the champion.
    model_id = world.owner.get(f"{API}/model-versions/{world.mv_id}").json()["model_id"]
    model = world.owner.get(f"{API}/models/{model_id}").json()
    assert model["current_version_id"] == world.mv_id


def test_auto_promote_decides_by_the_margin(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 200)
    # No AUC can beat another by 1.0: the challenger is rejected at once.
    run = _retrain(world, name, auto_promote=True, margin=1.0)
    assert run["status"] == "rejected" and run["decided_by"] == "auto"
    assert "rejected automatically" in run["narrative"]["text"]
    assert _deployment(world, name)["model_version_id"] == world.mv_id
    # A margin of 0: the decision follows the scores, direction-aware.
    run = _retrain(world, name, auto_promote=True, margin=0.0)
    scores = run["metrics"]
    wins = is_better(
        "roc_auc",
        scores["challenger"]["metrics"]["roc_auc"],
        scores["champion"]["metrics"]["roc_auc"],
        0.0,
    )
    assert run["status"] == ("promoted" if wins else "rejected")
    served = _deployment(world, name)["model_version_id"]
    assert served == (run["challenger_version_id"] if wins else world.mv_id)
    if wins:
        revisions = world.owner.get(f"{API}/deployments/{name}/revisions").json()["items"]
        assert revisions[0]["reason"].startswith(f"retrain run {run['retrain_run_id']}")


def test_too_few_labels_is_a_409_saying_how_many(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 30)
    r = world.owner.post(f"{API}/deployments/{name}/retrain", json={})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "too_few_labels"
    assert error["details"] == {"deployment": name, "labelled": 30, "needed": 50}
    assert "30 logged predictions with an actual" in error["message"]
    assert "at least 50" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy": "guess"}, "policy"),
        ({"margin": -0.1}, "margin"),
        ({"budget_s": 0}, "budget_s"),
        ({"auto": True}, "auto"),
    ],
    ids=["policy", "negative-margin", "zero-budget", "unknown-field"],
)
def test_bad_retrain_requests_are_422_naming_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    name = world.deploy()
    r = world.owner.post(f"{API}/deployments/{name}/retrain", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
    assert field in str(r.json()["error"]["details"])


def test_alert_of_another_deployment_is_refused(world: World) -> None:
    first, second = world.deploy(), world.deploy()
    rule = world.owner.post(
        f"{API}/alert-rules",
        json={"deployment": first, "kind": "drift", "level": "low", "channels": IN_APP},
    )
    assert rule.status_code == 201, rule.text
    world.traffic(first, 60)
    r = world.owner.post(f"{API}/deployments/{first}/drift", json={"window": "1h"})
    assert wait_job(world.owner, r.json()["job_id"])["status"] == "succeeded"
    (alert,) = world.owner.get(f"{API}/alerts", params={"deployment": first}).json()["items"]
    r = world.owner.post(
        f"{API}/deployments/{second}/retrain", json={"alert_id": alert["alert_id"]}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "alert_of_other_deployment"
    assert r.json()["error"]["details"]["parameter"] == "alert_id"
    r = world.other.post(f"{API}/deployments/{first}/retrain", json={"alert_id": "x" * 32})
    assert r.status_code == 404  # bob cannot see the deployment at all


def test_runs_are_visible_to_their_owner_and_admins_only(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 60)
    run = _retrain(world, name)
    run_id = run["retrain_run_id"]
    assert world.other.get(f"{API}/retrain-runs/{run_id}").status_code == 404
    assert world.other.post(f"{API}/retrain-runs/{run_id}/promote").status_code == 404
    assert world.other.get(f"{API}/deployments/{name}/retrain-runs").status_code == 404
    assert world.admin.get(f"{API}/retrain-runs/{run_id}").status_code == 200
    assert world.other.post(f"{API}/retrain-runs/{run_id}/reject").status_code == 404
    # Undeployed: the run is hidden with its deployment, for the owner too.
    assert world.owner.delete(f"{API}/deployments/{name}").status_code == 204
    for method, path in [
        ("GET", f"{API}/retrain-runs/{run_id}"),
        ("POST", f"{API}/retrain-runs/{run_id}/promote"),
        ("POST", f"{API}/retrain-runs/{run_id}/reject"),
    ]:
        r = world.owner.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert "undeployed" in r.json()["error"]["message"]
    assert world.owner.post(f"{API}/deployments/{name}/restore").status_code == 200
    assert world.owner.get(f"{API}/retrain-runs/{run_id}").status_code == 200
    missing = world.owner.get(f"{API}/retrain-runs/{'0' * 32}")
    assert missing.status_code == 404
    assert missing.json()["error"]["details"] == {"retrain_run_id": "0" * 32}


def test_search_policy_reruns_automl_within_the_budget(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 100)
    run = _retrain(world, name, policy="search", budget_s=15)
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


def test_a_second_run_while_one_is_under_way_is_refused(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 60)
    first = world.owner.post(f"{API}/deployments/{name}/retrain", json={})
    assert first.status_code == 202, first.text
    second = world.owner.post(f"{API}/deployments/{name}/retrain", json={})
    run_id = first.json()["created_id"]
    # A run reads the log, stores a version and fits a model: seconds, not milliseconds.
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "retrain_running"
    assert second.json()["error"]["details"]["retrain_run_id"] == run_id
    assert wait_job(world.owner, first.json()["job_id"])["status"] == "succeeded"


def test_a_run_left_by_a_dead_job_is_failed_by_the_sweep(world: World) -> None:
    from narrate.services import recovery
    from narrate.storage.sql.tables import Deployment, Job, RetrainRun

    name = world.deploy()
    c = world.container
    with c.db.session() as s:
        d = s.scalar(select(Deployment).where(Deployment.name == name))
        assert d is not None
        job = Job(owner_id=d.owner_id, kind="deployment.retrain", status="failed")
        s.add(job)
        s.flush()
        running = RetrainRun(
            owner_id=d.owner_id,
            deployment_id=d.id,
            champion_version_id=world.mv_id,
            job_id=job.id,
            status="running",
        )
        orphan = RetrainRun(
            owner_id=d.owner_id, deployment_id=d.id, champion_version_id=world.mv_id
        )
        s.add_all([running, orphan])
        s.flush()
        running_id, orphan_id = running.id, orphan.id
    recovery.recover_jobs(c)
    assert world.owner.get(f"{API}/retrain-runs/{orphan_id}").json()["status"] == "queued"
    out = world.owner.get(f"{API}/retrain-runs/{running_id}").json()
    assert out["status"] == "failed"
    assert out["error"] == "Its job ended (failed) before the run did."
    # A run whose job was never recorded fails once it is older than the stale limit.
    recovery.recover_jobs(c, now=utcnow() + timedelta(seconds=STALE_AFTER_S + 5))
    assert world.owner.get(f"{API}/retrain-runs/{orphan_id}").json()["status"] == "failed"
    # A new run can start after the failed ones.
    world.traffic(name, 60)
    assert _retrain(world, name)["status"] == "awaiting_decision"


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
    run = _retrain(world, name, auto_promote=True, margin=0.0)
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
    run = _retrain(world, name)
    assert run["status"] == "awaiting_decision", run
    assert run["n_train_rows"] == 140 and run["n_eval_rows"] == 60
    champion = run["metrics"]["champion"]["metrics"]["roc_auc"]
    assert champion == pytest.approx(_auc(world, served[-60:]), abs=1e-6)
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
    rescored = _auc(world, list(zip(answer["predictions"], truth, strict=True)))
    challenger = run["metrics"]["challenger"]["metrics"]["roc_auc"]
    assert rescored == pytest.approx(challenger, abs=1e-6)
