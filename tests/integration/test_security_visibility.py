"""One visibility rule for every route that takes an id (security review, Medium 4).

A record is visible when the caller owns it or is an admin and neither it nor a parent
is soft-deleted (:mod:`narrate.storage.sql.visibility`). The table below says, for every
route of the app with an ``{..._id}`` path parameter, how to build a valid request and
what it answers while everything is live, after the dataset is deleted, and after the
model is deleted. A new route with an id that is not in the table fails
``test_every_route_with_an_id_has_a_visibility_case``.

Everything runs over real HTTP against the app on a real SQLite file; one small model is
trained once per module (two families, a couple of trials).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from tests.conftest import ADMIN_PASSWORD, SAMPLES, login, make_settings
from tests.support.api import FINISHED, wait_job
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.services import datasets, users
from narrate.storage.sql.visibility import Owner

LIVE, DATASET_DELETED, MODEL_DELETED = "live", "dataset_deleted", "model_deleted"
STATES = (LIVE, DATASET_DELETED, MODEL_DELETED)
FAST = {"max_trials": 2, "families": ["baseline", "linear"], "n_jobs": 1}
API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"


@dataclass(frozen=True)
class Case:
    """How to call one route, and what the owner (or an admin) gets in each state.

    ``path`` is formatted with the ids of the module's records; ``None`` in ``expect``
    means "as when live". Other analysts always get 404.
    """

    method: str
    route: str
    live: int
    expect: dict[str, int | None] = field(default_factory=dict)
    path: str | None = None
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    label: str = ""

    def status_in(self, state: str) -> int:
        value = self.expect.get(state)
        return self.live if value is None else value

    @property
    def id(self) -> str:
        return f"{self.method} {self.route}{' ' + self.label if self.label else ''}"


def data(method: str, route: str, live: int, **kw: Any) -> Case:
    """A route that reads a dataset's rows or metadata: 404 once the dataset is deleted."""
    expect = {DATASET_DELETED: 404, **kw.pop("expect", {})}
    return Case(method, route, live, expect=expect, **kw)


def model(method: str, route: str, live: int, **kw: Any) -> Case:
    """A route on a model or its versions: 404 once the model is deleted; a model stays
    usable after the dataset it was trained on is deleted."""
    expect = {MODEL_DELETED: 404, **kw.pop("expect", {})}
    return Case(method, route, live, expect=expect, **kw)


BAD_STEP = {"steps": [{"step": "no_such_step"}]}
#: A raw penguins.csv row without the target, for the explain route.
PENGUIN = {
    "island": "Biscoe",
    "bill_length_mm": 45.2,
    "bill_depth_mm": 15.1,
    "flipper_length_mm": 215.0,
    "body_mass_g": 5100.0,
    "sex": "male",
    "year": 2008,
}

