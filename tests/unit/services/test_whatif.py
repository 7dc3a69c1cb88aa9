"""What-if and dependence on loaded predictors of every task: regression values,
multiclass probabilities of the row's predicted class (or a chosen one), the serving copy
and the joblib pipeline answering alike, and columns that can't be varied refused.

Real pipelines are fitted on the bundled samples; no database is needed because
:func:`score_variants` and :func:`sample_dependence` take a loaded predictor.
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl.candidates import CandidateSpec, build_pipeline
from narrate.core.automl.export import export_serving
from narrate.core.serving import load_serving, save_serving
from narrate.core.signature import build_signature
from narrate.errors import InvalidInput
from narrate.services.predict import Predictor
from narrate.services.whatif import sample_dependence, score_variants


def _sample(name: str, target: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(str(resources.files("narrate") / "samples" / f"{name}.csv"))
    frame = frame[frame[target].notna()].reset_index(drop=True)
    return frame.drop(columns=[target]), frame[target]


def _predictor(model: Any, X: pd.DataFrame, task: str, *, engine: str = "joblib") -> Predictor:
    classes = [str(c) for c in model.classes_] if task != "regression" else None
    loaded = model
    if engine == "serving":
        manifest, arrays = export_serving(model, X.head(200), task=task)
        with tempfile.TemporaryDirectory() as tmp:
            loaded = load_serving(save_serving(manifest, arrays, Path(tmp) / "m.serving"))
    return Predictor(
        model_version_id="unit",
        task=task,
        classes=classes,
        signature=build_signature(X),
        engine=engine,
        engine_note=None,
        model=loaded,
    )


def _row(X: pd.DataFrame, i: int = 0) -> dict[str, Any]:
    return {k: (None if pd.isna(v) else v) for k, v in X.iloc[i].to_dict().items()}


@pytest.fixture(scope="module")
def hitters() -> tuple[Any, pd.DataFrame]:
    X, y = _sample("hitters", "Salary")
    spec = CandidateSpec("lightgbm", {"n_estimators": 30})
    return build_pipeline(spec, "regression", seed=0).fit(X, y), X


@pytest.fixture(scope="module")
def penguins() -> tuple[Any, pd.DataFrame]:
    X, y = _sample("penguins", "species")
    spec = CandidateSpec("lightgbm", {"n_estimators": 30})
    return build_pipeline(spec, "multiclass", seed=0).fit(X, y), X


def test_regression_what_if_answers_values_and_their_deltas(hitters: Any) -> None:
    model, X = hitters
    predictor = _predictor(model, X, "regression")
    row = _row(X)
    body = score_variants(predictor, row, [{"CRBI": 30}, {"CRBI": 1500}])
    assert body["explained_class"] is None and body["target"] == "predicted value"
    assert "probabilities" not in body["base"]
    frame = pd.DataFrame([row, {**row, "CRBI": 30}, {**row, "CRBI": 1500}]).astype(
        X.dtypes.to_dict()
    )
    expected = model.predict(frame)
    outputs = [body["base"]["output"]] + [v["output"] for v in body["variants"]]
    assert outputs == pytest.approx(expected.tolist(), rel=1e-6)
    assert body["variants"][1]["delta"] == pytest.approx(expected[2] - expected[0], rel=1e-6)


def test_multiclass_what_if_follows_the_class_predicted_for_the_row(penguins: Any) -> None:
    model, X = penguins
    predictor = _predictor(model, X, "multiclass")
    row = _row(X)
    body = score_variants(predictor, row, [{"flipper_length_mm": 230.0, "bill_depth_mm": 14.0}])
    predicted = body["base"]["prediction"]
    assert body["explained_class"] == predicted
    assert body["base"]["output"] == pytest.approx(body["base"]["probabilities"][predicted])
    variant = body["variants"][0]
    assert variant["output"] == pytest.approx(variant["probabilities"][predicted])


def test_multiclass_dependence_explains_the_first_class_or_a_chosen_one(penguins: Any) -> None:
    model, X = penguins
    predictor = _predictor(model, X, "multiclass")
    sample = X.sample(60, random_state=0)
    first = sample_dependence(predictor, sample, "island", grid_points=5, ice_rows=3)
    assert first["kind"] == "categorical"
    assert first["explained_class"] == str(model.classes_[0])
    assert set(first["grid"]) == set(X["island"].dropna())
    gentoo = sample_dependence(
        predictor, sample, "flipper_length_mm", grid_points=8, ice_rows=0, explained_class="Gentoo"
    )
    assert gentoo["target"] == "probability of class 'Gentoo'" and gentoo["ice"] == []
    assert gentoo["average"][-1] > gentoo["average"][0]
    assert [c["row"] for c in first["ice"]] == [int(i) for i in sample.index[:3]]


def test_the_serving_copy_and_the_pipeline_give_the_same_curves(hitters: Any) -> None:
    model, X = hitters
    sample = X.sample(80, random_state=1)
    curves = [
        sample_dependence(
            _predictor(model, X, "regression", engine=engine),
            sample,
            "Years",
            grid_points=10,
            ice_rows=5,
        )
        for engine in ("serving", "joblib")
    ]
    assert curves[0]["grid"] == curves[1]["grid"]
    np.testing.assert_allclose(curves[0]["average"], curves[1]["average"], rtol=1e-5)


def test_a_date_column_is_refused_and_other_columns_vary_around_it() -> None:
    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame(
        {
            "x": rng.uniform(0, 10, n),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
        }
    )
    y = pd.Series(2 * X["x"] + rng.normal(size=n))
    model = build_pipeline(CandidateSpec("linear"), "regression", seed=0).fit(X, y)
    predictor = _predictor(model, X, "regression")
    with pytest.raises(InvalidInput) as caught:
        sample_dependence(predictor, X, "when", grid_points=5, ice_rows=0)
    assert caught.value.code == "unsupported_column"
    assert caught.value.details == {"parameter": "column", "column": "when", "type": "datetime"}
    found = sample_dependence(predictor, X, "x", grid_points=5, ice_rows=0)
    assert found["average"][-1] - found["average"][0] > 10


def test_a_class_for_a_regressor_is_refused(hitters: Any) -> None:
    model, X = hitters
    with pytest.raises(InvalidInput) as caught:
        sample_dependence(
            _predictor(model, X, "regression"),
            X.head(10),
            "Years",
            grid_points=3,
            ice_rows=0,
            explained_class="high",
        )
    assert caught.value.code == "invalid_class"
    assert caught.value.details["parameter"] == "class"
