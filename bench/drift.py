"""Benchmark: drift statistics on 1M vs 1M rows × 20 mixed columns, Narrate vs Evidently.

Generates a reference and a current table (10 numeric and 10 categorical columns; five of
them shifted in the current one, one with new categories and one with more missing
values), writes both as Parquet, then times on the same files:

- Narrate: :func:`narrate.core.monitor.drift.compute_drift` on the two Polars frames
  (every statistic: PSI, KL, Wasserstein, KS, χ², JS, missing and new-category rates),
  best and median of ``--repeat`` runs; reading the files is timed apart.
- Evidently: ``Report([DataDriftPreset()]).run(current, reference)`` on the same data
  read into pandas, in its own virtual environment ``bench/.venv-evidently`` (made by
  ``make bench``, or by this script with ``--install``), one run (it is slow).

The ratio is Evidently's seconds over Narrate's best; wall-clock and CPU seconds (of all
threads) are both reported, since on a shared machine the wall-clock follows the load
(the 1-minute load average is recorded at the start and the end). Run
``python bench/drift.py`` (writes bench/results/drift.json); ``--quick`` uses 100k rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narrate.core.monitor.drift import compute_drift

HERE = Path(__file__).parent
OUT = HERE / "results" / "drift.json"
EVIDENTLY = HERE / ".venv-evidently" / "bin" / "python"

_EVIDENTLY_SCRIPT = r"""
import json, sys, time
import pandas as pd
import evidently
from evidently import Report
from evidently.presets import DataDriftPreset

ref = pd.read_parquet(sys.argv[1])
cur = pd.read_parquet(sys.argv[2])
started, cpu = time.perf_counter(), time.process_time()
snapshot = Report([DataDriftPreset()]).run(cur, ref)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
drifted = []
for metric in snapshot.dict().get("metrics", []):
    name = str(metric.get("metric_name", ""))
    value = metric.get("value")
    if name.startswith("ValueDrift(") and isinstance(value, (int, float)):
        column = name[len("ValueDrift(column="):].split(",")[0]
        drifted.append([column, float(value)])
out = {"seconds": seconds, "cpu_seconds": cpu, "version": evidently.__version__}
print(json.dumps({**out, "values": drifted}))
"""


def make_tables(n: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reference and current tables: 10 numeric and 10 categorical columns."""
    rng = np.random.default_rng(seed)

    def table(shifted: bool) -> pl.DataFrame:
        columns: dict[str, Any] = {}
        for i in range(10):
            shift = 0.3 if shifted and i < 3 else 0.0
            if i % 2:
                columns[f"num_{i}"] = rng.normal(shift, 1.0 + i, n)
            else:
                columns[f"num_{i}"] = rng.integers(0, 100 + 10 * i, n) + int(shift * 30)
        for i in range(10):
            k = 5 + 3 * i
            weights = np.ones(k)
            if shifted and i < 2:
                weights[0] += 1.5
            names = [f"c{i}_{j}" for j in range(k)]
            if shifted and i == 2:
                names[-1] = f"c{i}_new"
            labels = np.asarray(names, dtype=object)[rng.choice(k, n, p=weights / weights.sum())]
            columns[f"cat_{i}"] = labels.tolist()
        frame = pl.DataFrame(columns)
        if shifted:
            mask = rng.random(n) < 0.1
            frame = frame.with_columns(
                pl.when(pl.Series(mask)).then(None).otherwise(pl.col("num_5")).alias("num_5")
            )
        return frame

    return table(False), table(True)


def time_narrate(ref_path: Path, cur_path: Path, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    ref, cur = pl.read_parquet(ref_path), pl.read_parquet(cur_path)
    read_s = time.perf_counter() - started
    runs, cpu, report = [], [], None
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = compute_drift(ref, cur)
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    assert report is not None
    return {
        "seconds_best": round(min(runs), 3),
        "seconds_median": round(statistics.median(runs), 3),
        "runs": [round(r, 3) for r in runs],
        "cpu_seconds_best": round(min(cpu), 3),
        "read_parquet_s": round(read_s, 3),
        "overall": report["overall"],
        "levels": {e["column"]: e["level"] for e in report["columns"]},
    }


def install_evidently() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY.parent.parent)], check=True)
    pip = EVIDENTLY.parent / "pip"
    subprocess.run([str(pip), "install", "--quiet", "evidently", "pandas<3", "pyarrow"], check=True)


def time_evidently(ref_path: Path, cur_path: Path) -> dict[str, Any]:
    if not EVIDENTLY.exists():
        return {"skipped": f"{EVIDENTLY} not found; run make bench or --install"}
    proc = subprocess.run(
        [str(EVIDENTLY), "-c", _EVIDENTLY_SCRIPT, str(ref_path), str(cur_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"failed": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["seconds"] = round(out["seconds"], 3)
    out["cpu_seconds"] = round(out["cpu_seconds"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="100k rows instead of 1M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--install", action="store_true", help="make bench/.venv-evidently")
    parser.add_argument("--no-evidently", action="store_true")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    if args.install and not EVIDENTLY.exists():
        install_evidently()
    with tempfile.TemporaryDirectory() as tmp:
        ref, cur = make_tables(n)
        ref_path, cur_path = Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"
        ref.write_parquet(ref_path)
        cur.write_parquet(cur_path)
        del ref, cur
        narrate = time_narrate(ref_path, cur_path, args.repeat)
        evidently = {} if args.no_evidently else time_evidently(ref_path, cur_path)
    result: dict[str, Any] = {
        "benchmark": "drift",
        "rows_reference": n,
        "rows_current": n,
        "columns": {"numeric": 10, "categorical": 10},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "narrate": narrate,
        "evidently": evidently,
        "goal": {"narrate_seconds_max": 6.0, "ratio_min": 20.0},
    }
    if evidently.get("seconds"):
        result["ratio_evidently_over_narrate"] = round(
            evidently["seconds"] / narrate["seconds_best"], 1
        )
        result["ratio_cpu_seconds"] = round(
            evidently["cpu_seconds"] / narrate["cpu_seconds_best"], 1
        )
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "narrate"}, indent=2)[:3000])
    print(f"narrate: {narrate['seconds_best']} s best of {args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
