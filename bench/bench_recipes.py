"""Benchmark recipe preview and full fit against equivalent hand-written pandas code.

Usage: python bench/bench_recipes.py --rows 1000000 --out bench/results/recipes.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from narrate.core.recipes import fit_recipe, preview_recipe

RECIPE: dict[str, Any] = {
    "steps": [
        {"step": "drop_missing", "columns": ["n0"], "how": "any"},
        {"step": "filter", "expression": "n1 > -2.5"},
        {"step": "derive", "name": "ratio", "expression": "n2 / (ABS(n3) + 1)"},
        {"step": "impute", "columns": ["n4", "n5"], "strategy": "median"},
        {"step": "scale", "columns": ["n6", "n7"], "method": "standard"},
        {"step": "encode", "columns": ["c0"], "method": "one_hot", "top_k": 10},
        {"step": "clip_outliers", "columns": ["n8"], "method": "iqr"},
        {"step": "bin", "columns": ["n9"], "method": "quantile", "n_bins": 5},
        {"step": "datetime_parts", "columns": ["d0"], "parts": ["year", "month", "weekday"]},
        {"step": "rare_categories", "columns": ["c1"], "min_share": 0.01},
    ]
}


def build_frame(rows: int, seed: int = 42) -> pl.DataFrame:
    """Return a rows × 20 frame: 10 numeric, 5 categorical, 1 date, 3 int, 1 target."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(10):
        values = rng.normal(size=rows) * (i + 1)
        values[rng.random(rows) < 0.05] = np.nan
        data[f"n{i}"] = values
    zipf = np.minimum(rng.zipf(1.6, size=rows), 200)
    for i in range(5):
        data[f"c{i}"] = np.char.add(f"cat{i}_", ((zipf + i) % 200).astype(str))
    start = np.datetime64("2015-01-01")
    data["d0"] = start + rng.integers(0, 3650, size=rows).astype("timedelta64[D]")
    for i in range(3):
        data[f"i{i}"] = rng.integers(0, 1000, size=rows)
    data["y"] = rng.integers(0, 2, size=rows)
    frame = pl.DataFrame(data)
    return frame.with_columns(pl.col(f"n{i}").fill_nan(None) for i in range(10))


def pandas_equivalent(df: pd.DataFrame) -> pd.DataFrame:
    """The same 10 steps written directly in pandas (fit and apply on one frame)."""
    df = df.dropna(subset=["n0"])
    df = df[df["n1"] > -2.5].copy()
    df["ratio"] = df["n2"] / (df["n3"].abs() + 1)
    for c in ("n4", "n5"):
        df[c] = df[c].fillna(df[c].median())
    for c in ("n6", "n7"):
        df[c] = (df[c] - df[c].mean()) / df[c].std(ddof=0)
    counts = df["c0"].value_counts()
    top = list(counts.index[:10])
    dummies = pd.get_dummies(df["c0"].where(df["c0"].isin(top), "other"), prefix="c0")
    df = pd.concat([df.drop(columns="c0"), dummies.astype("uint8")], axis=1)
    q1, q3 = df["n8"].quantile(0.25), df["n8"].quantile(0.75)
    spread = 1.5 * (q3 - q1)
    df["n8"] = df["n8"].clip(q1 - spread, q3 + spread)
    edges = np.quantile(df["n9"].dropna(), np.linspace(0, 1, 6)[1:-1])
    df["n9"] = pd.Series(np.searchsorted(edges, df["n9"], side="left"), index=df.index).where(
        df["n9"].notna()
    )
    d0 = pd.to_datetime(df["d0"])
    df["d0_year"], df["d0_month"], df["d0_weekday"] = d0.dt.year, d0.dt.month, d0.dt.weekday + 1
    df = df.drop(columns="d0")
    shares = df["c1"].value_counts(normalize=True)
    kept = set(shares[shares >= 0.01].index)
    df["c1"] = df["c1"].where(df["c1"].isin(kept) | df["c1"].isna(), "Other")
    return df


def timed(func: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    """Return the median and all wall times of ``runs`` calls, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/recipes.json"))
    parser.add_argument("--preview-runs", type=int, default=20)
    parser.add_argument("--fit-runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100k rows")
    args = parser.parse_args()
    if args.quick:
        args.rows = 100_000

    frame = build_frame(args.rows)
    pandas_frame = frame.to_pandas()
    preview_recipe(frame, RECIPE, sample_rows=10_000, seed=0)  # warm-up
    preview_median, preview_all = timed(
        lambda: preview_recipe(frame, RECIPE, sample_rows=10_000, seed=0), args.preview_runs
    )
    fit_median, fit_all = timed(lambda: fit_recipe(frame, RECIPE, seed=0), args.fit_runs)
    pandas_median, pandas_all = timed(lambda: pandas_equivalent(pandas_frame), args.fit_runs)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "columns": frame.width,
        "steps": len(RECIPE["steps"]),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "pandas": pd.__version__,
        "preview_10k_median_s": round(preview_median, 4),
        "preview_runs_s": [round(t, 4) for t in preview_all],
        "fit_full_median_s": round(fit_median, 4),
        "fit_runs_s": [round(t, 4) for t in fit_all],
        "pandas_full_median_s": round(pandas_median, 4),
        "pandas_runs_s": [round(t, 4) for t in pandas_all],
        "pandas_over_ours": round(pandas_median / fit_median, 2),
        "targets": {"preview_s": 0.15, "fit_full_s": 3.0},
        "meets_targets": preview_median <= 0.15 and fit_median <= 3.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
