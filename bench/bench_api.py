"""API request overhead against a real `narrate serve` process on loopback.

Measures /health/live and an authenticated list endpoint (GET /api/v1/jobs) with an
HTTP/1.1 keep-alive client at several concurrency levels: p50/p99 latency and requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serverproc import running_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(url: str, headers: dict[str, str], total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    per_worker = total // concurrency
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            for _ in range(per_worker):
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        await client.get(url)  # warm the connection and the route
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "api.json")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    total = 200 if args.quick else args.requests
    with running_server() as server:
        base = server.base_url
        auth = {"Authorization": f"Bearer {server.token}"}
        results: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}
        }
        for name, path, headers in (
            ("health_live", "/health/live", {}),
            ("jobs_list", "/api/v1/jobs", auth),
        ):
            results[name] = [asyncio.run(_load(base + path, headers, total, c)) for c in (1, 8, 32)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
