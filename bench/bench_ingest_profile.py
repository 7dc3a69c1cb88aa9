"""Benchmark: ingest + profile of a large mixed-type CSV, optionally against ydata-profiling.

Run ``python bench/bench_ingest_profile.py --rows 1000000 --out bench/results/ingest_profile.json``.
Each measured pipeline runs in a fresh child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["generate_csv", "main"]

SEED = 20240607
YDATA_BUDGET_SECONDS = 300.0


def _comments(rng: np.random.Generator, words: np.ndarray[Any, Any], rows: int) -> pl.Series:
    parts = [pl.Series(words[rng.integers(0, len(words), rows)]) for _ in range(6)]
    numbers = pl.Series(np.arange(rows)).cast(pl.String)
    frame = pl.DataFrame({f"w{i}": part for i, part in enumerate(parts)} | {"n": numbers})
    return frame.select(
        pl.concat_str([*[pl.col(f"w{i}") for i in range(6)], "#" + pl.col("n")], separator=" ")
    ).to_series()


def generate_csv(path: Path, rows: int, *, seed: int = SEED) -> None:
    """Write a ``rows`` x 20 mixed-type CSV with a fixed seed."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2015-01-01")
    days = rng.integers(0, 3000, rows)
    seconds = rng.integers(0, 86_400 * 3000, rows)
    words = np.array(["good", "slow", "price", "support", "great", "issue", "app", "bill"])
    income = rng.lognormal(10.5, 0.6, rows).round(2)
    income_missing = rng.random(rows) < 0.08
    discount = rng.uniform(0, 0.3, rows).round(3)
    frame = pl.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1) + 100_000,
            "age": rng.integers(18, 90, rows),
            "income": pl.Series(income).set(pl.Series(income_missing), None),
            "score": rng.normal(600, 80, rows).round(1),
            "balance": rng.exponential(2000, rows).round(2),
            "tenure_months": rng.integers(0, 120, rows),
            "plan": rng.choice(
                ["basic", "plus", "premium", "family"], rows, p=[0.5, 0.3, 0.15, 0.05]
            ),
            "region": rng.choice(["north", "south", "east", "west", "central"], rows),
            "city": np.char.add("city_", rng.integers(0, 400, rows).astype(str)),
            "signup_date": (start + days).astype(str),
            "last_login": (np.datetime64("2015-01-01T00:00:00") + seconds).astype(str),
            "comment": [" ".join(words[rng.integers(0, 8, 6)]) + f" #{i}" for i in range(rows)],
            "is_active": rng.choice(["true", "false"], rows),
            "rating": rng.integers(1, 6, rows),
            "price": rng.gamma(2.0, 30.0, rows).round(2),
            "discount": pl.Series(discount).set(pl.Series(rng.random(rows) < 0.3), None),
            "visits": rng.poisson(4, rows),
            "device": rng.choice(["ios", "android", "web"], rows),
            "temperature": rng.normal(20, 5, rows).round(2),
            "churn": rng.choice(["Yes", "No"], rows, p=[0.27, 0.73]),
        }
    )
    frame.write_csv(path)


def _measure_narrate(csv: Path) -> dict[str, Any]:
    """Run in a fresh child: time each stage of the pipeline and report peak RSS."""
    from narrate.core.data.pii import detect_pii
    from narrate.core.data.profile import profile_frame
    from narrate.core.data.quality import find_warnings
    from narrate.core.data.readers import read_table
    from narrate.core.data.types import infer_types

    timings: dict[str, float] = {}
    start = time.perf_counter()
    read = read_table(csv, filename=csv.name)
    timings["read_table"] = time.perf_counter() - start
    mark = time.perf_counter()
    frame, kinds = infer_types(read.frame, in_place=True)
    timings["infer_types"] = time.perf_counter() - mark
    mark = time.perf_counter()
    profile = profile_frame(frame, kinds, target="churn")
    timings["profile_frame"] = time.perf_counter() - mark
    mark = time.perf_counter()
    pii = detect_pii(frame, kinds)
    timings["detect_pii"] = time.perf_counter() - mark
    mark = time.perf_counter()
    warnings = find_warnings(profile, target="churn", pii=pii)
    timings["find_warnings"] = time.perf_counter() - mark
    total = time.perf_counter() - start
    json.dumps(profile, allow_nan=False)
    return {
        "seconds": round(total, 3),
        "stages": {name: round(value, 3) for name, value in timings.items()},
        "rows": frame.height,
        "columns": frame.width,
        "warnings": len(warnings),
        "sampled_rows": profile["table"]["sampled_rows"],
        "peak_rss_mb": _peak_rss_mb(),
    }