CASES: list[Case] = [
    # Datasets
    data("GET", "/api/v1/datasets/{dataset_id}", 200),
    data("PATCH", "/api/v1/datasets/{dataset_id}", 200, json={"description": "checked"}),
    data("DELETE", "/api/v1/datasets/{dataset_id}", 204),
    # Restore is the one route that finds a deleted record (and only a deleted one).
    Case("POST", "/api/v1/datasets/{dataset_id}/restore", 404, {DATASET_DELETED: 200}),
    data("GET", "/api/v1/datasets/{dataset_id}/rows", 200),
    data("GET", "/api/v1/datasets/{dataset_id}/versions", 200),
    data("GET", "/api/v1/datasets/{dataset_id}/profile", 200),
    data("GET", "/api/v1/datasets/{dataset_id}/recommendations", 200),
    # The LLM is off in this module: the record is found, then 409 llm_off.
    data("POST", "/api/v1/datasets/{dataset_id}/ask", 409, json={"question": "How many rows?"}),
    # A valid recipe shape with an unknown step: the lookup passes, then validation answers.
    data("POST", "/api/v1/datasets/{dataset_id}/recipes/validate", 422, json=BAD_STEP),
    data("POST", "/api/v1/datasets/{dataset_id}/recipes/preview", 422, json=BAD_STEP),
    data("POST", "/api/v1/datasets/{dataset_id}/recipes/apply", 422, json=BAD_STEP),
    # Dataset versions
    data("GET", "/api/v1/versions/{version_id}", 200),
    data("GET", "/api/v1/versions/{version_id}/download", 200),
    data("GET", "/api/v1/versions/{version_id}/profile", 200),
    data("GET", "/api/v1/versions/{version_id}/lineage", 200),
    data("POST", "/api/v1/versions/{version_id}/reproduce", 200),
    data("POST", "/api/v1/versions/{version_id}/restore", 200),
    # Models: usable after their dataset is deleted, except what reads that dataset.
    model("GET", "/api/v1/models/{model_id}", 200),
    model("DELETE", "/api/v1/models/{model_id}", 204),
    Case("POST", "/api/v1/models/{model_id}/restore", 404, {MODEL_DELETED: 200}),
    model("GET", "/api/v1/models/{model_id}/leaderboard", 200),
    model("GET", "/api/v1/models/{model_id}/evaluation", 200),
    model("GET", "/api/v1/models/{model_id}/recommendations", 200),
    model("POST", "/api/v1/models/{model_id}/ask", 409, json={"question": "How good is it?"}),
    model(
        "POST",
        "/api/v1/models/{model_id}/evaluations",
        201,
        json={"version_id": "{version_id}"},
        expect={DATASET_DELETED: 404},
    ),
    model(
        "POST",
        "/api/v1/models/{model_id}/refit",
        202,
        json={"version_id": "{version_id}"},
        expect={DATASET_DELETED: 404},
    ),
    model(
        "POST",
        "/api/v1/models/{model_id}/refit",
        202,
        json={},
        expect={DATASET_DELETED: 404},
        label="onto the dataset's current version",
    ),
    model("GET", "/api/v1/model-versions/{mv_id}", 200),
    model("GET", "/api/v1/model-versions/{mv_id}/evaluations", 200),
    model("GET", "/api/v1/model-versions/{mv_id}/artifact", 200, params={"format": "joblib"}),
    model("GET", "/api/v1/model-versions/{mv_id}/card", 200),
    model("GET", "/api/v1/model-versions/{mv_id}/stage", 200),
    model("POST", "/api/v1/model-versions/{mv_id}/stage", 200, json={"stage": "staging"}),
    model("POST", "/api/v1/model-versions/{mv_id}/explain", 200, json={"rows": [PENGUIN]}),
    model("GET", "/api/v1/model-versions/{mv_id}/importances", 200),
    model(
        "POST",
        "/api/v1/model-versions/{mv_id}/what-if",
        200,
        json={"row": PENGUIN, "variants": [{"island": "Dream"}]},
    ),
    model(
        "POST",
        "/api/v1/model-versions/{mv_id}/dependence",
        200,
        json={"column": "bill_length_mm", "rows": 50, "grid_points": 5},
    ),
    model(
        "GET",
        "/api/v1/evaluations/{evaluation_id}",
        200,
        path="/api/v1/evaluations/{holdout_id}",
        label="holdout (part of the model)",
    ),
    model(
        "GET",
        "/api/v1/evaluations/{evaluation_id}",
        200,
        path="/api/v1/evaluations/{external_id}",
        expect={DATASET_DELETED: 404},
        label="external (on the dataset's version)",
    ),
    # A drift report holds its dataset versions' distributions: hidden with them.
    data("GET", "/api/v1/drift-reports/{report_id}", 200),
    # Jobs are the caller's own records with no parents: still readable after a delete.
    Case("GET", "/api/v1/jobs/{job_id}", 200),
    Case("POST", "/api/v1/jobs/{job_id}/cancel", 409),
    # The module's job trains a model: the owner is told it is not a batch job.
    Case("GET", "/api/v1/jobs/{job_id}/output", 404),
]

