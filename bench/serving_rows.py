"""Benchmark: scoring raw rows with a serving model, the pandas path against the NumPy path.

Usage: ``python bench/serving_rows.py [--quick] [--out PATH]``; writes
``bench/results/serving_rows.json``.

Models are trained on credit_data (binary) as Narrate's upload types it, exported to the
serving format and loaded back, as Deploy loads them. For each model family:

- *One row* (p50/p99 over many calls, in ms): the pandas path (what ``predict_proba``
  did before the NumPy path: every step on a DataFrame), ``predict_output`` on a one-row
  DataFrame, and what a predict request does: :func:`check_rows` on one JSON row, then
  ``predict_output`` on its columns (target: ~0.2 ms or less for gradient boosting).
- *Many rows* (rows/s of wall time and per CPU-second, best of three): 100,000 rows
  through the pandas path, ``predict_output`` on a DataFrame and on :func:`check_rows`
  columns, and :func:`check_rows` then ``predict_output`` from 100,000 JSON rows
  (target: >= 200,000 rows/s).

The machine has two cores shared with other work: the load average before and after is
recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from narrate.core.automl import CandidateSpec, build_pipeline
from narrate.core.automl.ensembles import build_ensemble
from narrate.core.automl.export import export_serving
from narrate.core.data.types import infer_types
from narrate.core.serving import ServingModel, load_serving, save_serving
from narrate.core.signature import build_signature, check_rows

HERE = Path(__file__).parent
SAMPLE = HERE.parent / "src" / "narrate" / "samples" / "credit_data.csv"
FAMILIES: dict[str, dict[str, Any]] = {
    "lightgbm": {"n_estimators": 100},
    "xgboost": {"n_estimators": 100, "max_depth": 6},
    "hist_gradient_boosting": {"max_iter": 100},
    "random_forest": {"n_estimators": 100, "min_samples_leaf": 3},
    "linear": {},
}


def _uploaded() -> pd.DataFrame:
    typed, _ = infer_types(pl.read_csv(SAMPLE, infer_schema_length=0))
    return typed.to_pandas()


def _fit(family: str, X: pd.DataFrame, y: pd.Series) -> Any:
    if family == "soft_voting":
        members = [
            (f, build_pipeline(CandidateSpec(f, dict(FAMILIES[f])), "binary", seed=0))
            for f in ("lightgbm", "xgboost", "linear")
        ]
        return build_ensemble("soft_voting", members, task="binary", n_folds=3, seed=0).fit(X, y)
    return build_pipeline(CandidateSpec(family, dict(FAMILIES[family])), "binary", seed=0).fit(X, y)


def _serving(model: Any, X: pd.DataFrame, folder: Path) -> ServingModel:
    manifest, arrays = export_serving(model, X.head(300), task="binary")
    return load_serving(save_serving(manifest, arrays, folder / "model.serving"))


def _latency(call: Callable[[], Any], n: int) -> dict[str, float]:
    for _ in range(max(3, n // 20)):
        call()  # warm caches and lazy imports
    times, cpu = [], []
    for _ in range(n):
        started, used = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times) * 1000, 4),
        "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 4),
        # CPU time is less swayed by other work on a shared machine than wall time.
        "cpu_p50_ms": round(statistics.median(cpu) * 1000, 4),
    }


def _rate(call: Callable[[], Any], rows: int) -> dict[str, int]:
    runs = [_seconds(call) for _ in range(3)]
    return {
        "wall": round(rows / min(wall for wall, _ in runs)),
        "cpu": round(rows / min(cpu for _, cpu in runs)),  # rows per CPU-second, all threads
    }


def _seconds(call: Callable[[], Any]) -> tuple[float, float]:
    started, used = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - started, time.process_time() - used


def _one_family(family: str, data: dict[str, Any], folder: Path, calls: int) -> dict[str, Any]:
    X, y, test, big, records, big_records = (
        data[k] for k in ("X", "y", "test", "big", "records", "big_records")
    )
    model = _serving(_fit(family, X, y), X, folder)
    signature = build_signature(X, model.columns)
    row, one = test.head(1), records[:1]
    checked = check_rows(signature, big_records)
    same = np.allclose(model.predict_output(checked.columns), model._pandas_output(big), atol=1e-9)
    return {
        "same_as_pandas_path": bool(same),
        "one_row": {
            "pandas_path": _latency(lambda: model._pandas_output(row), max(50, calls // 10)),
            "predict_output_frame": _latency(lambda: model.predict_output(row), calls),
            "check_rows_then_predict": _latency(
                lambda: model.predict_output(check_rows(signature, one).columns), calls
            ),
            "check_rows": _latency(lambda: check_rows(signature, one), calls),
        },
        "rows_per_s": {
            "pandas_path": _rate(lambda: model._pandas_output(big), len(big)),
            "predict_output_frame": _rate(lambda: model.predict_output(big), len(big)),
            "predict_output_columns": _rate(
                lambda: model.predict_output(checked.columns), len(big)
            ),
            "check_rows_then_predict": _rate(
                lambda: model.predict_output(check_rows(signature, big_records).columns),
                len(big),
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serving_rows.json")
    parser.add_argument("--quick", action="store_true", help="fewer calls and rows")
    args = parser.parse_args()
    calls, n_big = (200, 20_000) if args.quick else (2_000, 100_000)
    frame = _uploaded().dropna(subset=["Status"]).reset_index(drop=True)
    test = frame.sample(frac=0.25, random_state=0)
    train = frame.drop(index=test.index)
    X, y, test = train.drop(columns=["Status"]), train["Status"], test.drop(columns=["Status"])
    repeats = -(-n_big // len(test))
    big = pd.concat([test] * repeats, ignore_index=True).head(n_big)
    data = {
        "X": X,
        "y": y,
        "test": test,
        "big": big,
        "records": json.loads(test.head(50).to_json(orient="records")),
        "big_records": json.loads(big.to_json(orient="records")),
    }
    import tempfile

    import treelite

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "treelite": treelite.__version__,
            "load_average_before": [round(v, 2) for v in os.getloadavg()],
        },
        "rows": n_big,
        "targets": {"one_row_ms": 0.2, "rows_per_s": 200_000},
        "families": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for family in [*FAMILIES, "soft_voting"]:
            print(f"== {family}", flush=True)
            results["families"][family] = _one_family(family, data, Path(tmp), calls)
            print(json.dumps(results["families"][family]), flush=True)
    results["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
