"""Benchmark: actuals and live performance at the request limit (100,000 actuals).

Times, on this machine:

- ``compute_metrics`` alone (every metric and its 95% interval: Wilson for accuracy, a
  200-resample bootstrap for the rest) on 100,000 labelled binary, multiclass (3 classes)
  and regression predictions;
- the services end to end on a SQLite data dir: a small baseline model on credit_data is
  trained and deployed, 100,000 predictions are written to its prediction log (as the
  serving path logs them), then ``record_actuals`` with 100,000 actuals (check, match
  against the log, insert in one transaction), the same again (every one replaces, with
  a record), and ``deployment_performance`` over those 100,000 labelled predictions.

Run ``python bench/actuals.py`` (writes bench/results/actuals.json); ``--quick`` uses
10,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from narrate.core.monitor.performance import Labelled, compute_metrics

HERE = Path(__file__).parent
OUT = HERE / "results" / "actuals.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 3)


def _core(n: int, repeat: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    labels = np.asarray(["bad", "good"], dtype=object)
    binary = Labelled(
        "binary",
        labels[y],
        labels[(p >= 0.5).astype(int)],
        np.column_stack([1 - p, p]),
        ("bad", "good"),
        "good",
    )
    classes = ("a", "b", "c")
    proba = rng.dirichlet([1, 1, 1], n)
    names = np.asarray(classes, dtype=object)
    multi = Labelled(
        "multiclass", names[rng.integers(0, 3, n)], names[proba.argmax(axis=1)], proba, classes
    )
    truth = rng.normal(0, 1, n)
    regression = Labelled("regression", truth, truth + rng.normal(0, 0.5, n))
    return {
        f"{name}_s": _best(lambda data=data: compute_metrics(data), repeat)
        for name, data in (("binary", binary), ("multiclass", multi), ("regression", regression))
    }


def _services(n: int) -> dict[str, Any]:
    from narrate.bootstrap import build_container
    from narrate.config import load_settings
    from narrate.jobs.executors import InlineExecutor
    from narrate.services import actuals, datasets, deployments, models, training, users
    from narrate.services.datasets import Owner
    from narrate.services.performance import deployment_performance
    from narrate.services.prediction_log import PredictionLog, PredictionRecord
    from narrate.storage.sql.tables import utcnow

    folder = Path(tempfile.mkdtemp(prefix="narrate-bench-actuals-"))
    settings = load_settings(data_dir=folder / "data", load_samples=False, job_warmup=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    try:
        container.db.upgrade()
        admin = users.create_user(container.db, "admin", "maple-anchor-123", "admin")
        owner = Owner(admin.id, True)
        dataset = datasets.ingest_file(
            container,
            admin.id,
            SAMPLES / "credit_data.csv",
            filename="credit_data.csv",
            target="Status",
        )
        options = {"time_budget_s": 10, "max_trials": 2, "families": ["baseline", "linear"]}
        model_id = training.start_training(container, owner, dataset["id"], options)["model_id"]
        mv_id = models.get_model(container, owner, model_id)["versions"][0]["id"]
        d = deployments.create_deployment(container, owner, name="bench", model_version_id=mv_id)
        deployment_id = d["deployment_id"]
        rng = np.random.default_rng(0)
        ids = [uuid.uuid4().hex for _ in range(n)]
        now = utcnow()
        sink = PredictionLog(container.db, container.blobs, flush_interval_s=3600)
        probs = rng.uniform(0, 1, n)
        sink.extend(
            PredictionRecord(
                prediction_id=pid,
                deployment_id=deployment_id,
                deployment_name="bench",
                model_version_id=mv_id,
                at=now - timedelta(seconds=int(i % 3600)),
                latency_ms=1.0,
                caller="bench",
                arm="primary",
                inputs={},
                prediction="good" if probs[i] >= 0.5 else "bad",
                probabilities={"bad": float(1 - probs[i]), "good": float(probs[i])},
            )
            for i, pid in enumerate(ids)
        )
        sink.flush()
        truth = np.where(rng.uniform(0, 1, n) < probs, "good", "bad").tolist()
        items = list(zip(ids, truth, strict=True))
        out: dict[str, Any] = {}
        start = time.perf_counter()
        first = actuals.record_actuals(container, deployment_id, items)
        out["record_new_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        second = actuals.record_actuals(container, deployment_id, items)
        out["record_replace_s"] = round(time.perf_counter() - start, 3)
        if first["matched"] != n or second["replaced"] != n:
            raise SystemExit(f"unexpected counts: {first}, {second}")
        start = time.perf_counter()
        perf = deployment_performance(container, owner, "bench", window="1d")
        out["performance_s"] = round(time.perf_counter() - start, 3)
        out["labelled"] = perf["labelled"]
        start = time.perf_counter()
        deployment_performance(container, owner, "bench", window="1d", by="version")
        out["performance_by_version_s"] = round(time.perf_counter() - start, 3)
        return out
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 rows instead of 100,000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    result = {
        "rows": n,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg_start": os.getloadavg()[0],
        "compute_metrics": _core(n, args.repeat),
        "services_sqlite": _services(n),
        "load_avg_end": os.getloadavg()[0],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