#: Routes that take ids in the body or the query string (not found by enumeration).
BODY_AND_QUERY_CASES: list[Case] = [
    data("POST", "/api/v1/models", 422, json={"dataset_id": "{dataset_id}", "target": "nope"}),
    data(
        "POST", "/api/v1/models/train", 422, json={"version_id": "{version_id}", "target": "nope"}
    ),
    data("POST", "/api/v1/versions/compare", 200, json={"a": "{version_id}", "b": "{version_id}"}),
    model(
        "POST", "/api/v1/models/compare", 200, json={"model_version_ids": ["{mv_id}", "{mv_id}"]}
    ),
    data(
        "POST",
        "/api/v1/drift",
        202,
        json={"reference_version_id": "{version_id}", "current_version_id": "{version_id}"},
    ),
    data("GET", "/stages/clean", 200, params={"dataset": "{dataset_id}"}),
    data("GET", "/stages/transform", 200, params={"dataset": "{dataset_id}"}),
    data("GET", "/stages/train", 200, params={"dataset": "{dataset_id}"}),
    model("GET", "/stages/train", 200, params={"model": "{model_id}"}, label="?model"),
    model("GET", "/stages/evaluate", 200, params={"model": "{model_id}"}),
]

#: Routes with an id that the rule deliberately does not cover, and why.
EXEMPT: dict[tuple[str, str], str] = {
    ("PATCH", "/api/v1/users/{user_id}"): "users are not owned records; the route is admin-only",
    ("DELETE", "/api/v1/me/tokens/{token_id}"): "looks up only the caller's own API tokens",
    ("POST", "/account/tokens/{token_id}/revoke"): "looks up only the caller's own API tokens",
    **dict.fromkeys(
        (
            ("DELETE", "/api/v1/deployments/{name}/keys/{key_id}"),
            ("GET", "/api/v1/deployments/{name}/batch/{job_id}"),
            ("POST", "/api/v1/deployments/{name}/batch/{job_id}/cancel"),
            ("GET", "/api/v1/deployments/{name}/batch/{job_id}/output"),
        ),
        "addressed by the deployment's name, whose visibility (and key scope) "
        "tests/integration/test_deploy_api.py checks; the id is looked up within it",
    ),
    **dict.fromkeys(
        (
            ("GET", "/api/v1/alert-rules/{rule_id}"),
            ("PATCH", "/api/v1/alert-rules/{rule_id}"),
            ("DELETE", "/api/v1/alert-rules/{rule_id}"),
            ("POST", "/api/v1/alert-rules/{rule_id}/check"),
            ("GET", "/api/v1/alerts/{alert_id}"),
            ("POST", "/api/v1/alerts/{alert_id}/acknowledge"),
            ("POST", "/api/v1/alerts/{alert_id}/resolve"),
        ),
        "a rule needs a deployment, and this module's model must stay deletable (a deployed "
        "model is not); tests/integration/test_alerts_api.py checks owner, other analyst, "
        "admin, deleted rule and undeployed deployment for every one of these routes",
    ),
    **dict.fromkeys(
        (
            ("GET", "/api/v1/schedules/{schedule_id}"),
            ("PATCH", "/api/v1/schedules/{schedule_id}"),
            ("DELETE", "/api/v1/schedules/{schedule_id}"),
            ("POST", "/api/v1/schedules/{schedule_id}/pause"),
            ("POST", "/api/v1/schedules/{schedule_id}/resume"),
            ("POST", "/api/v1/schedules/{schedule_id}/run"),
            ("GET", "/api/v1/schedules/{schedule_id}/runs"),
        ),
        "a schedule needs a deployment, and this module's model must stay deletable (a "
        "deployed model is not); tests/integration/test_schedules_api.py checks owner, other "
        "analyst, admin and deleted schedule for every one of these routes",
    ),
    **dict.fromkeys(
        (
            ("GET", "/api/v1/retrain-runs/{run_id}"),
            ("POST", "/api/v1/retrain-runs/{run_id}/promote"),
            ("POST", "/api/v1/retrain-runs/{run_id}/reject"),
        ),
        "a retrain run needs a deployment, and this module's model must stay deletable (a "
        "deployed model is not); tests/integration/test_retrain_api.py checks owner, other "
        "analyst, admin and undeployed deployment for every one of these routes",
    ),
}

