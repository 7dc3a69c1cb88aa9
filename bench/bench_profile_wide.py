"""Benchmark: read, type and profile wide CSV files (1k, 5k, 10k columns x 100 rows).

A wide file once took the service down: profiling was quadratic in the column count
(security review, issue 12). This times each stage so a regression shows up.

Run ``python bench/bench_profile_wide.py`` or ``make bench`` (writes
bench/results/profile_wide.json); ``--columns 1000 5000`` picks the widths. The column
limit is lifted for the 10k run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "wide_csv"]

ROWS = 100
SEED = 12
OUT = Path(__file__).parent / "results" / "profile_wide.json"


def wide_csv(path: Path, columns: int, rows: int = ROWS, *, seed: int = SEED) -> None:
    """Write a ``rows`` x ``columns`` CSV: integers, floats, categories and text in turn."""
    rng = np.random.default_rng(seed)
    cells = []
    for index in range(columns):
        match index % 4:
            case 0:
                values = rng.integers(0, 1_000, rows).astype(str)
            case 1:
                values = rng.normal(50, 10, rows).round(3).astype(str)
            case 2:
                values = rng.choice(["red", "green", "blue"], rows)
            case _:
                values = np.char.add("item-", rng.integers(0, 10_000, rows).astype(str))
        cells.append(values)
    table = np.stack(cells, axis=1)
    header = ",".join(f"col_{i}" for i in range(columns))
    body = "\n".join(",".join(row) for row in table)
    path.write_text(header + "\n" + body + "\n", encoding="utf-8")


def _measure(path: Path, columns: int) -> dict[str, Any]:
    from narrate.core.data.limits import ReadLimits
    from narrate.core.data.readers import read_table
    from narrate.core.data.types import infer_types
    from narrate.services.profiles import build_profile

    stages: dict[str, float] = {}
    cpu: dict[str, float] = {}
    start = time.perf_counter()

    def timed(stage: str, work: Any) -> Any:
        # Wall time and CPU time (all threads): on a shared, loaded machine the CPU
        # time is the steadier measure of the work done.
        wall, used = time.perf_counter(), time.process_time()
        value = work()
        stages[stage] = round(time.perf_counter() - wall, 3)
        cpu[stage] = round(time.process_time() - used, 3)
        return value

    limits = ReadLimits(max_columns=columns)
    read = timed("read_table", lambda: read_table(path, filename=path.name, limits=limits))
    frame, kinds = timed("infer_types", lambda: infer_types(read.frame, in_place=True))
    profile = timed("build_profile", lambda: build_profile(frame, kinds, name="wide", target=None))
    size = timed("profile_json", lambda: len(json.dumps(profile, allow_nan=False)))
    return {
        "columns": columns,
        "rows": frame.height,
        "seconds": round(time.perf_counter() - start, 3),
        "stages": stages,
        "cpu_seconds": cpu,
        "profile_json_bytes": size,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> None:
    """Time each width and write the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--columns", type=int, nargs="+", default=[1_000, 5_000, 10_000])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="1k and 2k columns only")
    args = parser.parse_args(argv)
    if args.quick:
        args.columns = [1_000, 2_000]
    runs = []
    with tempfile.TemporaryDirectory(prefix="narrate-bench-") as tmp:
        for columns in args.columns:
            path = Path(tmp) / f"wide_{columns}.csv"
            wide_csv(path, columns)
            run = _measure(path, columns)
            print(json.dumps(run), file=sys.stderr)
            runs.append(run)
    result = {
        "benchmark": "profile_wide",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
