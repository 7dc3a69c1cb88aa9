"""Benchmark: what the operations metrics cost.

- **Predict path**: the added work per predict request (two ``perf_counter`` calls and
  ``PredictionMetrics.observe``: two dict look-ups, the flag count, four additions to the
  thread's tally) in ns, against the same loop without it ("before"), for a 1-row and a
  100-row answer, and the move of the tallies into the Prometheus metrics (done once a
  second by a background thread and before a scrape) for 50 deployments; in one process
  and in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, as ``narrate serve
  --workers N`` does; run in a subprocess because prometheus_client picks its value class
  at import).
- **Scrape**: ``/metrics``'s database figures with 50 deployments on SQLite, each with a
  ready drift report of 30 columns and an open alert, 10 of them with 2,000 logged
  predictions and actuals in the last day, 200 jobs finished in the last hour and 10
  queued: a scrape when the cache has expired (every query, performance of 10
  deployments, blobs read once) and one within the cache period.

Run ``python bench/metrics.py`` (writes bench/results/metrics.json).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUT = HERE / "results" / "metrics.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"
LOOPS = 200_000


def _body(rows: int) -> dict[str, Any]:
    return {
        "arm": "primary",
        "predictions": [
            {"prediction_id": uuid.uuid4().hex, "prediction": "good", "flags": []}
            if i % 10
            else {"prediction_id": uuid.uuid4().hex, "prediction": "bad", "flags": ["x"]}
            for i in range(rows)
        ],
    }


def _per_request_ns(rows: int) -> dict[str, float]:
    """Median over 5 runs of LOOPS requests: ns per request before and after."""
    from prometheus_client import CollectorRegistry

    from narrate.web.prediction_metrics import PredictionMetrics

    metrics = PredictionMetrics(CollectorRegistry())
    body = _body(rows)
    clock = time.perf_counter

    def before() -> float:
        start = clock()
        for _ in range(LOOPS):
            pass
        return clock() - start

    def after() -> float:
        start = clock()
        for _ in range(LOOPS):
            started = clock()
            metrics.observe("bench", body, clock() - started)
        return clock() - start

    after()  # create the tallies
    b = statistics.median(before() for _ in range(5)) / LOOPS * 1e9
    a = statistics.median(after() for _ in range(5)) / LOOPS * 1e9
    flushes = []
    for _ in range(5):  # a second's worth of requests of 50 deployments, then the move
        for d in range(50):
            metrics.observe(f"d{d}", body, 0.002)
        start = clock()
        metrics.flush()
        flushes.append(clock() - start)
    direct = _direct_prometheus_ns(body)
    return {
        "direct_prometheus_ns": round(direct, 1),
        "before_ns": round(b, 1),
        "after_ns": round(a, 1),
        "added_ns": round(a - b, 1),
        "flush_50_deployments_us": round(statistics.median(flushes) * 1e6, 1),
    }


def _direct_prometheus_ns(body: dict[str, Any]) -> float:
    """The design not taken, for comparison: prometheus_client's inc() and observe() on
    every request (each takes a lock)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    rows = Counter("r", "r", ["deployment", "arm"], registry=registry).labels("b", "primary")
    flagged = Counter("f", "f", ["deployment"], registry=registry).labels("b")
    latency = Histogram("l", "l", ["deployment"], registry=registry).labels("b")
    clock = time.perf_counter

    def run() -> float:
        start = clock()
        for _ in range(LOOPS):
            started = clock()
            records = body["predictions"]
            rows.inc(len(records))
            n = sum(1 for r in records if r["flags"])
            if n:
                flagged.inc(n)
            latency.observe(clock() - started)
        return clock() - start

    return statistics.median(run() for _ in range(3)) / LOOPS * 1e9


def _predict_path() -> dict[str, Any]:
    return {"rows_1": _per_request_ns(1), "rows_100": _per_request_ns(100)}


