"""Ensembles over the top candidates: soft/hard voting, stacking and blending.

Each ensemble is first scored from the members' out-of-fold predictions (no extra fits);
only an ensemble that beats the best single model on the same rows is built and kept.
Hard voting gives no probabilities, so it is reported but never chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split

from narrate.core.automl.scoring import Metric

__all__ = ["BlendingEnsemble", "EnsembleChoice", "build_ensemble", "score_ensembles"]

KINDS = ("soft_voting", "hard_voting", "stacking", "blending")


@dataclass
class EnsembleChoice:
    """Outcome of ensemble scoring."""

    scores: dict[str, float]
    best_single_score: float
    winner: str | None
    oof: np.ndarray | None
    mask: np.ndarray

    def to_dict(self, members: list[str]) -> dict[str, Any]:
        """Return a JSON-serialisable summary."""
        return {
            "members": members,
            "scores": self.scores,
            "best_single_score": self.best_single_score,
            "chosen": self.winner,
        }


def _meta_features(oofs: list[np.ndarray], task: str) -> np.ndarray:
    if task == "regression":
        return np.column_stack(oofs)
    if task == "binary":
        return np.column_stack([o[:, 1] for o in oofs])
    return np.column_stack(oofs)


def _meta_model(task: str) -> Any:
    return Ridge(alpha=1.0) if task == "regression" else LogisticRegression(max_iter=2000)


def _meta_predict(meta: Any, features: np.ndarray, task: str) -> np.ndarray:
    return np.asarray(
        meta.predict(features) if task == "regression" else meta.predict_proba(features)
    )


def score_ensembles(
    oofs: list[np.ndarray],
    y: np.ndarray,
    *,
    task: str,
    classes: list[str],
    metric: Metric,
    seed: int,
) -> EnsembleChoice:
    """Score each ensemble of the members from their out-of-fold predictions.

    Args:
        oofs: Out-of-fold predictions of the members, best member first.
        y: Development target.
        task: The task.
        classes: Class labels.
        metric: The ranking metric.
        seed: Random state (meta-learner folds, blending split).

    Returns:
        Scores per ensemble kind, the best single score on the same rows, and the winner.
    """
    mask = ~np.isnan(oofs[0].reshape(len(y), -1)).any(axis=1)
    ys = y[mask]
    members = [o[mask] for o in oofs]
    single = metric.fn(ys, members[0], classes)
    averaged = np.mean(members, axis=0)
    scores = {"soft_voting": metric.fn(ys, averaged, classes)}
    candidates: dict[str, np.ndarray] = {"soft_voting": averaged}
    if task != "regression":
        votes = np.stack([np.argmax(m, axis=1) for m in members], axis=1)
        hard = np.zeros_like(averaged)
        for row, row_votes in enumerate(votes):
            hard[row, np.bincount(row_votes, minlength=len(classes)).argmax()] = 1.0
        smoothed = (hard + 1e-3) / (1 + 1e-3 * len(classes))
        scores["hard_voting"] = metric.fn(ys, smoothed, classes)
    features = _meta_features(members, task)
    folds = (
        KFold(5, shuffle=True, random_state=seed)
        if task == "regression"
        else StratifiedKFold(5, shuffle=True, random_state=seed)
    )
    method = "predict" if task == "regression" else "predict_proba"
    stacked = cross_val_predict(_meta_model(task), features, ys, cv=folds, method=method)
    scores["stacking"] = metric.fn(ys, np.asarray(stacked), classes)
    candidates["stacking"] = np.asarray(stacked)
    winner = max(candidates, key=lambda k: metric.goal(scores[k]))
    if metric.goal(scores[winner]) <= metric.goal(single):
        return EnsembleChoice(
            _rounded(scores, ys, members, features, task, classes, metric, seed),
            single,
            None,
            None,
            mask,
        )
    full = np.full_like(oofs[0], np.nan)
    full[mask] = candidates[winner]
    all_scores = _rounded(scores, ys, members, features, task, classes, metric, seed)
    return EnsembleChoice(all_scores, single, winner, full, mask)


def _rounded(
    scores: dict[str, float],
    ys: np.ndarray,
    members: list[np.ndarray],
    features: np.ndarray,
    task: str,
    classes: list[str],
    metric: Metric,
    seed: int,
) -> dict[str, float]:
    """Add the blending estimate: meta fitted on 30% of rows, scored on the other 70%."""
    stratify = ys if task != "regression" else None
    fit_idx, score_idx = train_test_split(
        np.arange(len(ys)), train_size=0.3, random_state=seed, stratify=stratify
    )
    meta = _meta_model(task).fit(features[fit_idx], ys[fit_idx])
    blended = _meta_predict(meta, features[score_idx], task)
    scores = dict(scores)
    scores["blending"] = metric.fn(ys[score_idx], blended, classes)
    scores["blending_single_same_rows"] = metric.fn(ys[score_idx], members[0][score_idx], classes)
    return {k: round(float(v), 6) for k, v in scores.items()}


class BlendingEnsemble(BaseEstimator):  # type: ignore[misc]
    """Members fitted on most rows, a linear meta-learner fitted on a held-out blend set.

    Args:
        estimators: ``(name, estimator)`` pairs.
        task: ``binary``, ``multiclass`` or ``regression``.
        blend_fraction: Share of rows held out to fit the meta-learner.
        random_state: Seed of the split.
    """

    def __init__(
        self,
        estimators: list[tuple[str, Any]],
        task: str = "binary",
        blend_fraction: float = 0.25,
        random_state: int = 0,
    ) -> None:
        self.estimators = estimators
        self.task = task
        self.blend_fraction = blend_fraction
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> BlendingEnsemble:
        """Fit members on the fit part and the meta-learner on the blend part; returns self."""
        y = np.asarray(y)
        stratify = y if self.task != "regression" else None
        fit_idx, blend_idx = train_test_split(
            np.arange(len(y)),
            test_size=self.blend_fraction,
            random_state=self.random_state,
            stratify=stratify,
        )
        self.estimators_ = [clone(e).fit(X.iloc[fit_idx], y[fit_idx]) for _, e in self.estimators]
        if self.task != "regression":
            self.classes_ = np.unique(y)
        self.meta_ = _meta_model(self.task).fit(self._features(X.iloc[blend_idx]), y[blend_idx])
        return self

    def _features(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            return np.column_stack([e.predict(X) for e in self.estimators_])
        probas = [np.asarray(e.predict_proba(X)) for e in self.estimators_]
        return _meta_features(probas, self.task)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return class probabilities (classification)."""
        return np.asarray(self.meta_.predict_proba(self._features(X)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Return predictions."""
        return np.asarray(self.meta_.predict(self._features(X)))


class BlendingClassifier(ClassifierMixin, BlendingEnsemble):  # type: ignore[misc]
    """Classification flavour of :class:`BlendingEnsemble`."""


class BlendingRegressor(RegressorMixin, BlendingEnsemble):  # type: ignore[misc]
    """Regression flavour of :class:`BlendingEnsemble`."""


def build_ensemble(
    kind: str, members: list[tuple[str, Any]], *, task: str, n_folds: int, seed: int
) -> Any:
    """Create the unfitted ensemble estimator of a kind.

    Args:
        kind: ``soft_voting``, ``stacking`` or ``blending``.
        members: ``(name, unfitted pipeline)`` pairs.
        task: The task.
        n_folds: Folds for the stacking meta-learner.
        seed: Random state.

    Returns:
        The estimator.

    Raises:
        ValueError: Unknown or unsupported kind.
    """
    classify = task != "regression"
    if kind == "soft_voting":
        return VotingClassifier(members, voting="soft") if classify else VotingRegressor(members)
    if kind == "stacking":
        if classify:
            folds: Any = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
            return StackingClassifier(
                members, final_estimator=_meta_model(task), cv=folds, stack_method="predict_proba"
            )
        return StackingRegressor(
            members,
            final_estimator=_meta_model(task),
            cv=KFold(n_folds, shuffle=True, random_state=seed),
        )
    if kind == "blending":
        cls = BlendingClassifier if classify else BlendingRegressor
        return cls(members, task=task, random_state=seed)
    raise ValueError(f"ensemble kind {kind!r} cannot be built")
