"""The predict path's counters: tallies kept per thread without locks add up exactly, and
the latency histogram moved from them equals prometheus_client's own observe()."""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from narrate.web.prediction_metrics import LATENCY_BUCKETS, PredictionMetrics


def _body(arm: str, flags: list[bool]) -> dict[str, object]:
    return {"arm": arm, "predictions": [{"flags": ["x"] if f else []} for f in flags]}


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_threads_count_exactly_and_a_scrape_sees_every_request() -> None:
    registry = CollectorRegistry()
    metrics = PredictionMetrics(registry)
    per_thread, threads = 5_000, 4

    def serve(arm: str) -> None:
        for i in range(per_thread):
            metrics.observe("d", _body(arm, [i % 3 == 0, False]), 0.002)

    workers = [threading.Thread(target=serve, args=(a,)) for a in ["primary", "canary"] * 2]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    samples = _samples(registry)  # no explicit flush: the scrape flushes first
    for arm in ("primary", "canary"):
        key = ("narrate_predictions_total", (("arm", arm), ("deployment", "d")))
        assert samples[key] == 2 * per_thread * 2  # two threads per arm, two rows each
    flagged = sum(1 for i in range(per_thread) if i % 3 == 0) * threads
    assert samples[("narrate_prediction_flagged_total", (("deployment", "d"),))] == flagged
    count = ("narrate_prediction_request_seconds_count", (("deployment", "d"),))
    assert samples[count] == per_thread * threads
    # Counted once: a second scrape moves nothing again.
    assert _samples(registry)[count] == per_thread * threads


def test_histogram_equals_prometheus_observe() -> None:
    rng = random.Random(7)
    # Values on and around every bound (a value equal to a bound belongs to it).
    values = list(LATENCY_BUCKETS) + [rng.uniform(0, 12) for _ in range(2_000)]
    values += [rng.expovariate(200) for _ in range(2_000)]
    ours = CollectorRegistry()
    metrics = PredictionMetrics(ours)
    reference = CollectorRegistry()
    histogram = Histogram(
        "narrate_prediction_request_seconds",
        "reference",
        ["deployment"],
        registry=reference,
        buckets=LATENCY_BUCKETS,
    ).labels("d")
    for v in values:
        metrics.observe("d", _body("primary", [False]), v)
        histogram.observe(v)
        if rng.random() < 0.01:
            metrics.flush()  # moves in the middle change nothing
    got = {k: v for k, v in _samples(ours).items() if k[0].startswith("narrate_prediction_req")}
    want = _samples(reference)
    sums = [k for k in want if k[0].endswith("_sum")]
    assert {k: v for k, v in got.items() if k not in sums} == {
        k: v for k, v in want.items() if k not in sums
    }
    assert abs(got[sums[0]] - want[sums[0]]) < 1e-6
