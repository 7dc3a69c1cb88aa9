"""Benchmark: one retrain run (policy ``refit``) on a deployment with many labelled predictions.

A small LightGBM model is trained on credit_data and deployed on a SQLite data dir; N
predictions with real credit_data inputs (rows drawn with replacement, answered over the
last 10 days) are written to its prediction log as the serving path logs them, and an
actual for each is recorded. Then, on this machine:

- ``labelled_log``: the log joined with its actuals (what a run reads first);
- ``score_window``: the champion scoring the evaluation window (30% of N) from the logged
  inputs, as a run scores each side;
- the whole run, queued by ``start_retrain`` and run inline: split, a new dataset version
  with the original rows plus 70% of N, the refit, both sides scored, the record.

Run ``python bench/retrain.py`` (writes bench/results/retrain.json); ``--quick`` uses
10,000 predictions instead of 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
OUT = HERE / "results" / "retrain.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"
TARGET = "Status"


def _run(n: int) -> dict[str, Any]:
    from narrate.bootstrap import build_container
    from narrate.config import load_settings
    from narrate.jobs.executors import InlineExecutor
    from narrate.services import actuals, datasets, deployments, training, users
    from narrate.services.actuals import deployment_target
    from narrate.services.datasets import Owner
    from narrate.services.prediction_log import PredictionLog, PredictionRecord
    from narrate.services.retrain import get_run, start_retrain
    from narrate.services.retrain_data import labelled_log, score_window
    from narrate.storage.sql.tables import Model, utcnow

    folder = Path(tempfile.mkdtemp(prefix="narrate-bench-retrain-"))
    settings = load_settings(data_dir=folder / "data", load_samples=False, job_warmup=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    try:
        container.db.upgrade()
        admin = users.create_user(container.db, "admin", "maple-anchor-123", "admin")
        owner = Owner(admin.id, True)
        dataset = datasets.ingest_file(
            container, admin.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
        )
        datasets.update_dataset(container, owner, dataset["id"], target=TARGET)
        options = {
            "time_budget_s": 20,
            "max_trials": 2,
            "families": ["lightgbm"],
            "ensembles": False,
        }
        model_id = training.start_training(container, owner, dataset["id"], options)["model_id"]
        with container.db.session() as s:
            model = s.get(Model, model_id)
            if model is None or model.current_version_id is None:
                raise SystemExit("training stored no model version")
            mv_id = model.current_version_id
        deployments.create_deployment(container, owner, name="bench", model_version_id=mv_id)
        deployment_id = actuals.deployment_id_for(container, owner, "bench")
        frame = pd.read_csv(SAMPLES / "credit_data.csv")
        rng = np.random.default_rng(0)
        picks = frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)
        truth = picks.pop(TARGET).astype(str).tolist()
        rows = [
            {k: (None if pd.isna(v) else v) for k, v in r.items()}
            for r in picks.to_dict(orient="records")
        ]
        ids = [uuid.uuid4().hex for _ in range(n)]
        now = utcnow()
        sink = PredictionLog(container.db, container.blobs, flush_interval_s=3600)
        sink.extend(
            PredictionRecord(
                prediction_id=pid,
                deployment_id=deployment_id,
                deployment_name="bench",
                model_version_id=mv_id,
                at=now - timedelta(seconds=int((n - i) * 864_000 / n)),
                latency_ms=1.0,
                caller="bench",
                arm="primary",
                inputs=rows[i],
                prediction="good",
                probabilities={"bad": 0.3, "good": 0.7},
            )
            for i, pid in enumerate(ids)
        )
        sink.flush()
        actuals.record_actuals(container, deployment_id, list(zip(ids, truth, strict=True)))
        out: dict[str, Any] = {}
        start = time.perf_counter()
        labelled = labelled_log(container, deployment_id)
        out["labelled_log_s"] = round(time.perf_counter() - start, 3)
        window = labelled.tail(int(0.3 * n))
        target = deployment_target(container, deployment_id)
        start = time.perf_counter()
        score_window(container, mv_id, window, target)
        out["score_window_s"] = round(time.perf_counter() - start, 3)
        out["window_rows"] = window.height
        start = time.perf_counter()
        started = start_retrain(container, owner, "bench")
        out["run_s"] = round(time.perf_counter() - start, 3)
        run = get_run(container, owner, str(started["created_id"]))
        if run["status"] != "awaiting_decision":
            raise SystemExit(f"the run did not finish: {run}")
        out.update(
            n_train_rows=run["n_train_rows"],
            n_eval_rows=run["n_eval_rows"],
            metric=run["metric"],
            narrative=run["narrative"]["text"],
        )
        return out
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 predictions, not 100,000")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    result = {
        "predictions": n,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg_start": os.getloadavg()[0],
        "services_sqlite": _run(n),
        "load_avg_end": os.getloadavg()[0],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
