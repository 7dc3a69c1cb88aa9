"""How the search shares the time budget with the final fits."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from narrate.core.automl import TrainConfig
from narrate.core.automl.candidates import CandidateSpec
from narrate.core.automl.fitting import _final_fit_reserve, _final_fit_seconds, _final_model
from narrate.core.automl.scoring import get_metric
from narrate.core.automl.search import (
    FoldResult,
    SearchContext,
    SearchOutcome,
    TrialRecord,
    run_search,
)


def _context(n_folds: int = 3) -> SearchContext:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = (X["a"] * 2 + rng.normal(size=120)).to_numpy()
    positions = np.arange(len(X))
    return SearchContext(
        X=X,
        y=y,
        task="regression",
        classes=[],
        splits=list(KFold(n_folds, shuffle=True, random_state=0).split(positions)),
        metric=get_metric("regression", None),
        seed=0,
        n_jobs=1,
        min_class_rows=0,
        base_spec=CandidateSpec(family="baseline"),
    )


def _record(family: str, rmse: float, fit_time_s: float, n_folds: int = 3) -> TrialRecord:
    result = FoldResult([rmse] * n_folds, np.zeros(10), fit_time_s)
    return TrialRecord(CandidateSpec(family=family), result)


def _outcome(*records: TrialRecord) -> SearchOutcome:
    outcome = SearchOutcome()
    for record in records:
        outcome.best_by_family[record.spec.family] = record
    return outcome


def test_no_trial_starts_once_the_reserve_is_reached() -> None:
    seen: list[int] = []
    outcome = run_search(
        _context(),
        ["baseline", "linear"],
        deadline=time.monotonic() + 3600,
        max_trials=10,
        should_stop=lambda: False,
        on_trial=lambda out, _record: seen.append(out.trials_done),
        # Nothing to keep before any trial ran; the whole hour once one has.
        reserve=lambda out: 3600.0 if out.trials_done else 0.0,
    )
    assert outcome.trials_done == 1 and seen == [1]
    assert outcome.seconds_by_family["baseline"] > 0


def test_a_trial_expected_to_run_into_the_reserve_is_not_started() -> None:
    calls: list[float] = []

    def reserve(out: SearchOutcome) -> float:
        calls.append(time.monotonic())
        return 0.0

    ctx = _context()
    deadline = time.monotonic() + 3600
    outcome = run_search(
        ctx,
        ["linear"],
        deadline=deadline,
        max_trials=5,
        should_stop=lambda: False,
        on_trial=lambda out, _record: out.seconds_by_family.update(linear=7200.0),
        reserve=reserve,
    )
    # The first trial ran; its family's (pretended) two-hour trial time keeps a second out.
    assert outcome.trials_done == 1
    assert len(calls) == 2


def test_without_a_reserve_the_trial_cap_ends_the_search() -> None:
    outcome = run_search(
        _context(),
        ["baseline", "linear"],
        deadline=time.monotonic() + 3600,
        max_trials=4,
        should_stop=lambda: False,
        on_trial=lambda _out, _record: None,
    )
    assert outcome.trials_done == 4


@pytest.mark.parametrize(
    ("refit_full", "expected"),
    # The best model's fit took 3 s (9 s over 3 folds); x1.3 for more rows; +1 s fixed.
    [(False, 1.3 * 3.0 + 1.0), (True, 1.3 * 3.0 * 2 + 1.0)],
)
def test_reserve_follows_the_fit_time_of_the_best_model(refit_full: bool, expected: float) -> None:
    outcome = _outcome(
        _record("baseline", 9.0, 0.3),
        _record("linear", 1.0, 9.0),
        _record("lightgbm", 2.0, 12.0),
    )
    # Budget 150 s: the reserve is kept between 4.5 s (3%) and 75 s (50%).
    config = TrainConfig(target="y", refit_full=refit_full, time_budget_s=150, ensembles=False)
    assert _final_fit_reserve(outcome, _context(), config) == pytest.approx(expected)


def test_with_ensembles_the_reserve_covers_a_soft_vote_of_the_best_two() -> None:
    outcome = _outcome(
        _record("baseline", 9.0, 0.3),
        _record("linear", 1.0, 9.0),  # 3 s per fit
        _record("lightgbm", 2.0, 12.0),  # 4 s per fit
        _record("xgboost", 3.0, 15.0),  # not among the best two
        _record("random_forest", 4.0, 30.0),
    )
    config = TrainConfig(target="y", refit_full=True, time_budget_s=150)
    # (3 + 4) s x 1.3 for more rows x 2 (dev fit and all-rows refit) + 1 s fixed.
    assert _final_fit_reserve(outcome, _context(), config) == pytest.approx(7 * 1.3 * 2 + 1.0)


def test_a_stacked_ensemble_needs_one_fit_per_inner_fold_and_member() -> None:
    members = [_record("linear", 1.0, 9.0), _record("lightgbm", 2.0, 12.0)]
    config = TrainConfig(target="y", refit_full=True)
    # (3 s + 4 s) per fit x (5 inner folds + 1) x 1.3 x 2 (dev fit and all-rows refit).
    assert _final_fit_seconds(members, 5, config) == pytest.approx(7.0 * 6 * 1.3 * 2)
    # Voting fits each member once; blending once on 75% of the rows.
    assert _final_fit_seconds(members, 5, config, "soft_voting") == pytest.approx(7.0 * 1.3 * 2)
    assert _final_fit_seconds(members, 5, config, "blending") == pytest.approx(7.0 * 0.75 * 1.3 * 2)


def test_an_ensemble_that_would_overrun_the_budget_is_not_fitted() -> None:
    ctx = _context()
    rng = np.random.default_rng(1)
    # Two models whose out-of-fold errors are independent: their average is clearly better.
    ranked = []
    for family in ("linear", "random_forest"):
        oof = ctx.y + rng.normal(scale=1.0, size=len(ctx.y))
        rmse = float(np.sqrt(np.mean((oof - ctx.y) ** 2)))
        ranked.append(TrialRecord(CandidateSpec(family=family), FoldResult([rmse], oof, 0.5)))
    config = TrainConfig(target="y", refit_full=False)
    _model, _oof, roomy = _final_model(ranked, ctx, config, time.monotonic() + 3600)
    assert roomy is not None and roomy["chosen"] is not None
    model, _oof, tight = _final_model(ranked, ctx, config, time.monotonic())
    assert tight is not None and tight["chosen"] is None
    assert "would need about" in tight["skipped"]
    assert type(model).__name__ == "Pipeline"  # the best single model instead


def test_reserve_stays_within_a_share_of_the_budget() -> None:
    slow = _outcome(_record("linear", 1.0, 300.0))
    config = TrainConfig(target="y", ensembles=False, time_budget_s=60)
    assert _final_fit_reserve(slow, _context(), config) == pytest.approx(30.0)
    assert _final_fit_reserve(SearchOutcome(), _context(), config) == pytest.approx(1.8)


def test_a_trial_past_the_deadline_stops_between_folds_once_a_model_has_a_score() -> None:
    ctx = _context(n_folds=3)
    seen: list[str] = []
    deadline = time.monotonic() + 3600

    def reserve(out: SearchOutcome) -> float:
        # Once the linear model has scored, the search has one millisecond left: the next
        # trial starts (its family has no timing yet) but gives up after its first fold.
        return deadline - time.monotonic() - 0.001 if "linear" in out.best_by_family else 0.0

    outcome = run_search(
        ctx,
        ["baseline", "linear", "lightgbm"],
        deadline=deadline,
        max_trials=10,
        should_stop=lambda: False,
        on_trial=lambda _out, record: seen.append(record.spec.family),
        reserve=reserve,
    )
    assert seen == ["baseline", "linear"]
    assert outcome.abandoned == 1
    assert "lightgbm" not in outcome.best_by_family


def test_the_first_real_model_is_never_abandoned() -> None:
    outcome = run_search(
        _context(n_folds=3),
        ["baseline", "linear"],
        deadline=time.monotonic() + 3600,
        max_trials=2,
        should_stop=lambda: False,
        on_trial=lambda _out, _record: None,
        reserve=lambda out: 3600.0 if out.trials_done else 0.0,
    )
    # The reserve ends the search after the baseline; nothing is abandoned midway.
    assert outcome.trials_done == 1 and outcome.abandoned == 0


def test_a_costly_member_is_left_out_when_the_ensemble_would_overrun() -> None:
    ctx = _context()
    rng = np.random.default_rng(1)
    ranked = []
    # Three models with independent errors; the forest's fits (an hour each) can't fit.
    for family, seconds in (("linear", 0.3), ("lightgbm", 0.3), ("random_forest", 3 * 3600)):
        oof = ctx.y + rng.normal(scale=1.0, size=len(ctx.y))
        rmse = float(np.sqrt(np.mean((oof - ctx.y) ** 2)))
        ranked.append(
            TrialRecord(CandidateSpec(family=family), FoldResult([rmse] * 3, oof, seconds))
        )
    ranked.sort(key=lambda r: r.result.mean)  # type: ignore[union-attr]
    config = TrainConfig(target="y", refit_full=False)
    model, _oof, info = _final_model(ranked, ctx, config, time.monotonic() + 60)
    assert info is not None and info["chosen"] is not None
    assert info["members"] == ["linear", "lightgbm"] or info["members"] == ["lightgbm", "linear"]
    assert "random_forest was left out to save time" in info["skipped"]
    assert {name for name, _ in model.estimators} <= set(info["members"])
