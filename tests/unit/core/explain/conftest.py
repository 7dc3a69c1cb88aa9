from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

import pandas as pd
import pytest

from narrate.core.automl.candidates import CandidateSpec, build_pipeline

#: sample -> (target, task)
SAMPLES = {
    "credit_data": ("Status", "binary"),
    "penguins": ("species", "multiclass"),
    "hitters": ("Salary", "regression"),
}

Fitted = tuple[Any, pd.DataFrame, pd.Series, str]


@pytest.fixture(scope="session")
def sample() -> Callable[[str], tuple[pd.DataFrame, pd.Series, str]]:
    """A sample's raw columns, its target (rows with a target only) and its task."""

    def load(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
        target, task = SAMPLES[name]
        frame = pd.read_csv(str(resources.files("narrate") / "samples" / f"{name}.csv"))
        frame = frame[frame[target].notna()].reset_index(drop=True)
        return frame.drop(columns=[target]), frame[target], task

    return load


@pytest.fixture(scope="session")
def fitted(sample: Callable[[str], tuple[pd.DataFrame, pd.Series, str]]) -> Callable[..., Fitted]:
    """A small fitted candidate pipeline of a family on a sample (cached per session)."""
    cache: dict[tuple[str, str], Fitted] = {}

    def fit(name: str, family: str) -> Fitted:
        if (name, family) not in cache:
            X, y, task = sample(name)
            params: dict[str, Any] = {}
            if family in ("lightgbm", "xgboost"):
                params = {"n_estimators": 25}
            if family in ("random_forest", "extra_trees"):
                params = {"n_estimators": 20, "max_depth": 6}
            spec = CandidateSpec(family, params=params)
            cache[name, family] = (build_pipeline(spec, task, seed=0).fit(X, y), X, y, task)
        return cache[name, family]

    return fit
