"""AutoML for the Train stage: problem detection, candidate search, ensembles, thresholds.

Pure: functions take a pandas DataFrame and a :class:`TrainConfig`, report progress via
callbacks and return plain results plus fitted scikit-learn objects.

Names are imported on first use, so a process that only loads and serves a saved model
(``load_model``) does not pay for importing Optuna, imbalanced-learn and the search.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from narrate.core.automl.artifacts import load_model, save_model
    from narrate.core.automl.candidates import CandidateSpec, build_pipeline
    from narrate.core.automl.config import (
        FAMILIES,
        FeatureSelectionConfig,
        ThresholdConfig,
        TrainConfig,
    )
    from narrate.core.automl.fitting import library_versions, refit, refit_estimator, train
    from narrate.core.automl.problem import (
        FeatureWarning,
        ProblemInfo,
        detect_problem,
        find_feature_warnings,
    )
    from narrate.core.automl.results import ProgressUpdate, TrainResult
    from narrate.core.automl.scoring import METRICS, get_metric

_HOMES = {
    "load_model": "artifacts",
    "save_model": "artifacts",
    "CandidateSpec": "candidates",
    "build_pipeline": "candidates",
    "FAMILIES": "config",
    "FeatureSelectionConfig": "config",
    "ThresholdConfig": "config",
    "TrainConfig": "config",
    "FeatureWarning": "problem",
    "ProblemInfo": "problem",
    "detect_problem": "problem",
    "find_feature_warnings": "problem",
    "ProgressUpdate": "results",
    "TrainResult": "results",
    "METRICS": "scoring",
    "get_metric": "scoring",
    "library_versions": "fitting",
    "refit": "fitting",
    "refit_estimator": "fitting",
    "train": "fitting",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FAMILIES",
    "METRICS",
    "CandidateSpec",
    "FeatureSelectionConfig",
    "FeatureWarning",
    "ProblemInfo",
    "ProgressUpdate",
    "ThresholdConfig",
    "TrainConfig",
    "TrainResult",
    "build_pipeline",
    "detect_problem",
    "find_feature_warnings",
    "get_metric",
    "library_versions",
    "load_model",
    "refit",
    "refit_estimator",
    "save_model",
    "train",
]
