"""Resamplers run inside CV on training folds only: no synthetic row reaches validation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.config import TrainConfig
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import cross_validate_pipeline
from narrate.core.automl.splits import validation_splits


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression that records the rows it is fitted on and asked to score."""

    log: ClassVar[list[tuple[str, int, np.ndarray]]] = []

    def fit(self, X: Any, y: Any) -> RecordingClassifier:
        self.log.append(("fit", len(X), np.asarray(X).copy()))
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self.log.append(("score", len(X), np.asarray(X).copy()))
        return self.model_.predict_proba(X)


def _imbalanced(n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.where(np.arange(n) < n // 100 * 8, "rare", "common")
    frame = pd.DataFrame({"a": rng.normal(size=n) + (y == "rare"), "b": rng.normal(size=n)})
    return frame, y


@pytest.mark.parametrize("strategy", ["smote", "adasyn", "borderline_smote", "random_under"])
def test_resampler_changes_training_folds_but_never_validation_folds(strategy: str) -> None:
    X, y = _imbalanced()
    config = TrainConfig(target="y", n_folds=3, cv_repeats=1)  # one pass: each row once
    splits = validation_splits(X, pd.Series(y), config, classify=True)
    pipeline = build_pipeline(
        CandidateSpec("linear", imbalance=strategy), "binary", seed=0, min_class_rows=20
    )
    pipeline.steps[-1] = ("model", RecordingClassifier())
    RecordingClassifier.log.clear()
    cross_validate_pipeline(
        pipeline,
        X,
        y,
        splits,
        task="binary",
        classes=["common", "rare"],
        metric=get_metric("binary", None),
    )
    fits = [entry for entry in RecordingClassifier.log if entry[0] == "fit"]
    scores = [entry for entry in RecordingClassifier.log if entry[0] == "score"]
    assert len(fits) == len(scores) == len(splits)
    for (_, n_fit, _), (_, n_score, _), (train_idx, val_idx) in zip(
        fits, scores, splits, strict=True
    ):
        assert n_fit != len(train_idx)  # the resampler did change the training rows
        assert n_score == len(val_idx)  # validation rows are exactly the fold, no extras
    # Validation rows are the original rows (scaled), never synthetic ones.
    scored_rows = np.vstack([rows for _, _, rows in scores])
    assert scored_rows.shape[0] == len(X)


def test_smote_oversamples_only_the_minority_class_in_each_fold() -> None:
    X, y = _imbalanced()
    splits = validation_splits(X, pd.Series(y), TrainConfig(target="y", n_folds=3), classify=True)
    pipeline = build_pipeline(CandidateSpec("linear", imbalance="smote"), "binary", seed=0)
    for train_idx, _ in splits:
        fitted = pipeline.fit(X.iloc[train_idx], y[train_idx])
        resampled = fitted.named_steps["resample"].fit_resample(
            fitted.named_steps["columns"].transform(X.iloc[train_idx]), y[train_idx]
        )
        counts = pd.Series(resampled[1]).value_counts()
        assert counts["rare"] == counts["common"] == (y[train_idx] == "common").sum()


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "lightgbm", "xgboost"])
@pytest.mark.parametrize("strategy", ["smote", "adasyn", "borderline_smote", "random_under"])
def test_boosted_trees_resample_rows_with_missing_numbers(family: str, strategy: str) -> None:
    X, y = _imbalanced()
    X.loc[::7, "a"] = np.nan  # boosted trees pass missing numbers through; samplers can't
    params = {"max_iter": 20} if family == "hist_gradient_boosting" else {"n_estimators": 20}
    pipeline = build_pipeline(
        CandidateSpec(family, params, imbalance=strategy), "binary", seed=0, min_class_rows=20
    )
    proba = pipeline.fit(X, y).predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()
