"""Benchmark: the cost of the grounded narratives next to the work they describe.

Times, on this machine, the recipe-impact narrative of applying a recipe to a frame of
``--rows`` rows x 20 columns (``frame_summary`` of the parent and the new frame, one
``null_count`` each, plus the text), against fitting the recipe itself; and the data
narrative with its facts from a profile of the same frame (against profiling it).

Run ``python bench/narratives.py`` (writes bench/results/narratives.json); ``--rows``
sets the frame size (default 500,000).
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

from narrate.core.data.pii import detect_pii
from narrate.core.data.profile import profile_frame
from narrate.core.data.quality import find_warnings
from narrate.core.data.types import infer_types
from narrate.core.narrative.data import dataset_narrative
from narrate.core.narrative.recipe import describe_recipe_impact, frame_summary
from narrate.core.recipes.fit import fit_recipe

OUT = Path(__file__).parent / "results" / "narratives.json"


def _best(fn: Callable[[], Any], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(min(times) * 1000, 3)


def _frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    data: dict[str, Any] = {}
    for i in range(14):
        values = rng.normal(50, 10, rows)
        values[rng.random(rows) < 0.05] = np.nan
        data[f"num{i}"] = values
    for i in range(5):
        data[f"cat{i}"] = rng.choice(["a", "b", "c", "d"], rows)
    data["target"] = rng.choice(["yes", "no"], rows)
    return pl.DataFrame(data).fill_nan(None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    rows = parser.parse_args().rows
    frame = _frame(rows)
    recipe = {
        "steps": [
            {"step": "drop_missing", "columns": ["num0"]},
            {"step": "impute", "columns": ["num1", "num2"], "strategy": "median"},
            {"step": "drop_columns", "columns": ["cat4"]},
        ]
    }
    out, fitted = fit_recipe(frame, recipe, seed=0)
    steps = fitted.recipe.to_dict()["steps"]
    typed, kinds = infer_types(frame)
    profile = profile_frame(typed, kinds, target="target")
    pii = detect_pii(typed, kinds)
    warnings = find_warnings(profile, target="target", pii=pii)
    result = {
        "rows": rows,
        "columns": frame.width,
        "fit_recipe_ms": _best(lambda: fit_recipe(frame, recipe, seed=0), 1),
        "recipe_impact_ms": _best(
            lambda: describe_recipe_impact(steps, frame_summary(frame), frame_summary(out))
        ),
        "profile_frame_ms": _best(lambda: profile_frame(typed, kinds, target="target"), 1),
        "data_narrative_ms": _best(
            lambda: dataset_narrative(profile, warnings, pii, name="bench", target="target")
        ),
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
