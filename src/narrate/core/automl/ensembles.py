"""Ensembles over the top candidates: soft/hard voting, stacking and blending.

Each ensemble is first scored from the members' out-of-fold predictions (no extra fits);
only an ensemble that beats the best single model on the same rows is built and kept.
Soft voting weighs its members by greedy forward selection with replacement over the
out-of-fold predictions (Caruana et al., 2004), so a weak member gets little or no say.
Blending is judged on the rows its meta-learner did not see, against the best single model
on those same rows, and is only chosen on large data (``BLEND_MIN_ROWS``). Hard voting
gives no probabilities, so it is reported but never chosen.
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

__all__ = [
    "BlendingEnsemble",
    "EnsembleChoice",
    "build_ensemble",
    "greedy_weights",
    "score_ensembles",
]

KINDS = ("soft_voting", "hard_voting", "stacking", "blending")


_GREEDY_ROUNDS = 25
#: Blending trains its members on 75% of the rows; below this many rows that costs more
#: accuracy than stacking's extra fits cost time, so blending is reported but not chosen.
BLEND_MIN_ROWS = 20_000


@dataclass
class EnsembleChoice:
    """Outcome of ensemble scoring."""

    scores: dict[str, float]
    best_single_score: float
    winner: str | None
    oof: np.ndarray | None
    mask: np.ndarray
    weights: list[float] | None = None

    def to_dict(self, members: list[str]) -> dict[str, Any]:
        """Return a JSON-serialisable summary."""
        return {
            "members": members,
            "scores": self.scores,
            "best_single_score": self.best_single_score,
            "chosen": self.winner,
            "weights": self.weights,
        }


def greedy_weights(
    members: list[np.ndarray], y: np.ndarray, metric: Metric, classes: list[str]
) -> list[float]:
    """Caruana-style ensemble selection: repeatedly add (with replacement) the member whose
    addition most improves the averaged prediction; weights are the pick counts.

    Args:
        members: Out-of-fold predictions on the same rows, best member first.
        y: Their target.
        metric: The ranking metric.
        classes: Class labels.

    Returns:
        One weight per member, summing to 1.
    """
    counts = np.zeros(len(members))
    total = np.zeros_like(members[0], dtype=float)
    best_goal = -np.inf
    for _ in range(_GREEDY_ROUNDS):
        n = counts.sum() + 1
        goals = [metric.goal(metric.fn(y, (total + m) / n, classes)) for m in members]
        pick = int(np.argmax(goals))
        if goals[pick] < best_goal and counts.sum() > 0:
            break
        best_goal = max(best_goal, goals[pick])
        counts[pick] += 1
        total = total + members[pick]
    return [round(float(c / counts.sum()), 6) for c in counts]


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
    weights = greedy_weights(members, ys, metric, classes)
    averaged = np.average(np.stack(members), axis=0, weights=weights)
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
    blend_scores, blended = _blend(ys, members, features, task, classes, metric, seed)
    scores.update(blend_scores)
    # Each kind's gain over the best single model on the rows it was scored on.
    gains = {k: metric.goal(scores[k]) - metric.goal(single) for k in candidates}
    if len(ys) >= BLEND_MIN_ROWS:
        gains["blending"] = metric.goal(scores["blending"]) - metric.goal(
            scores["blending_single_same_rows"]
        )
        candidates["blending"] = blended
    rounded = {k: round(float(v), 6) for k, v in scores.items()}
    winner = max(gains, key=lambda k: gains[k])
    if gains[winner] <= 0:
        return EnsembleChoice(rounded, single, None, None, mask, weights)
    full = np.full_like(oofs[0], np.nan)
    full[mask] = candidates[winner]
    return EnsembleChoice(rounded, single, winner, full, mask, weights)


def _blend(
    ys: np.ndarray,
    members: list[np.ndarray],
    features: np.ndarray,
    task: str,
    classes: list[str],
    metric: Metric,
    seed: int,
) -> tuple[dict[str, float], np.ndarray]:
    """Estimate blending: a meta-learner fitted on 30% of rows, scored on the other 70%.

    Returns the scores and out-of-sample blended predictions for every row (the 30% part
    comes from a second meta-learner fitted on the 70%, so no row is predicted by a model
    that saw it).
    """
    stratify = ys if task != "regression" else None
    fit_idx, score_idx = train_test_split(
        np.arange(len(ys)), train_size=0.3, random_state=seed, stratify=stratify
    )
    meta = _meta_model(task).fit(features[fit_idx], ys[fit_idx])
    blended = _meta_predict(meta, features[score_idx], task)
    scores = {
        "blending": metric.fn(ys[score_idx], blended, classes),
        "blending_single_same_rows": metric.fn(ys[score_idx], members[0][score_idx], classes),
    }
    everywhere = np.zeros_like(members[0], dtype=float)
    everywhere[score_idx] = blended
    other = _meta_model(task).fit(features[score_idx], ys[score_idx])
    everywhere[fit_idx] = _meta_predict(other, features[fit_idx], task)
    return scores, everywhere


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
    kind: str,
    members: list[tuple[str, Any]],
    *,
    task: str,
    n_folds: int,
    seed: int,
    weights: list[float] | None = None,
) -> Any:
    """Create the unfitted ensemble estimator of a kind.

    Args:
        kind: ``soft_voting``, ``stacking`` or ``blending``.
        members: ``(name, unfitted pipeline)`` pairs.
        task: The task.
        n_folds: Folds for the stacking meta-learner.
        seed: Random state.
        weights: Soft-voting weights per member (members with weight 0 are left out).

    Returns:
        The estimator.

    Raises:
        ValueError: Unknown or unsupported kind.
    """
    classify = task != "regression"
    if kind == "soft_voting":
        kept = [
            (m, w) for m, w in zip(members, weights or [1.0] * len(members), strict=True) if w > 0
        ]
        named, kept_weights = [m for m, _ in kept], [w for _, w in kept]
        if classify:
            return VotingClassifier(named, voting="soft", weights=kept_weights)
        return VotingRegressor(named, weights=kept_weights)
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
