"""Prometheus metrics for operators read from the database at scrape time (drift, live
performance, jobs, alerts, deployments); the prediction counters of the serving process
are in :mod:`narrate.web.prediction_metrics`. docs/monitor.md lists them all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from narrate.bootstrap import Container
from narrate.errors import StorageUnavailable
from narrate.services.ops_metrics import OpsSnapshot, PsiCache, quantiles, read_snapshot

__all__ = ["DatabaseCollector", "database_registry"]

log = logging.getLogger(__name__)

_QUANTILES = (0.5, 0.95)


def _families(snap: OpsSnapshot) -> list[GaugeMetricFamily]:
    g = GaugeMetricFamily
    deployments = g("narrate_deployments", "Deployments by status.", labels=["status"])
    for status, n in sorted(snap.deployments.items()):
        deployments.add_metric([status], n)
    level = g(
        "narrate_drift_level",
        "Overall level of the deployment's newest drift report: 0 none, 1 low, 2 medium, 3 high.",
        labels=["deployment"],
    )
    age = g(
        "narrate_drift_report_age_seconds",
        "Seconds since the deployment's newest ready drift report was requested.",
        labels=["deployment"],
    )
    psi = g(
        "narrate_drift_psi",
        "PSI of an input column in the deployment's newest drift report (top 20 columns).",
        labels=["deployment", "column"],
    )
    for d in snap.drift:
        level.add_metric([d.deployment], d.level)
        age.add_metric([d.deployment], d.age_seconds)
        for column, value in d.psi:
            psi.add_metric([d.deployment, column], value)
    metric = g(
        "narrate_performance_metric",
        "Live metric of the last day's labelled predictions (as GET .../performance?window=1d"
        " shows for its newest window).",
        labels=["deployment", "metric"],
    )
    degraded = g(
        "narrate_performance_degraded",
        "1 when live performance dropped below the holdout baseline by more than "
        "NARRATE_PERFORMANCE_DROP, else 0.",
        labels=["deployment"],
    )
    for p in snap.performance:
        degraded.add_metric([p.deployment], float(p.degraded))
        for name, value in sorted(p.metrics.items()):
            metric.add_metric([p.deployment, name], value)
    return [deployments, level, age, psi, metric, degraded, *_job_families(snap)]


def _job_families(snap: OpsSnapshot) -> list[GaugeMetricFamily]:
    g = GaugeMetricFamily
    jobs = g(
        "narrate_jobs",
        "Jobs waiting or running (the queue depth), by kind.",
        labels=["kind", "status"],
    )
    for (kind, status), n in sorted(snap.jobs.items()):
        jobs.add_metric([kind, status], n)
    finished = g(
        "narrate_jobs_finished_last_hour",
        "Jobs that finished in the last hour, by kind and outcome.",
        labels=["kind", "status"],
    )
    for (kind, status), n in sorted(snap.jobs_finished.items()):
        finished.add_metric([kind, status], n)
    duration = g(
        "narrate_job_duration_seconds",
        "Median (quantile 0.5) and 95th percentile of the run time of jobs finished in the "
        "last hour, by kind.",
        labels=["kind", "quantile"],
    )
    for kind, values in sorted(snap.job_durations.items()):
        for q, value in quantiles(values, _QUANTILES):
            duration.add_metric([kind, str(q)], value)
    alerts = g(
        "narrate_alerts_open",
        "Alerts open (not acknowledged nor resolved), by deployment and severity.",
        labels=["deployment", "severity"],
    )
    for (deployment, severity), n in sorted(snap.alerts_open.items()):
        alerts.add_metric([deployment, severity], n)
    return [jobs, finished, duration, alerts]


class DatabaseCollector(Collector):
    """Reads :func:`read_snapshot` at most once per ``cache_s`` seconds.

    A custom collector holds no samples in the multiprocess folder: whichever process
    answers a scrape reads the database once, so the figures are never summed.
    """

    def __init__(self, container: Container, cache_s: float) -> None:
        self.container = container
        self.cache_s = cache_s
        self._lock = threading.Lock()  # scrapes only, never the predict path
        self._read_at = -float("inf")
        self._families: list[GaugeMetricFamily] = []
        self._psi: PsiCache = {}
        self._is_up = False

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The cached families, read again once they are older than ``cache_s``.

        When the database cannot be read, the last figures read are kept (the HTTP and
        prediction metrics must still be scraped) and ``narrate_metrics_database_up`` is 0.
        """
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_s:
                try:
                    snap = read_snapshot(self.container, psi_cache=self._psi)
                except StorageUnavailable as exc:
                    log.warning("database figures left out of /metrics: %s", exc.message)
                    self._is_up = False
                else:
                    self._families, self._is_up = _families(snap), True
                self._read_at = time.monotonic()
            families, is_up = self._families, self._is_up
        up = GaugeMetricFamily(
            "narrate_metrics_database_up",
            "1 when the last read of the database figures succeeded, else 0 (then the "
            "figures are the last ones read).",
            value=float(is_up),
        )
        yield from [up, *families]


def database_registry(app: FastAPI) -> CollectorRegistry:
    """The app's registry of database figures (made on the first scrape, then reused)."""
    found = getattr(app.state, "ops_db_registry", None)
    if found is None:
        container: Container = app.state.container
        found = CollectorRegistry()
        found.register(DatabaseCollector(container, container.settings.metrics_db_cache_s))
        app.state.ops_db_registry = found
    return found  # type: ignore[no-any-return]
