"""Benchmark: explaining one prediction, and global importances on 50,000 rows.

Measures, on src/narrate/samples/credit_data.csv (binary "Status", 13 raw columns):

- ``one_row_lightgbm``: one row explained (contributions in raw columns plus the
  narrative sentence) by a 300-tree LightGBM candidate pipeline: p50/p99 over 300 rows,
  each timed alone. Target: 50 ms.
- ``one_row_soft_voting``: the same for a soft-voting ensemble of LightGBM (300 trees),
  a random forest (200 trees) and a logistic regression, weights 0.5/0.3/0.2. Target:
  500 ms.
- ``one_row_sampling``: the same for a stacking ensemble, which has no exact method and
  is explained by permutation sampling (the stated fallback cost).
- Wall and CPU time are both reported: on a shared machine the wall time includes
  waiting for a core.
- ``importances_50k``: permutation importances (13 columns x 3 repeats) plus mean
  |contribution| on 500 rows, for the LightGBM model on 50,000 rows (credit rows drawn
  with replacement), beside the seconds the model took to fit on those rows.
- ``what_if_10_variants``: one row and 10 variants of it checked against the input
  signature and scored in one pass (``narrate.services.whatif.score_variants``) by the
  LightGBM model's serving copy and, for comparison, its joblib pipeline: p50/p99.
- ``dependence_500x20``: partial dependence + ICE of a numeric (Income) and a
  categorical (Home) column on 500 training rows with a 20-point grid
  (``sample_dependence``: 500 rows read through the input contract, 10,000 rows scored
  in one call), serving copy and joblib pipeline: p50/p99.

Run ``python bench/explain.py`` (writes bench/results/explain.json); ``--quick`` uses
fewer rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression

from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.explain import Explainer
from narrate.core.explain.importance import permutation_importances
from narrate.core.explain.narrative import describe_prediction

RESULTS = Path(__file__).parent / "results" / "explain.json"


def _credit() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(str(resources.files("narrate") / "samples" / "credit_data.csv"))
    return frame.drop(columns=["Status"]), frame["Status"]


def _lightgbm() -> Any:
    return build_pipeline(CandidateSpec("lightgbm", {"n_estimators": 300}), "binary", seed=0)


def _one_row(model: Any, X: pd.DataFrame, n: int) -> dict[str, Any]:
    explainer = Explainer(model, X.sample(200, random_state=0))
    rows = X.sample(n, random_state=1, replace=n > len(X))
    explainer.explain(rows.iloc[[0]])  # warm-up: first-call set-up is not per request
    times, cpu = [], []
    for i in range(n):
        row = rows.iloc[[i]]
        started, started_cpu = time.perf_counter(), time.process_time()
        _, [explained] = explainer.explain(row)
        describe_prediction(explained, row.iloc[0].to_dict())
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return {
        "method": explainer.method,
        "n": n,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "max_ms": round(float(np.max(times)), 2),
        # CPU time of this process: what the explanation costs without other processes'
        # load on the shared cores (wall time above includes waiting for a core).
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
    }


def _members() -> list[tuple[str, Any]]:
    return [
        ("lightgbm", _lightgbm()),
        (
            "forest",
            build_pipeline(
                CandidateSpec("random_forest", {"n_estimators": 200, "min_samples_leaf": 3}),
                "binary",
                seed=0,
            ),
        ),
        ("linear", build_pipeline(CandidateSpec("linear"), "binary", seed=0)),
    ]


def _importances(X: pd.DataFrame, y: pd.Series, n_rows: int) -> dict[str, Any]:
    index = np.random.default_rng(0).integers(0, len(X), n_rows)
    big_X, big_y = X.iloc[index].reset_index(drop=True), y.iloc[index].reset_index(drop=True)
    started = time.perf_counter()
    model = _lightgbm().fit(big_X, big_y)
    fit_s = time.perf_counter() - started
    explainer = Explainer(model, big_X.sample(200, random_state=0))
    started = time.perf_counter()
    result = permutation_importances(model, big_X, big_y, "binary", repeats=3, explainer=explainer)
    seconds = time.perf_counter() - started
    return {
        "rows": n_rows,
        "columns": big_X.shape[1],
        "repeats": 3,
        "seconds": round(seconds, 2),
        "model_fit_seconds": round(fit_s, 2),
        "top_columns": [c.column for c in result.columns[:3]],
    }


def _predictors(model: Any, X: pd.DataFrame) -> dict[str, Any]:
    """The model as the server loads it: its serving copy, and its joblib pipeline."""
    import tempfile

    from narrate.core.automl.export import export_serving
    from narrate.core.serving import load_serving, save_serving
    from narrate.core.signature import build_signature
    from narrate.services.predict import Predictor

    manifest, arrays = export_serving(model, X.head(300), task="binary")
    with tempfile.TemporaryDirectory() as tmp:
        serving = load_serving(save_serving(manifest, arrays, Path(tmp) / "m.serving"))
    signature = build_signature(X)
    classes = [str(c) for c in model.classes_]
    common = {"model_version_id": "bench", "task": "binary", "signature": signature}
    return {
        engine: Predictor(**common, classes=classes, engine=engine, engine_note=None, model=loaded)
        for engine, loaded in (("serving", serving), ("joblib", model))
    }


def _timed(call: Any, n: int) -> dict[str, Any]:
    call()  # warm-up
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "n": n,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
    }


def _what_if_and_dependence(model: Any, X: pd.DataFrame, n: int) -> dict[str, Any]:
    from narrate.services.whatif import sample_dependence, score_variants

    predictors = _predictors(model, X)
    row = {k: (None if pd.isna(v) else v) for k, v in X.iloc[0].to_dict().items()}
    variants = [{"Income": float(v)} for v in np.linspace(20, 400, 9)] + [{"Home": "owner"}]
    sample = X.sample(500, random_state=0)
    what_if, dependence = {}, {}
    for engine, predictor in predictors.items():
        what_if[engine] = _timed(lambda p=predictor: score_variants(p, row, variants), n)
        for column in ("Income", "Home"):
            dependence[f"{engine}_{column}"] = _timed(
                lambda p=predictor, c=column: sample_dependence(
                    p, sample, c, grid_points=20, ice_rows=20
                ),
                max(n // 5, 5),
            )
    found = sample_dependence(predictors["serving"], sample, "Income", grid_points=20, ice_rows=0)
    return {
        "what_if_10_variants": what_if,
        "dependence_500x20": {"rows": 500, "numeric_grid": len(found["grid"]), **dependence},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 50 if args.quick else 300
    X, y = _credit()
    load = os.getloadavg()[0]
    lightgbm = _lightgbm().fit(X, y)
    weights = [0.5, 0.3, 0.2]
    voting = VotingClassifier(_members(), voting="soft", weights=weights).fit(X, y)
    stacking = StackingClassifier(_members()[:2], final_estimator=LogisticRegression(), cv=3).fit(
        X, y
    )
    results: dict[str, Any] = {
        "benchmark": "explain",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_1m_at_start": round(load, 2),
        "one_row_lightgbm": {**_one_row(lightgbm, X, n), "target_ms": 50},
        "one_row_soft_voting": {**_one_row(voting, X, max(n // 3, 20)), "target_ms": 500},
        "one_row_sampling": _one_row(stacking, X, 20),
        **_what_if_and_dependence(lightgbm, X, 20 if args.quick else 100),
        "importances_50k": _importances(X, y, 10_000 if args.quick else 50_000),
    }
    text = json.dumps(results, indent=2)
    sys.stdout.write(text + "\n")
    if not args.quick:
        RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
