"""Result and progress objects of a training run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from narrate.core.automl.config import TrainConfig
from narrate.core.automl.problem import FeatureWarning, ProblemInfo

__all__ = ["ProgressUpdate", "TrainResult"]


@dataclass(frozen=True)
class ProgressUpdate:
    """A progress report sent to the ``progress`` callback after each step."""

    fraction: float
    message: str
    trials_done: int = 0
    best_score: float | None = None
    time_left_s: float | None = None
    leaderboard: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrainResult:
    """Everything a training run produced.

    ``holdout_indices`` are positions in the frame passed to ``train`` (rows with a known
    target); evaluate ``best_pipeline`` on ``df.iloc[holdout_indices]``.
    """

    problem: ProblemInfo
    best_pipeline: Any
    leaderboard: list[dict[str, Any]]
    metric: str
    holdout_indices: np.ndarray
    train_indices: np.ndarray
    threshold: dict[str, Any] | None
    dropped_features: dict[str, str]
    feature_warnings: list[FeatureWarning]
    imbalance_strategy: str
    imbalance_reason: str
    validation: str
    config: TrainConfig
    library_versions: dict[str, str]
    seed: int
    duration_s: float
    ensemble: dict[str, Any] | None
    best_spec: dict[str, Any]
    cancelled: bool = False
    trials_done: int = 0
    cv_repeats: int = 1
    #: The model to save: ``best_pipeline`` refitted on every labelled row when
    #: ``config.refit_full`` (else ``best_pipeline`` itself).
    final_pipeline: Any = None

    @property
    def deployable(self) -> Any:
        """The pipeline to save and serve."""
        return self.final_pipeline if self.final_pipeline is not None else self.best_pipeline

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (no fitted objects, no row arrays)."""
        return {
            "problem": self.problem.to_dict(),
            "leaderboard": self.leaderboard,
            "metric": self.metric,
            "n_holdout": len(self.holdout_indices),
            "n_train": len(self.train_indices),
            "threshold": self.threshold,
            "dropped_features": self.dropped_features,
            "feature_warnings": [w.to_dict() for w in self.feature_warnings],
            "imbalance_strategy": self.imbalance_strategy,
            "imbalance_reason": self.imbalance_reason,
            "validation": self.validation,
            "cv_repeats": self.cv_repeats,
            "config": self.config.model_dump(mode="json"),
            "library_versions": self.library_versions,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
            "ensemble": self.ensemble,
            "best_spec": self.best_spec,
            "cancelled": self.cancelled,
            "trials_done": self.trials_done,
            "refit_full": self.final_pipeline is not None,
        }
