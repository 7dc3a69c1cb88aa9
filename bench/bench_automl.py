"""Benchmark Narrate's AutoML against FLAML and a default HistGradientBoosting.

Usage: ``python bench/bench_automl.py [budget_seconds] [--datasets a,b]``. Writes
``bench/results/automl.json``. Every dataset of the panel (``bench/panel.py``: eight real
datasets, rebuilt from the packages that ship them) is split 80/20 the same fixed way;
all three tools train on the same 80% and are scored on the same 20% with the task's
default metric (ROC AUC, log loss, RMSE). Narrate and FLAML get the same time budget.
The bar per dataset is the better of FLAML and default HGB; the target is to reach it on
at least two thirds of the datasets and to be at most 1% worse on the rest.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narrate.core.automl import TrainConfig, train
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import predict_scores

sys.path.insert(0, str(Path(__file__).parent))
from panel import PANEL, load

FLAML_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def score(task: str, y: np.ndarray, scores: np.ndarray, classes: list[str]) -> float:
    """Score test predictions with the task's default metric."""
    return get_metric(task, None).fn(y, scores, classes)


def run_narrate(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    target: str,
    budget: float,
    task: str,
) -> dict[str, Any]:
    """Train Narrate on the train rows and score on the fixed test rows."""
    started = time.monotonic()
    config = TrainConfig(target=target, task=task, time_budget_s=budget, seed=0)  # type: ignore[arg-type]
    result = train(train_df, config)
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


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype(object).astype("category")
    return out


def run_hgb(
    train_df: pd.DataFrame, test_df: pd.DataFrame, target: str, task: str
) -> dict[str, Any]:
    """A default HistGradientBoosting with native categoricals, as a careful user would."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x_train = _categorical(train_df.drop(columns=[target]))
    x_test = _categorical(test_df.drop(columns=[target]))
    x_test = x_test.astype({c: x_train[c].dtype for c in x_train.columns})
    started = time.monotonic()
    if task == "regression":
        model: Any = HistGradientBoostingRegressor(
            categorical_features="from_dtype", random_state=0
        ).fit(x_train, train_df[target])
        predicted = np.asarray(model.predict(x_test), dtype=float)
        y = test_df[target].to_numpy(dtype=float)
        classes: list[str] = []
    else:
        y_train = train_df[target].astype(str)
        model = HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=0
        ).fit(x_train, y_train)
        classes = sorted(y_train.unique().tolist())
        proba = np.asarray(model.predict_proba(x_test))
        predicted = np.zeros((len(x_test), len(classes)))
        predicted[:, [classes.index(str(c)) for c in model.classes_]] = proba
        y = test_df[target].astype(str).to_numpy()
    return {
        "test_score": score(task, y, predicted, classes),
        "time_s": round(time.monotonic() - started, 1),
    }


def _verdict(ours: float, bar: float, higher: bool) -> tuple[float, str]:
    """How Narrate compares with the bar: the relative gap (positive = better) and a word."""
    gap = (ours - bar) / abs(bar) if higher else (bar - ours) / abs(bar)
    if gap >= 0:
        return gap, "meets"
    return gap, "within 1%" if gap >= -0.01 else "behind"


def main() -> None:
    """Run every panel dataset and write the JSON results."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("budget", nargs="?", type=float, default=60.0, help="seconds per run")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "automl.json"
    )
    parser.add_argument("--datasets", help="comma-separated panel names (default: all)")
    parser.add_argument("--quick", action="store_true", help="10 s per run")
    args = parser.parse_args()
    budget = 10.0 if args.quick else args.budget
    names = args.datasets.split(",") if args.datasets else list(PANEL)
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {"budget_s": budget, "datasets": {}}
    for name in names:
        target, task = PANEL[name].target, PANEL[name].task
        df, test_indices = load(name)
        test_mask = np.zeros(len(df), dtype=bool)
        test_mask[test_indices] = True
        train_df, test_df = df[~test_mask].reset_index(drop=True), df[test_mask]
        ours = run_narrate(train_df, test_df, target, budget, task)
        peer = run_peer(train_df, test_df, target, ours["task"], budget)
        hgb = run_hgb(train_df, test_df, target, ours["task"])
        higher = get_metric(ours["task"], None).greater_is_better
        pick = max if higher else min
        bar = pick(peer["test_score"], hgb["test_score"])
        gap, verdict = _verdict(ours["test_score"], bar, higher)
        results["datasets"][name] = {
            "rows": len(df),
            "narrate": ours,
            "peer": peer,
            "hgb_default": hgb,
            "bar": bar,
            "gap_vs_bar": round(gap, 4),
            "verdict": verdict,
            "ratio_narrate_over_peer": ours["test_score"] / peer["test_score"],
            "higher_is_better": higher,
        }
        print(name, json.dumps(results["datasets"][name]), flush=True)
    verdicts = [row["verdict"] for row in results["datasets"].values()]
    results["summary"] = {
        "datasets": len(verdicts),
        "meets_bar": verdicts.count("meets"),
        "within_1pct": verdicts.count("within 1%"),
        "behind": verdicts.count("behind"),
        "target": "meets on >= 2/3 of the datasets, never more than 1% worse",
        "target_met": verdicts.count("meets") * 3 >= 2 * len(verdicts) and "behind" not in verdicts,
    }
    print(json.dumps(results["summary"]))
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
