"""Training configuration: every knob of the Train stage, validated before compute starts."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FAMILIES",
    "CvStrategy",
    "Family",
    "FeatureSelectionConfig",
    "ImbalanceStrategy",
    "ThresholdConfig",
    "TrainConfig",
]

Family = Literal[
    "baseline",
    "linear",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "lightgbm",
    "xgboost",
]
#: Also the order of the first (default-parameter) trials: boosted trees usually lead on
#: tabular data and are cheap with early stopping, so they are tried before the forests,
#: whose fully grown trees are slow on large data; XGBoost is the slowest of the boosters.
FAMILIES: tuple[Family, ...] = (
    "baseline",
    "lightgbm",
    "linear",
    "hist_gradient_boosting",
    "random_forest",
    "extra_trees",
    "xgboost",
)
CvStrategy = Literal["auto", "kfold", "holdout", "group", "time"]
ImbalanceStrategy = Literal[
    "auto", "none", "class_weight", "smote", "adasyn", "borderline_smote", "random_under"
]


def _default_n_jobs() -> int:
    return os.cpu_count() or 1


class FeatureSelectionConfig(BaseModel):
    """How (and whether) to drop features before the estimator.

    ``auto`` applies the correlation filter only (cheap and safe).
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["none", "auto", "correlation", "mutual_info", "rfe"] = "none"
    k: int | None = Field(default=None, ge=1)
    correlation_threshold: float = Field(default=0.95, gt=0, le=1)


class ThresholdConfig(BaseModel):
    """How to choose the decision threshold of a binary classifier."""

    model_config = ConfigDict(extra="forbid")

    objective: Literal["none", "f1", "cost", "precision", "recall"] = "f1"
    # [[TN cost, FP cost], [FN cost, TP cost]] with the positive class second.
    cost_matrix: list[list[float]] | None = None
    target_value: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _check_objective_inputs(self) -> ThresholdConfig:
        if self.objective == "cost":
            matrix = self.cost_matrix
            if matrix is None or len(matrix) != 2 or any(len(row) != 2 for row in matrix):
                msg = "threshold objective 'cost' needs a 2x2 cost_matrix [[TN, FP], [FN, TP]]"
                raise ValueError(msg)
        if self.objective in ("precision", "recall") and self.target_value is None:
            msg = f"threshold objective '{self.objective}' needs target_value between 0 and 1"
            raise ValueError(msg)
        return self


class TrainConfig(BaseModel):
    """Everything :func:`narrate.core.automl.train` needs besides the data.

    ``max_trials`` makes a run deterministic for a seed (the time budget still caps it).
    """

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1)
    task: Literal["binary", "multiclass", "regression"] | None = None
    metric: str | None = None
    time_budget_s: float = Field(default=60.0, gt=0, le=24 * 3600)
    max_trials: int | None = Field(default=None, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    cv: CvStrategy = "auto"
    group_column: str | None = None
    time_column: str | None = None
    n_folds: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="k of k-fold; default 5, or 3 from 10,000 rows (each trial costs k fits)",
    )
    cv_repeats: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Repeat k-fold with new shuffles (k-fold scheme only). None: 3 repeats "
        f"below {1000:,} development rows, where one shuffle's score is too noisy to pick a "
        "model by, otherwise 1.",
    )
    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    families: list[Family] = Field(default_factory=lambda: list(FAMILIES))
    imbalance: ImbalanceStrategy = "auto"
    feature_selection: FeatureSelectionConfig = Field(default_factory=FeatureSelectionConfig)
    ensembles: bool = True
    refit_full: bool = Field(
        default=True,
        description="After the holdout is scored, refit the chosen model on all labelled "
        "rows (holdout included) for the saved model, as PyCaret's finalize and FLAML's "
        "retrain_full do; the reported metrics stay those of the holdout.",
    )
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    sensitive_columns: list[str] = Field(default_factory=list, max_length=100)
    n_jobs: int = Field(default_factory=_default_n_jobs, ge=1, le=256)

    @model_validator(mode="after")
    def _check_cv_columns(self) -> TrainConfig:
        if self.cv == "group" and not self.group_column:
            raise ValueError("cv='group' needs group_column")
        if self.cv == "time" and not self.time_column:
            raise ValueError("cv='time' needs time_column")
        if not self.families:
            raise ValueError("families must name at least one model family")
        return self
