"""Benchmark Narrate's AutoML against FLAML (or a default LightGBM) on the bundled samples.

Usage: ``python bench/bench_automl.py [budget_seconds]``. Writes ``bench/results/automl.json``.
Each dataset uses the fixed split in ``src/narrate/samples/<name>.split.json``; Narrate's
own inner holdout is not used for the reported score.
"""

from __future__ import annotations

import json
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narrate.core.automl import TrainConfig, train
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import predict_scores

DATASETS = {"credit_data": "Status", "penguins": "species", "hitters": "Salary"}
FLAML_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def load(name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return a bundled sample and its fixed split."""
    folder = resources.files("narrate") / "samples"
    df = pd.read_csv(str(folder / f"{name}.csv"))
    split = json.loads((folder / f"{name}.split.json").read_text())
    return df, split


def score(task: str, y: np.ndarray, scores: np.ndarray, classes: list[str]) -> float:
    """Score test predictions with the task's default metric."""
    return get_metric(task, None).fn(y, scores, classes)


def run_narrate(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    target: str,
    budget: float,
) -> dict[str, Any]:
    """Train Narrate on the train rows and score on the fixed test rows."""
    started = time.monotonic()
    result = train(train_df, TrainConfig(target=target, time_budget_s=budget, seed=0))
    elapsed = time.monotonic() - started
    task, classes = result.problem.task, sorted(result.problem.classes)
    y = (
        test_df[target].astype(str).to_numpy()
        if task != "regression"
        else (test_df[target].to_numpy(dtype=float))
    )
    predicted = predict_scores(result.deployable, test_df.drop(columns=[target]), task, classes)
    return {
        "task": task,
        "metric": result.metric,
        "test_score": score(task, y, predicted, classes),
        "time_s": round(elapsed, 1),
        "trials": result.trials_done,
        "best": result.leaderboard[0]["family"],
    }


def run_peer(
    train_df: pd.DataFrame, test_df: pd.DataFrame, target: str, task: str, budget: float
) -> dict[str, Any]:
    """Train FLAML (if installed) or a default LightGBM and score on the same test rows."""
    x_train, x_test = train_df.drop(columns=[target]), test_df.drop(columns=[target])
    for frame in (x_train, x_test):
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].astype(object).astype("category")
    x_test = x_test.astype({c: x_train[c].dtype for c in x_train.columns})
    y_train = train_df[target].astype(str) if task != "regression" else train_df[target]
    started = time.monotonic()
    try:
        from flaml import AutoML

        model: Any = AutoML()
        model.fit(
            x_train,
            y_train,
            task="classification" if task != "regression" else "regression",
            time_budget=budget,
            metric=FLAML_METRIC[task],
            seed=0,
            verbose=0,
        )
        peer = "flaml"
    except ImportError:
        import lightgbm as lgb

        model = (
            lgb.LGBMRegressor(verbose=-1)
            if task == "regression"
            else lgb.LGBMClassifier(verbose=-1)
        ).fit(x_train, y_train)
        peer = "lightgbm_default (flaml not installed)"
    elapsed = time.monotonic() - started
    classes = sorted(y_train.unique().tolist()) if task != "regression" else []
    y = (
        test_df[target].astype(str).to_numpy()
        if task != "regression"
        else (test_df[target].to_numpy(dtype=float))
    )
    if task == "regression":
        predicted = np.asarray(model.predict(x_test), dtype=float)
    else:
        proba = np.asarray(model.predict_proba(x_test))
        order = [classes.index(str(c)) for c in model.classes_]
        predicted = np.zeros((len(x_test), len(classes)))
        predicted[:, order] = proba
    return {
        "peer": peer,
        "test_score": score(task, y, predicted, classes),
        "time_s": round(elapsed, 1),
    }


def main() -> None:
    """Run every dataset and write the JSON results."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("budget", nargs="?", type=float, default=60.0, help="seconds per run")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "automl.json"
    )
    parser.add_argument("--quick", action="store_true", help="10 s per run")
    args = parser.parse_args()
    budget = 10.0 if args.quick else args.budget
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {"budget_s": budget, "datasets": {}}
    for name, target in DATASETS.items():
        df, split = load(name)
        test_mask = np.zeros(len(df), dtype=bool)
        test_mask[split["test_indices"]] = True
        train_df, test_df = df[~test_mask].reset_index(drop=True), df[test_mask]
        ours = run_narrate(train_df, test_df, target, budget)
        peer = run_peer(train_df, test_df, target, ours["task"], budget)
        higher = get_metric(ours["task"], None).greater_is_better
        ratio = ours["test_score"] / peer["test_score"] if peer["test_score"] else None
        results["datasets"][name] = {
            "narrate": ours,
            "peer": peer,
            "ratio_narrate_over_peer": ratio,
            "higher_is_better": higher,
        }
        print(name, json.dumps(results["datasets"][name]))
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
