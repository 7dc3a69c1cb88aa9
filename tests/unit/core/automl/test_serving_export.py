"""The serving format predicts what the fitted scikit-learn pipeline predicts.

Every family, column preparation, ensemble kind, the tuned threshold, the log target and
recipe steps are translated, written to disk, loaded back and compared row by row with
the original on held-out rows (plus rows with unseen categories and missing values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import CandidateSpec, build_pipeline
from narrate.core.automl.ensembles import build_ensemble
from narrate.core.automl.export import NotExportable, export_serving
from narrate.core.automl.threshold import apply_threshold
from narrate.core.serving import ServingModel, load_serving, save_serving
from narrate.errors import InvalidInput

TASKS = {
    "binary": ("credit", "Status"),
    "multiclass": ("penguins", "species"),
    "regression": ("hitters", "Salary"),
}

SMALL = {
    "baseline": {},
    "linear": {},
    "random_forest": {"n_estimators": 15, "min_samples_leaf": 3},
    "extra_trees": {"n_estimators": 15, "min_samples_leaf": 3},
    "hist_gradient_boosting": {"max_iter": 30},
    "lightgbm": {"n_estimators": 40, "num_leaves": 15},
    "xgboost": {"n_estimators": 40, "max_depth": 4},
}


def _split(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    test = frame.sample(frac=0.25, random_state=0)
    train = frame.drop(index=test.index)
    return train.drop(columns=[target]), train[target], test.drop(columns=[target])


def _roundtrip(model: Any, sample: pd.DataFrame, task: str, folder: Path) -> ServingModel:
    manifest, arrays = export_serving(model, sample, task=task)
    return load_serving(save_serving(manifest, arrays, folder / "model.serving"))


def _assert_same(model: Any, copy: ServingModel, rows: pd.DataFrame, task: str) -> None:
    if task == "regression":
        np.testing.assert_allclose(copy.predict(rows), model.predict(rows), rtol=1e-4)
        return
    np.testing.assert_allclose(copy.predict_proba(rows), model.predict_proba(rows), atol=1e-5)
    assert list(copy.classes_) == list(model.classes_)
    agree = np.mean(copy.predict(rows).astype(str) == np.asarray(model.predict(rows)).astype(str))
    assert agree == 1.0


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", list(SMALL))
def test_every_family_serves_the_same_predictions(
    family: str, task: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    name, target = TASKS[task]
    X, y, test = _split(request.getfixturevalue(name), target)
    pipe = build_pipeline(CandidateSpec(family, dict(SMALL[family])), task, seed=0).fit(X, y)
    copy = _roundtrip(pipe, X.head(200), task, tmp_path)
    _assert_same(pipe, copy, test, task)


@pytest.mark.parametrize("imbalance", ["smote", "class_weight"])
def test_resampled_and_weighted_candidates_serve_the_same(
    imbalance: str, credit: pd.DataFrame, tmp_path: Path
) -> None:
    X, y, test = _split(credit, "Status")
    spec = CandidateSpec("lightgbm", {"n_estimators": 30}, imbalance=imbalance)
    pipe = build_pipeline(spec, "binary", seed=0).fit(X, y)
    _assert_same(pipe, _roundtrip(pipe, X.head(200), "binary", tmp_path), test, "binary")


def test_feature_selection_and_dropped_columns_carry_over(
    hitters: pd.DataFrame, tmp_path: Path
) -> None:
    X, y, test = _split(hitters, "Salary")
    spec = CandidateSpec(
        "linear", {}, selection="mutual_info", selection_k=6, drop_columns=("League",)
    )
    pipe = build_pipeline(spec, "regression", seed=0).fit(X, y)
    copy = _roundtrip(pipe, X.head(100), "regression", tmp_path)
    _assert_same(pipe, copy, test, "regression")
    assert copy.manifest["model"]["select"] == list(pipe.named_steps["select"].selected_)


def test_log_target_models_serve_on_the_target_scale(hitters: pd.DataFrame, tmp_path: Path) -> None:
    X, y, test = _split(hitters, "Salary")
    for family in ("linear", "xgboost"):
        params = {**SMALL[family], "target_transform": "log"}
        pipe = build_pipeline(CandidateSpec(family, params), "regression", seed=0).fit(X, y)
        copy = _roundtrip(pipe, X.head(100), "regression", tmp_path)
        _assert_same(pipe, copy, test, "regression")
        assert copy.predict(test).min() > 0


@pytest.mark.parametrize("kind", ["soft_voting", "stacking", "blending"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_ensembles_serve_the_same(
    kind: str, task: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    name, target = TASKS[task]
    X, y, test = _split(request.getfixturevalue(name), target)
    members = [
        (family, build_pipeline(CandidateSpec(family, dict(SMALL[family])), task, seed=0))
        for family in ("lightgbm", "linear", "xgboost")
    ]
    ensemble = build_ensemble(kind, members, task=task, n_folds=3, seed=0, weights=[0.5, 0.2, 0.3])
    ensemble.fit(X, y)
    _assert_same(ensemble, _roundtrip(ensemble, X.head(200), task, tmp_path), test, task)


def test_a_tuned_threshold_decides_the_served_labels(credit: pd.DataFrame, tmp_path: Path) -> None:
    X, y, test = _split(credit, "Status")
    spec = CandidateSpec("hist_gradient_boosting", {"max_iter": 30})
    pipe = build_pipeline(spec, "binary", seed=0)
    tuned = apply_threshold(pipe.fit(X, y), 0.2, "bad", X.head(10), y.head(10))
    copy = _roundtrip(tuned, X.head(200), "binary", tmp_path)
    _assert_same(tuned, copy, test, "binary")
    assert copy.threshold == {"threshold": 0.2, "pos_label": "bad"}
    # At 0.2 more rows are called "bad" than the most likely class would give.
    assert (copy.predict(test) == "bad").sum() > (np.argmax(copy.predict_proba(test), 1) == 0).sum()


def test_dates_become_parts_in_the_served_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
            "amount": rng.normal(size=n),
            "shop": rng.choice(["north", "south", "east"], n),
        }
    )
    X.loc[::13, "when"] = pd.NaT
    y = pd.Series(np.where(X["when"].dt.month.fillna(1) > 6, "late", "early"))
    for family in ("linear", "lightgbm"):
        pipe = build_pipeline(CandidateSpec(family, dict(SMALL[family])), "binary", seed=0)
        pipe.fit(X, y)
        _assert_same(pipe, _roundtrip(pipe, X.head(100), "binary", tmp_path), X.tail(100), "binary")


def test_recipe_steps_run_first_in_the_served_model(credit: pd.DataFrame, tmp_path: Path) -> None:
    from sklearn.pipeline import Pipeline

    from narrate.core.recipes import RecipeTransformer

    X, y, test = _split(credit, "Status")
    recipe = {
        "steps": [
            {"step": "impute", "columns": ["Income", "Assets"], "strategy": "median"},
            {"step": "scale", "columns": ["Income", "Assets", "Amount"]},
            {"step": "encode", "columns": ["Home", "Job"], "method": "one_hot"},
        ]
    }
    prepared = RecipeTransformer(recipe=recipe).fit(X)
    model = build_pipeline(CandidateSpec("lightgbm", {"n_estimators": 30}), "binary", seed=0)
    model.fit(prepared.transform(X), y)
    whole = Pipeline([("recipe_0", prepared), ("model", model)])
    copy = _roundtrip(whole, X.head(200), "binary", tmp_path)
    assert len(copy.manifest["recipes"]) == 1
    _assert_same(whole, copy, test, "binary")


def test_a_model_with_an_unknown_step_is_refused_with_the_reason(credit: pd.DataFrame) -> None:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    X, y, _ = _split(credit, "Status")
    pipe = build_pipeline(CandidateSpec("linear", {}), "binary", seed=0)
    pipe = Pipeline([*pipe.steps[:-1], ("model", KNeighborsClassifier())]).fit(X, y)
    with pytest.raises(NotExportable, match="KNeighborsClassifier"):
        export_serving(pipe, X.head(50), task="binary")


def test_served_model_names_missing_columns_and_refuses_other_files(
    credit: pd.DataFrame, tmp_path: Path
) -> None:
    X, y, test = _split(credit, "Status")
    pipe = build_pipeline(CandidateSpec("linear", {}), "binary", seed=0).fit(X, y)
    copy = _roundtrip(pipe, X.head(50), "binary", tmp_path)
    with pytest.raises(InvalidInput, match="Income"):
        copy.predict(test.drop(columns=["Income"]))
    bogus = tmp_path / "not-a-model.serving"
    bogus.write_bytes(b"plain text")
    with pytest.raises(InvalidInput, match=r"not-a-model\.serving"):
        load_serving(bogus)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_early_stopped_boosters_serve_their_best_rounds_only(
    family: str, credit: pd.DataFrame, tmp_path: Path
) -> None:
    X, y, test = _split(credit, "Status")
    params = {"n_estimators": 600, "learning_rate": 0.5}
    pipe = build_pipeline(CandidateSpec(family, params), "binary", seed=0).fit(X, y)
    assert pipe.named_steps["model"].n_rounds_ < 600  # it did stop early
    _assert_same(pipe, _roundtrip(pipe, X.head(200), "binary", tmp_path), test, "binary")


def test_loading_a_served_model_imports_neither_scikit_learn_nor_polars(
    credit: pd.DataFrame, tmp_path: Path
) -> None:
    import subprocess
    import sys

    X, y, test = _split(credit, "Status")
    pipe = build_pipeline(CandidateSpec("lightgbm", {"n_estimators": 30}), "binary", seed=0)
    _roundtrip(pipe.fit(X, y), X.head(100), "binary", tmp_path)
    rows = tmp_path / "rows.json"
    test.head(3).to_json(rows, orient="records")
    code = (
        "import sys, pandas as pd; from narrate.core.serving import load_serving; "
        f"m = load_serving({str(tmp_path / 'model.serving')!r}); "
        f"p = m.predict(pd.read_json({str(rows)!r}, orient='records')); "
        "print(len(p), 'sklearn' in sys.modules, 'polars' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "False", "False"]
