"""Operations metrics on /metrics over real HTTP: predictions counted per deployment and
arm, the database figures (drift, live performance, jobs, alerts, deployments) equal to
what the API says, the scrape-time cache, and every query of the provisioned Grafana
dashboards naming a metric Narrate really exports.

One world per backend: a LightGBM model and a quick linear one on the credit sample, a
deployment with a canary answering single rows and batches (some with an unseen
category), and a second deployment with shifted traffic, a drift report, actuals and an
open alert.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_lightgbm, train_quickly, wait_job
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.core.monitor.drift import LEVELS
from narrate.services import datasets, users
from narrate.storage.sql.visibility import Owner
from narrate.web.ops_metrics import DatabaseCollector

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
TARGET = "Status"
DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
QUEUED = ("queued", "running")
FIRES = 0.000001  # latency p95 in ms: every logged window is above it

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class World:
    container: Container
    server: AppServer
    owner: httpx.Client
    admin: httpx.Client
    canary: str
    watched: str
    rows_by_arm: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    requests: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    drift_job: dict[str, Any] = field(default_factory=dict)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items() if k != TARGET}
        for row in frame.to_dict(orient="records")
    ]


def _deploy(client: httpx.Client, mv: str, **extra: Any) -> str:
    name = "ops-" + uuid.uuid4().hex[:8]
    r = client.post(f"{API}/deployments", json={"name": name, "model_version_id": mv, **extra})
    assert r.status_code == 201, r.text
    return name


def _serve_canary(world: World, frame: pd.DataFrame) -> None:
    """30 single rows and 3 batches of 50 through a deployment with a 50% canary; one row
    in five of the batches has a kind of home the model never saw (flagged)."""
    batch = frame.iloc[100:250].copy()
    batch.loc[batch.index[::5], "Home"] = "coliving"
    requests = [_rows(frame.iloc[i : i + 1]) for i in range(30)]
    requests += [_rows(batch.iloc[k : k + 50]) for k in range(0, 150, 50)]
    for rows in requests:
        r = world.owner.post(f"{API}/deployments/{world.canary}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        body = r.json()
        world.rows_by_arm[body["arm"]] = world.rows_by_arm.get(body["arm"], 0) + len(rows)
        world.flagged += sum(1 for p in body["predictions"] if p["flags"])
        world.requests += 1
    # A refused request answers no rows and is not counted.
    r = world.owner.post(f"{API}/deployments/{world.canary}/predict", json={"rows": [{}]})
    assert r.status_code == 422, r.text


def _watch(world: World, frame: pd.DataFrame) -> None:
    """Shifted traffic, a drift report on it, actuals for every row, an open alert."""
    part = frame.head(300).copy()
    part["Income"] = part["Income"] * 3
    r = world.owner.post(f"{API}/deployments/{world.watched}/predict", json={"rows": _rows(part)})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    started = world.owner.post(f"{API}/deployments/{world.watched}/drift", json={"window": "24h"})
    assert started.status_code == 202, started.text
    world.drift_job = wait_job(world.owner, started.json()["job_id"])
    assert world.drift_job["status"] == "succeeded", world.drift_job
    world.report = world.owner.get(f"{API}/drift-reports/{started.json()['created_id']}").json()
    pairs = [
        {"prediction_id": p["prediction_id"], "actual": str(t)}
        for p, t in zip(predictions, part[TARGET], strict=True)
    ]
    r = world.owner.post(f"{API}/deployments/{world.watched}/actuals", json={"actuals": pairs})
    assert r.status_code == 200 and r.json()["matched"] == 300, r.text
    rule = {"deployment": world.watched, "kind": "latency_p95", "threshold": FIRES}
    r = world.owner.post(f"{API}/alert-rules", json={**rule, "channels": [{"type": "in_app"}]})
    assert r.status_code == 201, r.text
    assert world.owner.post(f"{API}/alert-rules/{r.json()['rule_id']}/check").status_code == 200


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("ops_metrics")
    settings = make_settings(
        tmp,
        backend_url(request, tmp),
        prediction_log_flush_s=0.2,
        deploy_refresh_s=0.2,
        metrics_db_cache_s=0,
    )
    container = build_container(settings)
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
        ):
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            _, mv = train_lightgbm(owner, dataset["version"]["id"], TARGET)
            other = train_quickly(owner, dataset["id"])
            challenger = owner.get(f"{API}/models/{other}").json()["current_version_id"]
            canary = _deploy(owner, mv, canary_model_version_id=challenger, canary_fraction=0.5)
            world = World(container, server, owner, admin, canary, _deploy(owner, mv))
            frame = pd.read_csv(SAMPLES / "credit_data.csv")
            _serve_canary(world, frame)
            _watch(world, frame)
            yield world
    finally:
        server.stop()
        container.close()


def _scrape(world: World) -> tuple[Samples, set[str]]:
    """Every sample of /metrics by (name, labels), and every exported sample name (with
    the suffixes a family of each type has, so an empty family counts as exported)."""
    r = httpx.get(f"{world.server.base_url}/metrics")
    assert r.status_code == 200, r.text
    samples: Samples = {}
    names: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count")}
    for family in text_string_to_metric_families(r.text):
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            names.add(s.name)
    return samples, names


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_predictions_are_counted_per_deployment_and_arm(world: World) -> None:
    samples, _ = _scrape(world)
    assert set(world.rows_by_arm) <= {"primary", "canary"}
    for arm in ("primary", "canary"):
        counted = _value(samples, "narrate_predictions_total", deployment=world.canary, arm=arm)
        assert (counted or 0) == world.rows_by_arm.get(arm, 0)
    assert sum(world.rows_by_arm.values()) == 30 + 150
    flagged = _value(samples, "narrate_prediction_flagged_total", deployment=world.canary)
    assert world.flagged >= 30 and flagged == world.flagged
    latency = "narrate_prediction_request_seconds"
    assert _value(samples, f"{latency}_count", deployment=world.canary) == world.requests
    assert (
        _value(samples, f"{latency}_bucket", deployment=world.canary, le="+Inf") == world.requests
    )
    assert (_value(samples, f"{latency}_sum", deployment=world.canary) or 0) > 0
    assert _value(samples, "narrate_predictions_total", deployment=world.watched, arm="primary")


def test_drift_figures_equal_the_report(world: World) -> None:
    samples, _ = _scrape(world)
    level = LEVELS.index(world.report["overall"]["level"])
    assert level >= 2  # incomes tripled
    assert _value(samples, "narrate_drift_level", deployment=world.watched) == level
    psi = {
        dict(labels)["column"]: v
        for (name, labels), v in samples.items()
        if name == "narrate_drift_psi" and dict(labels)["deployment"] == world.watched
    }
    scored = sorted(
        (c for c in world.report["columns"] if c["psi"] is not None), key=lambda c: -c["psi"]
    )
    assert psi == pytest.approx({c["column"]: c["psi"] for c in scored[:20]})
    assert psi["Income"] == max(psi.values())
    age = _value(samples, "narrate_drift_report_age_seconds", deployment=world.watched)
    assert age is not None and 0 <= age < 3600
    # The deployment without a report has no drift figures.
    assert _value(samples, "narrate_drift_level", deployment=world.canary) is None


def test_performance_figures_equal_the_api(world: World) -> None:
    r = world.owner.get(f"{API}/deployments/{world.watched}/performance", params={"window": "1d"})
    assert r.status_code == 200, r.text
    newest = r.json()["windows"][-1]
    assert newest["n"] == 300
    samples, _ = _scrape(world)
    exported = {
        dict(labels)["metric"]: v
        for (name, labels), v in samples.items()
        if name == "narrate_performance_metric" and dict(labels)["deployment"] == world.watched
    }
    expected = {k: v for k, v in newest["metrics"].items() if v is not None}
    assert expected and exported == pytest.approx(expected)
    degraded = _value(samples, "narrate_performance_degraded", deployment=world.watched)
    assert degraded == float(r.json()["degraded"])
    # No actuals: no performance figures.
    assert _value(samples, "narrate_performance_degraded", deployment=world.canary) is None


def test_jobs_alerts_and_deployments_equal_the_api(world: World) -> None:
    samples, _ = _scrape(world)
    alerts = world.owner.get(
        f"{API}/alerts", params={"deployment": world.watched, "status": "open"}
    ).json()["items"]
    assert alerts
    for severity in {a["severity"] for a in alerts}:
        n = sum(1 for a in alerts if a["severity"] == severity)
        assert (
            _value(samples, "narrate_alerts_open", deployment=world.watched, severity=severity) == n
        )
    total = world.admin.get(f"{API}/deployments").json()["total"]
    assert _value(samples, "narrate_deployments", status="active") == total == 2
    kind = world.drift_job["kind"]
    finished = _value(samples, "narrate_jobs_finished_last_hour", kind=kind, status="succeeded")
    done = [j for j in world.admin.get(f"{API}/jobs").json()["items"] if j["kind"] == kind]
    assert finished == len([j for j in done if j["status"] == "succeeded"]) == 1
    median = _value(samples, "narrate_job_duration_seconds", kind=kind, quantile="0.5")
    assert median is not None and 0 < median < 180
    jobs = world.admin.get(f"{API}/jobs").json()["items"]
    waiting = Counter((j["kind"], j["status"]) for j in jobs if j["status"] in QUEUED)
    exported = {
        (dict(labels)["kind"], dict(labels)["status"]): v
        for (name, labels), v in samples.items()
        if name == "narrate_jobs"
    }
    assert exported == waiting
    assert "narrate_jobs" in _scrape(world)[1]  # exported even when nothing waits


def test_database_figures_are_reused_for_the_cache_period(world: World) -> None:
    def open_alerts(collector: DatabaseCollector) -> float:
        family = next(f for f in collector.collect() if f.name == "narrate_alerts_open")
        return sum(s.value for s in family.samples if s.labels["deployment"] == world.watched)

    cached = DatabaseCollector(world.container, cache_s=3600)
    before = open_alerts(cached)
    assert before >= 1
    rule = {"deployment": world.watched, "kind": "latency_p95", "threshold": FIRES * 2}
    r = world.owner.post(f"{API}/alert-rules", json={**rule, "channels": [{"type": "in_app"}]})
    assert r.status_code == 201, r.text
    assert world.owner.post(f"{API}/alert-rules/{r.json()['rule_id']}/check").status_code == 200
    assert open_alerts(cached) == before
    assert open_alerts(DatabaseCollector(world.container, cache_s=0)) == before + 1
    time.sleep(0.01)
    cached.cache_s = 0.001  # the period has passed: the next scrape reads again
    assert open_alerts(cached) == before + 1


# --- the Grafana dashboards ---------------------------------------------------------------

_FUNCTIONS = {
    "abs", "avg", "avg_over_time", "bool", "by", "ceil", "clamp_max", "clamp_min", "count",
    "count_over_time", "delta", "deriv", "floor", "group_left", "group_right", "histogram_quantile",
    "idelta", "ignoring", "increase", "irate", "label_replace", "last_over_time", "max",
    "max_over_time", "min", "min_over_time", "offset", "on", "or", "and", "unless", "rate",
    "round", "scalar", "sort", "sort_desc", "sum", "sum_over_time", "time", "timestamp", "topk",
    "bottomk", "vector", "without", "le", "inf", "nan",
}  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]*?)\s*,\s*\w+\s*\)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers left after removing strings,
    label matchers, ranges, grouping clauses, Grafana variables, functions and keywords."""
    text = _LABEL_VALUES.sub(r" \1 ", expr)  # a variable's query: the label is no metric
    text = _STRINGS.sub(" ", text)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", " ", text)  # $__rate_interval, ${deployment}
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        after = text[match.end() :].lstrip()[:1]
        if word.lower() in _FUNCTIONS or (after == "(" and not word.startswith("narrate_")):
            continue
        if not re.fullmatch(r"\d+(\.\d+)?", word):
            names.add(word)
    return names


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"expr", "query"} and isinstance(value, str) and value.strip():
                yield value
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def test_the_tokenizer_finds_the_metric_names() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, deployment) (rate(narrate_prediction_request_seconds"
        '_bucket{deployment=~"$deployment"}[$__rate_interval]))) / on(deployment) '
        "group_left sum(narrate_predictions_total) > 0 or vector(0)"
    )
    assert metric_names(expr) == {
        "narrate_prediction_request_seconds_bucket",
        "narrate_predictions_total",
    }


def test_every_dashboard_query_names_an_exported_metric(world: World) -> None:
    _, exported = _scrape(world)
    files = sorted(DASHBOARDS.glob("*.json"))
    assert {f.name for f in files} >= {"narrate-overview.json", "narrate-model-health.json"}
    for path in files:
        dashboard = json.loads(path.read_text())
        assert any(i.get("name") == "DS_PROMETHEUS" for i in dashboard.get("__inputs", []))
        exprs = list(_expressions(dashboard.get("panels", [])))
        variables = dashboard.get("templating", {}).get("list", [])
        exprs += list(_expressions([v for v in variables if v.get("type") == "query"]))
        assert len(exprs) >= 5, path.name
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{path.name}: no metric in {expr!r}"
            unknown = names - exported
            assert not unknown, f"{path.name}: {sorted(unknown)} not exported (query {expr!r})"


def test_an_unreadable_database_keeps_the_scrape_answering(tmp_path: Path) -> None:
    container = build_container(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'narrate.db'}"), with_executor=False
    )
    try:
        collector = DatabaseCollector(container, cache_s=0)
        # No schema yet: every query fails; the scrape still answers and says so.
        families = {f.name: f for f in collector.collect()}
        assert list(families) == ["narrate_metrics_database_up"]
        assert families["narrate_metrics_database_up"].samples[0].value == 0
        container.db.upgrade()
        families = {f.name: f for f in collector.collect()}
        assert families["narrate_metrics_database_up"].samples[0].value == 1
        deployments = families["narrate_deployments"].samples
        assert {s.labels["status"]: s.value for s in deployments} == {"active": 0, "deleted": 0}
    finally:
        container.close()
