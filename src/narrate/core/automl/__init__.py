"""AutoML for the Train stage: problem detection, candidate search, ensembles, thresholds.

Pure: functions take a pandas DataFrame and a :class:`TrainConfig`, report progress via
callbacks and return plain results plus fitted scikit-learn objects.
"""

from narrate.core.automl.artifacts import load_model, save_model
from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.config import (
    FAMILIES,
    FeatureSelectionConfig,
    ThresholdConfig,
    TrainConfig,
)
from narrate.core.automl.problem import (
    FeatureWarning,
    ProblemInfo,
    detect_problem,
    find_feature_warnings,
)
from narrate.core.automl.results import ProgressUpdate, TrainResult
from narrate.core.automl.scoring import METRICS, get_metric
from narrate.core.automl.train import library_versions, refit, refit_estimator, train

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
