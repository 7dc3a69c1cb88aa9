"""Ensembles: greedy voting weights, blending judged on unseen rows, and every kind fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from narrate.core.automl import CandidateSpec, build_pipeline
from narrate.core.automl.ensembles import build_ensemble, greedy_weights, score_ensembles
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import predict_scores

AUC = get_metric("binary", "roc_auc")


def _noisy_members(n: int = 600, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * (n // 2), dtype=object)
    truth = (y == "b").astype(float)
    members = []
    for _ in range(2):
        p = np.clip(truth * 0.25 + rng.uniform(0, 0.75, n), 0, 1)
        members.append(np.column_stack([1 - p, p]))
    return y, members


def test_greedy_weights_give_a_useless_member_no_say() -> None:
    y, (good, _other) = _noisy_members()
    useless = np.full_like(good, 0.5)
    weights = greedy_weights([good, useless], y, AUC, ["a", "b"])
    assert weights[0] == pytest.approx(1.0) and weights[1] == pytest.approx(0.0)


def test_greedy_weights_share_between_equally_good_independent_members() -> None:
    y, members = _noisy_members()
    weights = greedy_weights(members, y, AUC, ["a", "b"])
    assert sum(weights) == pytest.approx(1.0)
    assert all(w > 0.2 for w in weights), weights


@pytest.mark.parametrize("n", [600, 20_000], ids=["small-data", "large-data"])
def test_score_ensembles_reports_every_kind_and_keeps_only_a_gain(n: int) -> None:
    y, members = _noisy_members(n)
    choice = score_ensembles(members, y, task="binary", classes=["a", "b"], metric=AUC, seed=0)
    assert {"soft_voting", "hard_voting", "stacking", "blending"} <= set(choice.scores)
    assert choice.winner in ({"soft_voting", "stacking"} | ({"blending"} if n >= 20_000 else set()))
    assert choice.oof is not None and not np.isnan(choice.oof).any()
    gain = choice.scores[choice.winner] - (
        choice.scores["blending_single_same_rows"]
        if choice.winner == "blending"
        else choice.best_single_score
    )
    assert gain > 0


def test_blending_predictions_are_out_of_sample() -> None:
    # A member that is pure noise: an honest blend can't score better than chance on it.
    rng = np.random.default_rng(1)
    y = np.array(["a", "b"] * 300, dtype=object)
    noise = [np.column_stack([1 - p, p]) for p in (rng.uniform(size=600), rng.uniform(size=600))]
    choice = score_ensembles(noise, y, task="binary", classes=["a", "b"], metric=AUC, seed=0)
    assert choice.scores["blending"] < 0.6


@pytest.mark.parametrize("kind", ["soft_voting", "stacking", "blending"])
def test_every_ensemble_kind_fits_and_predicts_raw_rows(credit: pd.DataFrame, kind: str) -> None:
    X, y = credit.drop(columns=["Status"]), credit["Status"].astype(str).to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    members = [
        (
            family,
            build_pipeline(CandidateSpec(family=family, params=params), "binary", seed=0, n_jobs=1),
        )
        for family, params in (
            ("linear", {"C": 1.0}),
            ("lightgbm", {"n_estimators": 60, "learning_rate": 0.1}),
        )
    ]
    ensemble = build_ensemble(
        kind, members, task="binary", n_folds=3, seed=0, weights=[0.7, 0.3]
    ).fit(X_train, y_train)
    proba = predict_scores(ensemble, X_test, "binary", ["bad", "good"])
    assert proba.shape == (len(X_test), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert AUC.fn(y_test, proba, ["bad", "good"]) > 0.75


def test_soft_voting_leaves_out_members_with_zero_weight(credit: pd.DataFrame) -> None:
    members = [
        (f, build_pipeline(CandidateSpec(family=f, params={}), "binary", seed=0, n_jobs=1))
        for f in ("linear", "baseline")
    ]
    ensemble = build_ensemble(
        "soft_voting", members, task="binary", n_folds=3, seed=0, weights=[1.0, 0.0]
    )
    assert [name for name, _ in ensemble.estimators] == ["linear"]
