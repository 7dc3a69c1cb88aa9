"""The saved model is refitted on every labelled row; the reported holdout is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import TrainConfig, train

SAMPLES = Path(__file__).resolve().parents[4] / "src" / "narrate" / "samples"


@pytest.mark.parametrize("refit_full", [True, False], ids=["refit-full", "dev-only"])
def test_final_pipeline_is_refitted_on_all_rows(refit_full: bool) -> None:
    df = pd.read_csv(SAMPLES / "penguins.csv")
    config = TrainConfig(
        target="species",
        max_trials=2,
        families=["linear"],
        ensembles=False,
        n_jobs=1,
        refit_full=refit_full,
    )
    result = train(df, config)
    if not refit_full:
        assert result.final_pipeline is None
        assert result.deployable is result.best_pipeline
        return
    assert result.final_pipeline is not None
    assert result.deployable is result.final_pipeline is not result.best_pipeline
    X = df.drop(columns=["species"])
    coef_dev = result.best_pipeline[-1].coef_
    coef_all = result.final_pipeline[-1].coef_
    assert not np.allclose(coef_dev, coef_all), "the refit saw the held-out rows too"
    assert result.to_dict()["refit_full"] is True
    assert set(result.final_pipeline.predict(X)) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_binary_model_with_a_tuned_threshold_is_refitted_inside_the_wrapper() -> None:
    df = pd.read_csv(SAMPLES / "credit_data.csv").head(1500)
    config = TrainConfig(
        target="Status",
        max_trials=1,
        families=["linear"],
        ensembles=False,
        n_jobs=1,
        threshold={"objective": "f1"},
    )
    result = train(df, config)
    dev_model = result.best_pipeline.estimator.estimator
    full_model = result.final_pipeline.estimator.estimator
    assert full_model is not dev_model
    assert result.final_pipeline.threshold == result.best_pipeline.threshold
    assert not np.allclose(dev_model[-1].coef_, full_model[-1].coef_)
