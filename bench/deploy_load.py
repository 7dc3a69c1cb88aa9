"""Load generation and process measurement for the Deploy benchmark (bench/deploy.py).

Three ways to send the same JSON bodies to a prediction endpoint:

- :func:`sequential_latency`: one keep-alive ``http.client`` connection, one request at a
  time, so each latency is the server's answer time plus one loopback round trip.
- :func:`wrk_load`: ``wrk`` (C, one thread) with ``deploy_wrk.lua`` cycling the bodies over
  N keep-alive connections; it leaves the server most of this 2-core machine.
- :func:`python_load`: the same with asyncio + httpx, used only when ``wrk`` is missing
  (it takes far more CPU from the server, so its numbers are lower bounds).

:class:`TreeSampler` follows the resident memory and CPU time of a process and all its
descendants (the server's job workers are spawned children) by reading /proc.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "Endpoint",
    "TreeSampler",
    "load",
    "python_load",
    "sequential_latency",
    "tree_pids",
    "wrk_load",
]

HERE = Path(__file__).parent
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Endpoint:
    """A prediction URL, the headers it needs and one JSON body per request to cycle."""

    url: str
    bodies: list[bytes]
    headers: dict[str, str] = field(default_factory=dict)

    def all_headers(self) -> dict[str, str]:
        """The request headers including the JSON content type."""
        return {"Content-Type": "application/json", **self.headers}


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _summary_ms(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(latencies_s)
    return {
        "p50_ms": round(_percentile(values, 50) * 1000, 3),
        "p90_ms": round(_percentile(values, 90) * 1000, 3),
        "p95_ms": round(_percentile(values, 95) * 1000, 3),
        "p99_ms": round(_percentile(values, 99) * 1000, 3),
        "max_ms": round(values[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3),
    }


def sequential_latency(
    endpoint: Endpoint, requests: int, warmup: int, max_seconds: float = 30.0
) -> dict[str, Any]:
    """Send ``requests`` POSTs one after another on one keep-alive connection.

    Args:
        endpoint: Where to send and what.
        requests: Timed requests (after the warm-up), cycling through the bodies.
        warmup: Untimed requests first (imports, caches, the first prediction).
        max_seconds: Stop timing early after this long (a slow server answers fewer).

    Returns:
        Latency percentiles in ms, the request count, errors and the first error seen.
    """
    parts = urlsplit(endpoint.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = endpoint.all_headers()
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    bodies = endpoint.bodies
    deadline = None
    for i in range(warmup + requests):
        if i == warmup:
            deadline = time.perf_counter() + max_seconds
        elif deadline is not None and time.perf_counter() > deadline:
            break
        body = bodies[i % len(bodies)]
        started = time.perf_counter()
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 and i == 0:
            raise RuntimeError(f"{endpoint.url} refused the first row: {payload[:1000]!r}")
        if response.status != 200:
            errors += 1
            first_error = first_error or f"{response.status}: {payload[:300]!r}"
        if i >= warmup:
            latencies.append(elapsed)
    conn.close()
    return {
        "requests": len(latencies),
        "warmup": warmup,
        "errors": errors,
        "first_error": first_error,
        **_summary_ms(latencies),
    }


def wrk_load(endpoint: Endpoint, clients: int, seconds: float) -> dict[str, Any]:
    """Drive the endpoint with ``wrk`` over ``clients`` keep-alive connections.

    Args:
        endpoint: Where to send and what (the bodies go to a temp file the Lua script reads).
        clients: Concurrent connections.
        seconds: How long to send for.

    Returns:
        Requests/s, latency percentiles in ms and the error counts wrk reports (non-2xx
        answers count as ``status`` errors, no answer within 10 s as ``timeout``).
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    bodies_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"deploy-bodies-{os.getpid()}.jsonl"
    bodies_file.write_bytes(b"\n".join(endpoint.bodies) + b"\n")
    auth = endpoint.headers.get("Authorization", "")
    cmd = [
        wrk,
        "-t1",  # one C thread saturates a Python server; more would take its CPU
        f"-c{clients}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "deploy_wrk.lua"),
        endpoint.url,
        "--",
        str(bodies_file),
        auth,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    finally:
        bodies_file.unlink(missing_ok=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    duration_s = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "tool": "wrk",
        "clients": clients,
        "seconds": round(duration_s, 2),
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / duration_s, 1),
        "errors": sum(raw["errors"].values()),
        "error_kinds": raw["errors"],
        **{f"{k}_ms": round(v / 1000, 3) for k, v in lat.items()},
    }


async def _python_load(endpoint: Endpoint, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = endpoint.all_headers()
    async with httpx.AsyncClient(limits=limits, timeout=10, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                body = endpoint.bodies[i % len(endpoint.bodies)]
                i += clients
                started = time.perf_counter()
                try:
                    response = await client.post(endpoint.url, content=body)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "tool": "python-httpx",
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
        **_summary_ms(latencies),
    }


def python_load(endpoint: Endpoint, clients: int, seconds: float) -> dict[str, Any]:
    """Like :func:`wrk_load` with an asyncio/httpx client (fallback when wrk is missing)."""
    return asyncio.run(_python_load(endpoint, clients, seconds))


def load(endpoint: Endpoint, clients: int, seconds: float) -> dict[str, Any]:
    """Concurrent load with wrk when installed, else with the Python client."""
    if shutil.which("wrk"):
        return wrk_load(endpoint, clients, seconds)
    return python_load(endpoint, clients, seconds)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    return text.rsplit(")", 1)[1].split()


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] not in {"Z", "X"}:
                parents[int(entry.name)] = int(fields[1])
    found = [root]
    frontier = [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found.extend(children)
        frontier = children
    return found


def _rss_and_cpu(pid: int) -> tuple[int, float]:
    """Resident memory (KB) and CPU seconds used so far by one process (0s when gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0, 0.0
    # fields[0] is state (field 3 of stat); utime/stime are fields 14/15, rss is 24
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return int(fields[21]) * _PAGE_KB, cpu


class TreeSampler:
    """Samples a process tree's resident memory (and CPU time) in a background thread."""

    def __init__(self, root: int, interval_s: float = 0.05) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_total_kb = 0
        self.peak_process_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snapshot(self) -> tuple[int, float]:
        """Total resident KB and total CPU seconds of the tree right now."""
        total_kb, total_cpu = 0, 0.0
        for pid in tree_pids(self.root):
            kb, cpu = _rss_and_cpu(pid)
            total_kb += kb
            total_cpu += cpu
        return total_kb, total_cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in tree_pids(self.root):
                kb, _ = _rss_and_cpu(pid)
                total += kb
                self.peak_process_kb = max(self.peak_process_kb, kb)
            self.peak_total_kb = max(self.peak_total_kb, total)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