_ID_PARAM = re.compile(r"\{[a-z_]*id\}")


def _id_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of the app whose path takes an id."""
    found = set()
    # Routers included with a prefix are resolved lazily; this walks them with prefixes.
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if _ID_PARAM.search(path):
            found |= {(m, path) for m in route.methods or () if m != "HEAD"}
    return found


@dataclass
class World:
    """The app, three users and one analyst's dataset, model and evaluations."""

    container: Container
    app: Any
    owner: httpx.Client
    admin: httpx.Client
    other: httpx.Client
    ids: dict[str, str]

    def call(self, client: httpx.Client, case: Case) -> httpx.Response:
        fmt = {**self.ids}
        path = (case.path or case.route).format(**fmt)
        body = _fill(case.json, fmt) if case.json is not None else None
        params = _fill(case.params, fmt) if case.params else None
        r = client.request(case.method, path, json=body, params=params)
        if r.status_code == 202 and "job_id" in r.text:
            wait_job(client, r.json()["job_id"])
        return r

    def enter(self, state: str) -> None:
        """Soft-delete what ``state`` says, through the owner's own delete routes."""
        if state == DATASET_DELETED:
            r = self.owner.delete(f"{API}/datasets/{self.ids['dataset_id']}")
            assert r.status_code == 204, r.text
        if state == MODEL_DELETED:
            r = self.owner.delete(f"{API}/models/{self.ids['model_id']}")
            assert r.status_code == 204, r.text

    def reset(self) -> None:
        """Bring back whatever is deleted (a case may have deleted or restored it)."""
        self.admin.post(f"{API}/datasets/{self.ids['dataset_id']}/restore")
        self.admin.post(f"{API}/models/{self.ids['model_id']}/restore")


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _train(owner: httpx.Client, version_id: str) -> dict[str, str]:
    r = owner.post(
        f"{API}/models/train",
        json={"version_id": version_id, "target": "species", "time_budget_s": 20, "options": FAST},
    )
    assert r.status_code == 202, r.text
    job = wait_job(owner, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    model_id = r.json()["model_id"]
    mv_id = owner.get(f"{API}/models/{model_id}").json()["current_version_id"]
    holdout = owner.get(f"{API}/model-versions/{mv_id}").json()["evaluation"]["id"]
    external = owner.post(f"{API}/models/{model_id}/evaluations", json={"version_id": version_id})
    assert external.status_code == 201, external.text
    return {
        "model_id": model_id,
        "mv_id": mv_id,
        "job_id": r.json()["job_id"],
        "holdout_id": holdout,
        "external_id": external.json()["id"],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """An analyst's dataset and trained model, an admin, and a second analyst."""
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("visibility")
    container = build_container(make_settings(tmp, f"sqlite:///{tmp / 'narrate.db'}"))
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
            # Stored through the ingest service (the upload route has its own tests).
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "penguins.csv", filename="penguins.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target="species")
            ids = {"dataset_id": dataset["id"], "version_id": dataset["version"]["id"]}
            ids |= _train(owner, ids["version_id"])
            ids["evaluation_id"] = ids["external_id"]
            drift = owner.post(
                f"{API}/drift",
                json={
                    "reference_version_id": ids["version_id"],
                    "current_version_id": ids["version_id"],
                },
            )
            assert drift.status_code == 202, drift.text
            wait_job(owner, drift.json()["job_id"])
            ids["report_id"] = drift.json()["created_id"]
            yield World(container, app, owner, admin, other, ids)
    finally:
        server.stop()
        container.close()


def test_every_route_with_an_id_has_a_visibility_case(world: World) -> None:
    routes = _id_routes(world.app)
    covered = {(c.method, c.route) for c in CASES}
    missing = sorted(routes - covered - set(EXEMPT))
    assert not missing, f"routes with an id but no visibility case (add one to CASES): {missing}"
    stale = sorted((covered | set(EXEMPT)) - routes)
    assert not stale, f"cases for routes the app no longer has: {stale}"


ALL = CASES + BODY_AND_QUERY_CASES


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_route_answers_by_the_visibility_rule(world: World, case: Case, state: str) -> None:
    """Owner and admin get the case's status for the state; another analyst gets 404."""
    expected = case.status_in(state)
    try:
        for who, client in (("owner", world.owner), ("admin", world.admin)):
            world.enter(state)
            r = world.call(client, case)
            assert r.status_code == expected, f"{who} in {state}: {r.status_code} {r.text[:300]}"
            if expected == 404 and case.route.startswith(API):
                error = r.json()["error"]
                assert error["code"] == "not_found", error
                assert any(v in error["message"] for v in world.ids.values()), error
            world.reset()
        world.enter(state)
        r = world.call(world.other, case)
        assert r.status_code == 404, f"other analyst in {state}: {r.status_code} {r.text[:300]}"
        if case.route.startswith(API):
            assert r.json()["error"]["message"].startswith("No "), r.text
    finally:
        world.reset()


def test_deleted_dataset_tells_the_owner_which_parent_to_restore(world: World) -> None:
    world.enter(DATASET_DELETED)
    try:
        r = world.owner.get(f"{API}/versions/{world.ids['version_id']}/download")
        assert r.status_code == 404
        error = r.json()["error"]
        assert error["code"] == "not_found"
        assert error["message"] == (
            f"Dataset version '{world.ids['version_id']}' belongs to dataset "
            f"'{world.ids['dataset_id']}', which is deleted."
        )
        assert f"/api/v1/datasets/{world.ids['dataset_id']}/restore" in error["hint"]
        other = world.other.get(f"{API}/versions/{world.ids['version_id']}/download")
        assert other.json()["error"]["message"] == (
            f"No dataset version with id '{world.ids['version_id']}'."
        )
    finally:
        world.reset()
    assert world.owner.get(f"{API}/versions/{world.ids['version_id']}/download").status_code == 200


def test_lists_hide_a_deleted_model_and_its_lineage_node(world: World) -> None:
    version = world.ids["version_id"]

    def model_nodes() -> list[str]:
        nodes = world.owner.get(f"{API}/versions/{version}/lineage").json()["nodes"]
        return [n["model_id"] for n in nodes if n["type"] == "model"]

    assert world.ids["model_id"] in model_nodes()
    assert world.other.get(f"{API}/models").json()["items"] == []
    world.enter(MODEL_DELETED)
    try:
        assert world.ids["model_id"] not in model_nodes()
        listed = world.admin.get(f"{API}/models").json()["items"]
        assert world.ids["model_id"] not in [m["id"] for m in listed]
    finally:
        world.reset()
    assert world.ids["model_id"] in [
        m["id"] for m in world.owner.get(f"{API}/models").json()["items"]
    ]


def test_jobs_of_the_owner_stay_hidden_from_other_analysts(world: World) -> None:
    r = world.other.get(f"{API}/jobs/{world.ids['job_id']}")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"No job with id '{world.ids['job_id']}'."
    assert world.ids["job_id"] not in [
        j["id"] for j in world.other.get(f"{API}/jobs").json()["items"]
    ]
    assert FINISHED  # the module's training job finished before the world was built