def _predict_path_multiprocess() -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="narrate-bench-mp-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
    out = subprocess.run(
        [sys.executable, __file__, "--predict-path-only"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def _world(container: Any) -> None:
    """50 deployments with reports, alerts, jobs; 10 with logged predictions and actuals."""
    from narrate.services import alert_rules, datasets, deployments, models, training, users
    from narrate.services.datasets import Owner
    from narrate.services.prediction_log import PredictionLog, PredictionRecord
    from narrate.storage.sql.tables import Alert, DriftReport, Job, PredictionActual, utcnow

    admin = users.create_user(container.db, "admin", "maple-anchor-123", "admin")
    owner = Owner(admin.id, True)
    dataset = datasets.ingest_file(
        container, admin.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
    )
    datasets.update_dataset(container, owner, dataset["id"], target="Status")
    options = {"time_budget_s": 10, "max_trials": 2, "families": ["baseline", "linear"]}
    model_id = training.start_training(container, owner, dataset["id"], options)["model_id"]
    mv_id = models.get_model(container, owner, model_id)["versions"][0]["id"]
    now = utcnow()
    sink = PredictionLog(container.db, container.blobs, flush_interval_s=3600)
    report = {
        "columns": [{"column": f"c{j}", "psi": j / 100, "level": "low"} for j in range(30)],
        "overall": {"level": "medium"},
    }
    blob = container.blobs.put_bytes(json.dumps(report).encode())
    for i in range(50):
        d = deployments.create_deployment(
            container, owner, name=f"d{i:02d}", model_version_id=mv_id
        )
        spec = {"deployment": f"d{i:02d}", "kind": "latency_p95", "threshold": 5.0}
        rule = alert_rules.create_rule(container, owner, {**spec, "channels": [{"type": "in_app"}]})
        with container.db.session() as s:
            s.add(
                DriftReport(
                    owner_id=admin.id,
                    deployment_id=d["deployment_id"],
                    status="ready",
                    summary={"overall": {"level": "medium"}},
                    blob=blob,
                )
            )
            s.add(
                Alert(
                    owner_id=admin.id,
                    rule_id=rule["rule_id"],
                    deployment_id=d["deployment_id"],
                    kind="latency_p95",
                    severity="warning",
                )
            )
        if i < 10:
            ids = [uuid.uuid4().hex for _ in range(2000)]
            sink.extend(
                PredictionRecord(
                    prediction_id=pid,
                    deployment_id=d["deployment_id"],
                    deployment_name=f"d{i:02d}",
                    model_version_id=mv_id,
                    at=now - timedelta(seconds=10 + k * 30),
                    latency_ms=2.0,
                    caller="bench",
                    arm="primary",
                    inputs={},
                    prediction="good" if k % 3 else "bad",
                    probabilities={"bad": 0.3, "good": 0.7} if k % 3 else {"bad": 0.6, "good": 0.4},
                    flags=[],
                )
                for k, pid in enumerate(ids)
            )
            with container.db.session() as s:
                s.add_all(
                    PredictionActual(
                        owner_id=admin.id,
                        deployment_id=d["deployment_id"],
                        prediction_id=pid,
                        actual="good" if k % 4 else "bad",
                    )
                    for k, pid in enumerate(ids)
                )
    sink.flush()
    with container.db.session() as s:
        for k in range(210):
            done = k < 200
            s.add(
                Job(
                    owner_id=admin.id,
                    kind=("drift", "batch", "train")[k % 3],
                    status="succeeded" if done else "queued",
                    started_at=now - timedelta(minutes=30, seconds=k) if done else None,
                    finished_at=now - timedelta(minutes=30) if done else None,
                )
            )


def _scrape() -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, generate_latest

    from narrate.bootstrap import build_container
    from narrate.config import load_settings
    from narrate.jobs.executors import InlineExecutor
    from narrate.web.ops_metrics import DatabaseCollector

    folder = Path(tempfile.mkdtemp(prefix="narrate-bench-metrics-"))
    settings = load_settings(data_dir=folder / "data", load_samples=False, job_warmup=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    try:
        container.db.upgrade()
        _world(container)
        collector = DatabaseCollector(container, cache_s=30)
        registry = CollectorRegistry()
        registry.register(collector)
        cold = []
        for _ in range(3):
            collector._read_at = -float("inf")  # the cache period has passed
            start = time.perf_counter()
            text = generate_latest(registry)
            cold.append(time.perf_counter() - start)
        warm = []
        for _ in range(50):
            start = time.perf_counter()
            generate_latest(registry)
            warm.append(time.perf_counter() - start)
        lines = [line for line in text.decode().splitlines() if not line.startswith("#")]
        return {
            "deployments": 50,
            "with_actuals": 10,
            "scrape_cache_expired_s": round(statistics.median(cold), 3),
            "scrape_cache_expired_first_s": round(cold[0], 3),
            "scrape_cached_ms": round(statistics.median(warm) * 1000, 3),
            "samples": len(lines),
            "bytes": len(text),
        }
    finally:
        container.close()


def main() -> None:
    if "--predict-path-only" in sys.argv:
        print(json.dumps(_predict_path()))
        return
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "loops": LOOPS,
        "predict_path": _predict_path(),
        "predict_path_multiprocess": _predict_path_multiprocess(),
        "scrape_database_figures": _scrape(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
