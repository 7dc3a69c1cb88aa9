"""Benchmark: alert evaluation and delivery.

Times, on this machine, on a SQLite data dir with a small baseline model on credit_data
deployed and N predictions logged over the last 15 minutes (as the serving path logs
them):

- ``check_all`` over 20 enabled rules on that deployment (10 ``latency_p95``, 10
  ``error_rate``, 15-minute windows, in-app channel): every rule reads the window;
- one rule's check alone;
- one signed webhook delivery end to end (``deliver_alert``: the delivery row, the SSRF
  check and pin, the POST to a local receiver, the outcome recorded), median of 20;
- ``pin_url`` alone for an IP literal and for ``localhost`` (resolver included).

Run ``python bench/alerts.py`` (writes bench/results/alerts.json); ``--quick`` logs
10,000 predictions instead of 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUT = HERE / "results" / "alerts.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _deploy_with_log(container: Any, n: int) -> tuple[Any, str]:
    from narrate.services import datasets, deployments, models, training, users
    from narrate.services.datasets import Owner
    from narrate.services.prediction_log import PredictionLog, PredictionRecord
    from narrate.storage.sql.tables import utcnow

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
    now = utcnow()
    sink = PredictionLog(container.db, container.blobs, flush_interval_s=3600)
    sink.extend(
        PredictionRecord(
            prediction_id=uuid.uuid4().hex,
            deployment_id=d["deployment_id"],
            deployment_name="bench",
            model_version_id=mv_id,
            at=now - timedelta(milliseconds=int(i * 800_000 / n)),
            latency_ms=1.0 + (i % 97) / 10,
            caller="bench",
            arm="primary",
            inputs={},
            prediction="good",
            probabilities={"bad": 0.2, "good": 0.8},
            flags=["out_of_range:Income"] if i % 50 == 0 else [],
        )
        for i in range(n)
    )
    sink.flush()
    return owner, d["deployment_id"]


def _services(n: int) -> dict[str, Any]:
    from narrate.bootstrap import build_container
    from narrate.config import load_settings
    from narrate.jobs.executors import InlineExecutor
    from narrate.services import alert_delivery, alert_rules, alerts
    from narrate.services.url_guard import pin_url
    from narrate.storage.sql.tables import Alert

    folder = Path(tempfile.mkdtemp(prefix="narrate-bench-alerts-"))
    settings = load_settings(
        data_dir=folder / "data",
        load_samples=False,
        job_warmup=False,
        webhook_allow_private=True,
        webhook_max_attempts=1,
    )
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        container.db.upgrade()
        owner, _ = _deploy_with_log(container, n)
        rule_ids = []
        for i in range(20):
            kind, threshold = ("latency_p95", 5.0) if i % 2 else ("error_rate", 0.01)
            spec = {
                "deployment": "bench",
                "kind": kind,
                "threshold": threshold,
                "channels": [{"type": "in_app"}],
            }
            rule_ids.append(alert_rules.create_rule(container, owner, spec)["rule_id"])
        out: dict[str, Any] = {}
        out["check_all_20_rules_s"] = round(_timed(lambda: alerts.check_all(container)), 3)
        out["check_one_rule_s"] = round(
            _timed(lambda: alerts.check_rule(container, owner, rule_ids[0])), 3
        )
        hook = alert_rules.create_rule(
            container,
            owner,
            {
                "deployment": "bench",
                "kind": "latency_p95",
                "threshold": 5.0,
                "channels": [{"type": "webhook", "url": url, "secret": "bench secret 123"}],
            },
        )
        alert_id = alerts.check_rule(container, owner, hook["rule_id"])["alert_id"]
        alert_delivery.close_dispatcher(container)
        times = [
            _timed(lambda: alert_delivery.deliver_alert(container, alert_id)) for _ in range(20)
        ]
        out["webhook_delivery_median_ms"] = round(statistics.median(times) * 1000, 2)
        with container.db.session() as s:
            alert = s.get(Alert, alert_id)
            out["alert_count"] = alert.count if alert is not None else None
        literal = [_timed(lambda: pin_url(url, allow_private=True)) for _ in range(200)]
        named = [
            _timed(lambda: pin_url("http://localhost/x", allow_private=True)) for _ in range(200)
        ]
        out["pin_url_literal_us"] = round(statistics.median(literal) * 1e6, 1)
        out["pin_url_localhost_us"] = round(statistics.median(named) * 1e6, 1)
        return out
    finally:
        receiver.shutdown()
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 rows instead of 100,000")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    result = {
        "logged_predictions": n,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1m": round(os.getloadavg()[0], 2),
        **_services(n),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
