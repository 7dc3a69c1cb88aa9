"""Prediction counters of the serving process: rows answered per deployment and arm, rows
flagged, and predict latency per deployment.

The predict route is the hot path, and a prometheus_client increment takes a lock and
costs ~0.3-0.8 µs (a histogram observation twice that), so a request only adds to plain
numbers owned by its thread (:meth:`PredictionMetrics.observe`, no lock, no allocation
after the first request of a deployment and arm). The totals are moved into the
Prometheus counters and histogram:

- when this process answers a scrape (a collector registered first in the registry), and
- every :data:`FLUSH_S` seconds by one background thread per process, so in
  multiprocess mode (``narrate serve --workers N``) a scrape answered by another process
  sees this one's counts at most that late.
"""

from __future__ import annotations

import logging
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from operator import itemgetter
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["FLUSH_S", "LATENCY_BUCKETS", "PredictionMetrics"]

log = logging.getLogger(__name__)

FLUSH_S = 1.0
"""Seconds between two moves of the per-thread tallies into the Prometheus metrics."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_ROWS, _FLAGGED, _SUM, _BUCKETS = 0, 1, 2, 3
"""A tally: [rows, flagged rows, latency sum, then one count per bucket (+Inf last)]."""

_FLAGS = itemgetter("flags")

Tally = list[float]
Key = tuple[str, str]


class _FlushFirst(Collector):
    """Registered before the metrics, so a scrape of this registry sees every request."""

    def __init__(self, owner: PredictionMetrics) -> None:
        self.owner = weakref.ref(owner)

    def collect(self) -> Iterator[Metric]:
        owner = self.owner()
        if owner is not None:
            owner.flush()
        return iter(())


class PredictionMetrics:
    """``narrate_predictions_total``, ``narrate_prediction_flagged_total`` and
    ``narrate_prediction_request_seconds`` on an app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        registry.register(_FlushFirst(self))
        self.rows = Counter(
            "narrate_predictions",
            "Rows answered by a deployment's predict route, by arm (primary or canary).",
            ["deployment", "arm"],
            registry=registry,
        )
        self.flagged = Counter(
            "narrate_prediction_flagged",
            "Rows answered with at least one input flag (unseen category, out of range, "
            "missing value).",
            ["deployment"],
            registry=registry,
        )
        self.latency = Histogram(
            "narrate_prediction_request_seconds",
            "Time a deployment's predict route took to answer (checks, scoring, logging).",
            ["deployment"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        # thread id -> (deployment, arm) -> tally; only the owning thread writes a tally.
        self._threads: dict[int, dict[Key, Tally]] = {}
        # Per tally (by identity): what was already moved into the Prometheus metrics.
        self._moved: dict[int, tuple[Key, Tally, Tally]] = {}
        self._flush_lock = threading.Lock()  # between flushes only, never in observe()
        _Flusher.watch(self)

    def observe(self, deployment: str, body: dict[str, Any], seconds: float) -> None:
        """Count one answered predict request (``body`` is the answer being sent)."""
        ident = threading.get_ident()
        tallies = self._threads.get(ident)
        if tallies is None:
            tallies = self._threads[ident] = {}
        key = (deployment, body["arm"])
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = [0.0] * (_BUCKETS + len(LATENCY_BUCKETS) + 1)
        records = body["predictions"]
        if len(records) == 1:
            flagged = 1 if records[0]["flags"] else 0
        else:
            flagged = sum(map(bool, map(_FLAGS, records)))
        tally[_ROWS] += len(records)
        tally[_FLAGGED] += flagged
        tally[_SUM] += seconds
        tally[_BUCKETS + bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def flush(self) -> None:
        """Move what the threads counted since the last flush into the metrics."""
        with self._flush_lock:
            for tallies in list(self._threads.values()):
                for key, tally in list(tallies.items()):
                    self._move(key, tally)

    def _move(self, key: Key, tally: Tally) -> None:
        deployment, arm = key
        found = self._moved.get(id(tally))
        if found is None:
            found = self._moved[id(tally)] = (key, tally, [0.0] * len(tally))
            # Every series from the first request on, so rate() and ratios see zeros.
            self.rows.labels(deployment, arm)
            self.flagged.labels(deployment)
        _, _, moved = found
        now = list(tally)  # one copy; the owner may add meanwhile, the rest goes next time
        delta = [a - b for a, b in zip(now, moved, strict=True)]
        if not any(delta):
            return
        moved[:] = now
        if delta[_ROWS]:
            self.rows.labels(deployment, arm).inc(delta[_ROWS])
        if delta[_FLAGGED]:
            self.flagged.labels(deployment).inc(delta[_FLAGGED])
        child = self.latency.labels(deployment)
        # The histogram's own per-bucket values (observe() would cost one call per request).
        child._sum.inc(delta[_SUM])
        for i, n in enumerate(delta[_BUCKETS:]):
            if n:
                child._buckets[i].inc(n)


class _Flusher:
    """One daemon thread per process flushing every live :class:`PredictionMetrics`."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _watched: ClassVar[weakref.WeakSet[PredictionMetrics]] = weakref.WeakSet()
    _thread: ClassVar[threading.Thread | None] = None

    @classmethod
    def watch(cls, metrics: PredictionMetrics) -> None:
        with cls._lock:
            cls._watched.add(metrics)
            if cls._thread is None:
                cls._thread = threading.Thread(
                    target=cls._run, name="narrate-prediction-metrics", daemon=True
                )
                cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_S):
            for metrics in list(cls._watched):
                try:
                    metrics.flush()
                except Exception:  # keep flushing the others and later; say what failed
                    log.exception("could not move prediction counts into /metrics")
