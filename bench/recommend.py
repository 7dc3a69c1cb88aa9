"""Benchmark: the assistant's dataset recommendations.

Times, on this machine:

- ``recommend_for_dataset`` alone (the rules over a stored profile) for each bundled
  sample and for a wide synthetic table (100,000 rows x 500 columns: numbers, skewed
  numbers, categories, gappy columns, IDs, dates);
- profiling that wide table for another target, which is what
  ``GET /datasets/{id}/recommendations?target=`` pays when the target differs from the
  dataset's (the stored profile is used otherwise).

Run ``python bench/recommend.py`` (writes bench/results/recommend.json); ``--quick`` uses
10,000 rows x 100 columns.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narrate.core.data.types import infer_types
from narrate.core.recommend import recommend_for_dataset
from narrate.services.profiles import build_profile

HERE = Path(__file__).parent
OUT = HERE / "results" / "recommend.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"
TARGETS = {"credit_data": "Status", "hitters": "Salary", "penguins": "species"}


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times) * 1000, 3)


def _wide(rows: int, columns: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    data: dict[str, Any] = {"target": rng.choice(["yes", "no"], size=rows, p=[0.1, 0.9])}
    for i in range(columns - 1):
        kind = i % 6
        if kind == 0:
            data[f"num_{i}"] = rng.normal(size=rows)
        elif kind == 1:
            data[f"skewed_{i}"] = rng.lognormal(sigma=1.5, size=rows)
        elif kind == 2:
            data[f"cat_{i}"] = rng.choice([f"c{j}" for j in range(80)], size=rows)
        elif kind == 3:
            values = rng.normal(size=rows)
            values[rng.random(rows) < 0.2] = np.nan
            data[f"gappy_{i}"] = values
        elif kind == 4:
            data[f"ref_{i}"] = [f"R{j:08d}" for j in rng.permutation(rows)]
        else:
            days = rng.integers(0, 3_000, size=rows)
            data[f"day_{i}"] = (np.datetime64("2015-01-01") + days).astype(str)
    return pl.DataFrame(data).fill_nan(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows, columns = (10_000, 100) if args.quick else (100_000, 500)
    results: dict[str, Any] = {"machine": platform.processor() or platform.machine()}
    samples = {}
    for name, target in TARGETS.items():
        frame, kinds = infer_types(pl.read_csv(SAMPLES / f"{name}.csv", infer_schema_length=0))
        profile = build_profile(frame, kinds, name=name, target=target)
        samples[name] = {
            "rules_ms": _best(lambda p=profile: recommend_for_dataset(p), 20),
            "items": len(recommend_for_dataset(profile)),
        }
    results["samples"] = samples
    frame, kinds = infer_types(_wide(rows, columns))
    start = time.perf_counter()
    profile = build_profile(frame, kinds, name="wide", target="target")
    profile_s = round(time.perf_counter() - start, 3)
    results["wide"] = {
        "rows": rows,
        "columns": columns,
        "rules_ms": _best(lambda: recommend_for_dataset(profile), 5),
        "items": len(recommend_for_dataset(profile)),
        "profile_for_another_target_s": profile_s,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
