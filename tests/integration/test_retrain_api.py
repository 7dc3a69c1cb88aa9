"""The retraining loop over real HTTP: shift → alert → retrain → compare → promote → rollback.

The champion is a small LightGBM model trained on the younger applicants of the credit
data (Age < 35). The deployment then serves older applicants (Age ≥ 45, a different
subpopulation the champion never saw) and their real outcomes are posted as actuals. A
drift alert fires on that traffic; a retrain run trains a challenger on the original rows
plus the older labelled rows and scores both on the newest labelled window. The scores
are checked against scikit-learn on the same rows, with the probabilities the deployment
itself answers before and after the promotion. (Policies and model kinds:
test_retrain_models_api.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.api import wait_job
from tests.support.retrain import (
    API,
    IN_APP,
    World,
    auc,
    deployment,
    make_world,
    run_retrain,
)

from narrate.core.monitor.retrain import is_better
from narrate.errors import NotFound
from narrate.jobs.records import STALE_AFTER_S
from narrate.storage.sql.tables import DatasetVersion, ModelVersion, utcnow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    yield from make_world(request, tmp_path_factory)


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

    run = run_retrain(world, name, alert_id=alert["alert_id"])
    assert run["trigger"] == "drift" and run["trigger_ref"] == alert["alert_id"]
    assert run["status"] == "awaiting_decision" and run["decision"] is None
    assert run["policy"] == "refit" and run["champion_version_id"] == world.mv_id
    # 30% of the 600 labelled cases evaluate (the newest); the other 420 join training.
    assert run["n_eval_rows"] == 180 and run["n_train_rows"] == 420
    window = served[-180:]
    assert run["metric"] == "roc_auc"
    champion = run["metrics"]["champion"]["metrics"]["roc_auc"]
    # The champion served these very rows: its score is sklearn's on its own answers.
    assert champion == pytest.approx(auc(world, window), abs=1e-6)
    low, high = run["metrics"]["champion"]["intervals"]["roc_auc"]
    assert low <= champion <= high
    challenger = run["metrics"]["challenger"]["metrics"]["roc_auc"]
    # Every step is in the job's history, the narrative last.
    events = world.owner.get(f"{API}/jobs/{run['job_id']}").json()["events"]
    steps = [e["data"]["retrain_step"] for e in events if "retrain_step" in (e["data"] or {})]
    assert steps == ["read", "split", "train", "score", "record", "narrative"]
    said = {
        e["data"]["retrain_step"]: e["message"]
        for e in events
        if "retrain_step" in (e["data"] or {})
    }
    assert said["split"] == (
        "The newest 180 labelled cases evaluate; 420 older ones join the training data"
    )
    assert said["narrative"] == run["narrative"]["text"]
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
    assert deployment(world, name)["model_version_id"] == run["challenger_version_id"]
    revisions = world.owner.get(f"{API}/deployments/{name}/revisions").json()["items"]
    assert revisions[0]["reason"] == f"retrain run {run['retrain_run_id']}: looks right"
    # The deployment now answers with the challenger: its score on the window is the run's.
    answer = world.predict(name, world.shifted.iloc[420:600])
    assert answer["model_version_id"] == run["challenger_version_id"]
    answers = answer["predictions"]
    rescored = auc(world, list(zip(answers, [t for _, t in window], strict=True)))
    assert rescored == pytest.approx(challenger, abs=1e-6)
    # Deciding twice is refused.
    again = world.owner.post(f"{API}/retrain-runs/{run['retrain_run_id']}/reject")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "retrain_not_awaiting"
    assert "promoted" in again.json()["error"]["message"]

    back = world.owner.post(f"{API}/deployments/{name}/rollback", json={})
    assert back.status_code == 200, back.text
    assert deployment(world, name)["model_version_id"] == world.mv_id
    assert world.predict(name, world.shifted.iloc[:5])["model_version_id"] == world.mv_id


def test_reject_keeps_the_champion_and_records_who_and_why(world: World) -> None:
    name = world.deploy()
    world.traffic(name, 200)
    run = run_retrain(world, name)
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
    assert deployment(world, name)["model_version_id"] == world.mv_id
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
    run = run_retrain(world, name, auto_promote=True, margin=1.0)
    assert run["status"] == "rejected" and run["decided_by"] == "auto"
    assert "rejected automatically" in run["narrative"]["text"]
    assert deployment(world, name)["model_version_id"] == world.mv_id
    # A margin of 0: the decision follows the scores, direction-aware.
    run = run_retrain(world, name, auto_promote=True, margin=0.0)
    scores = run["metrics"]
    wins = is_better(
        "roc_auc",
        scores["challenger"]["metrics"]["roc_auc"],
        scores["champion"]["metrics"]["roc_auc"],
        0.0,
    )
    assert run["status"] == ("promoted" if wins else "rejected")
    served = deployment(world, name)["model_version_id"]
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
    run = run_retrain(world, name)
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
    assert run_retrain(world, name)["status"] == "awaiting_decision"


def test_a_failing_job_marks_its_run_failed_with_the_reason(world: World) -> None:
    from narrate.jobs.context import JobContext
    from narrate.services.retrain_job import retrain_job
    from narrate.storage.sql.tables import Deployment, Job, RetrainRun

    name = world.deploy()
    c = world.container
    with c.db.session() as s:
        d = s.scalar(select(Deployment).where(Deployment.name == name))
        assert d is not None
        job = Job(owner_id=d.owner_id, kind="deployment.retrain", status="running")
        s.add(job)
        s.flush()
        run = RetrainRun(
            owner_id=d.owner_id, deployment_id=d.id, champion_version_id="0" * 32, job_id=job.id
        )
        s.add(run)
        s.flush()
        run_id, job_id, owner_id = run.id, job.id, d.owner_id
    ctx = JobContext(job_id, owner_id, {"run_id": run_id}, c.settings, c.db, c.blobs)
    with pytest.raises(NotFound):
        retrain_job(ctx)
    out = world.owner.get(f"{API}/retrain-runs/{run_id}").json()
    assert out["status"] == "failed"
    assert out["error"] == "The champion model version or its training data is gone."
    decide = world.owner.post(f"{API}/retrain-runs/{run_id}/promote")
    assert decide.status_code == 409
    assert decide.json()["error"]["details"] == {"retrain_run_id": run_id, "status": "failed"}
