"""Train options → Evaluate in real Chromium: threshold objectives, validation schemes and
their API errors, per-class tables, one-vs-rest curves and comparing two models."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import SAMPLES
from tests.e2e.test_train_evaluate import _open_train, _upload
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

_TEXTS = "els => els.map(e => e.textContent || '')"  # SVG text has no innerText


def _small_run(page: Any, name: str, families: set[str]) -> None:
    """A 10 s budget, three trials, the given families and no ensembles."""
    page.fill("#train-budget", "10")
    page.fill("#train-name", name)
    page.click("#train-advanced summary")
    page.fill("#train-max-trials", "3")
    for box in page.locator("#train-families input[type=checkbox]").all():
        box.set_checked(box.get_attribute("value") in families)
    page.locator("#train-ensembles").set_checked(False)


def _train_and_wait(page: Any) -> str:
    """Press Train, wait for the evaluation link and return the new model's id."""
    page.click("[data-testid=train-start]")
    page.wait_for_selector("[data-testid=train-run]", state="visible")
    link = page.locator("[data-testid=see-evaluation]")
    link.wait_for(state="visible", timeout=120_000)
    assert page.locator("[data-testid=train-error]").is_hidden()
    return str(page.url.split("model=", 1)[1].split("&", 1)[0])


def test_train_two_models_with_threshold_objectives_then_compare_them(
    page: Any, server: AppServer
) -> None:
    dataset_id = _upload(page, server, SAMPLES / "credit_data.csv")

    _open_train(page, dataset_id)
    page.select_option("#train-target", "Status")
    _small_run(page, "credit linear", {"baseline", "linear"})
    page.select_option("#train-cv", "holdout")
    page.fill("#train-seed", "7")
    page.select_option("#train-threshold-objective", "recall")
    page.locator("[data-testid=train-threshold-value]").wait_for(state="visible")
    assert page.locator("[data-testid=train-cost-matrix]").is_hidden()
    page.fill("#train-threshold-value", "0.8")
    first = _train_and_wait(page)

    _open_train(page, dataset_id)
    page.select_option("#train-target", "Status")
    _small_run(page, "credit lightgbm", {"baseline", "lightgbm"})
    page.select_option("#train-threshold-objective", "cost")
    page.locator("[data-testid=train-cost-matrix]").wait_for(state="visible")
    page.fill("#cost-fn", "10")
    second = _train_and_wait(page)
    assert second != first

    page.goto(f"{server.base_url}/stages/evaluate?model={first}")
    assert "reaches recall" in page.locator("#evaluate-app").inner_text()
    page.goto(f"{server.base_url}/stages/evaluate?model={second}")
    assert "lowest total cost" in page.locator("#evaluate-app").inner_text()

    # Binary evaluations now have a per-class table; supports add up to the held-out rows.
    rows = page.locator("[data-testid=per-class] tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.class)") == ["bad", "good"]
    supports = [int(t) for t in page.locator("[data-testid=support]").all_inner_texts()]
    held_out = page.locator("[data-testid=metrics]").get_attribute("data-n-rows")
    assert held_out is not None and sum(supports) == int(held_out)

    # Compare with the other model, picked from the multi-select.
    choices = page.locator("#compare-with option").all_inner_texts()
    assert any(c.startswith("credit linear") for c in choices), choices
    page.select_option("#compare-with", label=next(c for c in choices if "credit linear" in c))
    page.click("[data-testid=compare-run]")
    page.wait_for_url("**compare=*")
    headers = page.locator("[data-testid=compare] thead th").all_inner_texts()[1:]
    assert len(headers) == 2
    assert headers[0].startswith("credit lightgbm") and headers[1].startswith("credit linear")
    auc = page.locator("[data-testid=compare] tr[data-metric=roc_auc] td.num")
    assert auc.count() == 2
    assert all("–" in t for t in auc.all_inner_texts())  # each value with its interval
    assert page.locator("[data-testid=compare] td.best-cell").count() >= 1
    page.wait_for_selector("[data-testid=chart-compare-roc] .main-svg", timeout=30_000)
    legend = page.locator("[data-testid=chart-compare-roc] .legendtext").evaluate_all(_TEXTS)
    assert sum("AUC" in t for t in legend) == 2
    assert page.locator("[data-testid=compare-with] option:checked").count() == 1

    # Evaluating on a labelled version lists its per-class metrics too.
    version = page.locator("#other-eval-version option").nth(1).get_attribute("value")
    assert version
    page.select_option("#other-eval-version", version)
    page.click("[data-testid=other-eval-run]")
    page.wait_for_selector("[data-testid=other-eval-per-class]", timeout=60_000)
    other = page.locator("[data-testid=other-eval-per-class] tbody tr")
    assert other.evaluate_all("rs => rs.map(r => r.dataset.class)") == ["bad", "good"]


def test_train_form_shows_api_errors_then_a_multiclass_evaluation_per_class(
    page: Any, server: AppServer
) -> None:
    dataset_id = _upload(page, server, SAMPLES / "penguins.csv")
    _open_train(page, dataset_id)
    page.select_option("#train-target", "species")
    _small_run(page, "penguins", {"baseline", "linear"})
    error = page.locator("[data-testid=train-error]")

    page.select_option("#train-cv", "group")
    page.click("[data-testid=train-start]")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "Training options are invalid" in text
    assert "cv='group' needs group_column" in text
    assert "[type=" not in text and "errors.pydantic.dev" not in text
    assert page.locator("[data-testid=train-run]").is_hidden()

    page.select_option("#train-cv", "auto")
    page.select_option("#train-threshold-objective", "precision")
    page.click("[data-testid=train-start]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=train-error]')"
        ".textContent.includes('target_value')"
    )
    assert page.locator("[data-testid=train-run]").is_hidden()

    page.select_option("#train-threshold-objective", "f1")
    page.select_option("#train-cv", "kfold")
    page.select_option("#train-sensitive", "sex")
    _train_and_wait(page)
    page.click("[data-testid=see-evaluation]")
    page.wait_for_url("**/stages/evaluate?model=*")

    rows = page.locator("[data-testid=per-class] tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.class)")) == [
        "Adelie",
        "Chinstrap",
        "Gentoo",
    ]
    page.wait_for_selector("[data-testid=chart-roc_ovr] .main-svg", timeout=30_000)
    page.wait_for_selector("[data-testid=chart-pr_ovr] .main-svg")
    page.wait_for_selector("[data-testid=chart-calibration] .main-svg")
    legend = page.locator("[data-testid=chart-roc_ovr] .legendtext").evaluate_all(_TEXTS)
    assert {t.split(" ", 1)[0] for t in legend} >= {"Adelie", "Chinstrap", "Gentoo"}
    assert page.locator("[data-testid=fairness] [data-column=sex]").count() == 1