def _measure_ydata(csv: Path) -> dict[str, Any]:
    """Run in a fresh child: ydata-profiling minimal report, as its users would run it."""
    import pandas as pd
    from ydata_profiling import ProfileReport

    start = time.perf_counter()
    frame = pd.read_csv(csv)
    read_seconds = time.perf_counter() - start
    ProfileReport(frame, minimal=True, progress_bar=False).to_json()
    total = time.perf_counter() - start
    return {
        "seconds": round(total, 3),
        "read_seconds": round(read_seconds, 3),
        "rows": len(frame),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    # On Linux ru_maxrss survives fork+exec (the child starts with the parent's peak), so
    # prefer the kernel's high-water mark of this process image.
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child(mode: str, csv: Path, python: str, timeout: float) -> dict[str, Any]:
    command = [python, "-W", "ignore", str(Path(__file__).resolve()), "--child", mode, str(csv)]
    env = dict(os.environ)
    if mode == "narrate":
        # This script imports polars before narrate (and polars writes its own defaults
        # into the variable), so hand the child the allocator setting that the CLI, the
        # server and the job workers get from importing narrate first.
        from narrate import JEMALLOC_CONF

        env["_RJEM_MALLOC_CONF"] = JEMALLOC_CONF
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ydata_python(requested: str | None) -> str | None:
    candidates = [requested] if requested else [sys.executable]
    for python in candidates:
        probe = subprocess.run(
            [python, "-W", "ignore", "-c", "import ydata_profiling"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return python
    return None


def _compare_ydata(
    directory: Path, rows: int, args: argparse.Namespace, ours_full: dict[str, Any]
) -> dict[str, Any]:
    """Probe ydata-profiling on a smaller file; run it on all rows if that fits the budget."""
    python = _ydata_python(args.ydata_python)
    if python is None:
        return {"skipped": "ydata_profiling is not importable"}
    full_csv = directory / f"bench_{rows}.csv"
    probe_rows = min(rows, args.ydata_rows)
    probe_csv = full_csv if probe_rows == rows else directory / f"bench_{probe_rows}.csv"
    if probe_rows != rows:
        generate_csv(probe_csv, probe_rows)
    probe = _child("ydata", probe_csv, python, args.ydata_timeout)
    estimate = probe["seconds"] * rows / probe_rows if "seconds" in probe else None
    if probe_rows != rows and estimate is not None and estimate <= args.ydata_timeout:
        full = _child("ydata", full_csv, python, 2 * args.ydata_timeout)
        if "seconds" in full:
            return _ratio(rows, full, ours_full, probe=probe)
    if probe_rows == rows:
        return _ratio(rows, probe, ours_full)
    ours = _child("narrate", probe_csv, sys.executable, 600)
    result = _ratio(probe_rows, probe, ours)
    if estimate is not None:
        result["ydata_seconds_scaled_to_full_rows"] = round(estimate, 1)
        result["note"] = (
            f"ydata-profiling would take about {estimate:,.0f} s on {rows:,} rows, over the "
            f"{args.ydata_timeout:.0f} s budget, so it ran on {probe_rows:,} rows and the ratio "
            "compares both tools at that size; the full-size time is a linear extrapolation."
        )
    return result


def _ratio(
    rows: int, ydata: dict[str, Any], ours: dict[str, Any], probe: dict[str, Any] | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"rows": rows, "ydata": ydata, "narrate_same_rows": ours}
    if probe is not None:
        result["ydata_probe"] = probe
    if "seconds" in ydata and "seconds" in ours:
        result["time_ratio_ydata_over_narrate"] = round(ydata["seconds"] / ours["seconds"], 2)
        result["rss_ratio_ydata_over_narrate"] = round(
            ydata["peak_rss_mb"] / ours["peak_rss_mb"], 2
        )
    return result


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run the measurements and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest_profile.json"))
    parser.add_argument("--ydata-rows", type=int, default=100_000)
    parser.add_argument("--ydata-timeout", type=float, default=YDATA_BUDGET_SECONDS)
    parser.add_argument(
        "--ydata-python",
        default=str(Path(".venv-ydata/bin/python"))
        if Path(".venv-ydata/bin/python").exists()
        else None,
        help="interpreter with ydata-profiling (make bench creates .venv-ydata)",
    )
    parser.add_argument("--quick", action="store_true", help="100k rows")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 100_000
    if args.child:
        mode, csv = args.child
        measure = _measure_narrate if mode == "narrate" else _measure_ydata
        print(json.dumps(measure(Path(csv))))
        return 0
    with tempfile.TemporaryDirectory(prefix="narrate-bench-") as scratch:
        directory = Path(scratch)
        csv = directory / f"bench_{args.rows}.csv"
        start = time.perf_counter()
        generate_csv(csv, args.rows)
        generated = time.perf_counter() - start
        ours = _child("narrate", csv, sys.executable, 600)
        results = {
            "benchmark": "ingest_profile",
            "rows": args.rows,
            "columns": 20,
            "file_mb": round(csv.stat().st_size / 2**20, 1),
            "generate_seconds": round(generated, 2),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "narrate": ours,
            "ydata_profiling": _compare_ydata(directory, args.rows, args, ours),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
