"""The NumPy scoring path of a serving model gives what the pandas path gives.

Models are trained on the sample data as Narrate's upload reads it (Polars, type
inference, then pandas), exported to the serving format and loaded back. The NumPy path
(``predict_output``, and ``predict``/``predict_proba`` that use it) must give the pandas
path's numbers to 1e-9 on held-out rows, single rows, rows with unseen categories and
missing values; rows read by :func:`check_rows` must score as the joblib pipeline scores
the same raw rows.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from narrate.core.automl import CandidateSpec, build_pipeline
from narrate.core.automl.ensembles import build_ensemble
from narrate.core.automl.export import export_serving
from narrate.core.automl.threshold import apply_threshold
from narrate.core.data.types import infer_types
from narrate.core.serving import ServingModel, load_serving, save_serving
from narrate.core.signature import build_signature, check_rows
from narrate.errors import InvalidInput

SAMPLES = Path(__file__).parents[3] / "src" / "narrate" / "samples"
TASKS = {
    "binary": ("credit_data", "Status"),
    "multiclass": ("penguins", "species"),
    "regression": ("hitters", "Salary"),
}
SMALL: dict[str, dict[str, Any]] = {
    "linear": {},
    "random_forest": {"n_estimators": 10, "min_samples_leaf": 3},
    "hist_gradient_boosting": {"max_iter": 20},
    "lightgbm": {"n_estimators": 30, "num_leaves": 15},
    "xgboost": {"n_estimators": 30, "max_depth": 4},
}


@cache
def uploaded(name: str) -> pd.DataFrame:
    """A sample as Narrate's upload types it (``yes``/``no`` become booleans ...)."""
    text = pl.read_csv(SAMPLES / f"{name}.csv", infer_schema_length=0)
    typed, _ = infer_types(text)
    return typed.to_pandas()


@cache
def split(task: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    name, target = TASKS[task]
    frame = uploaded(name).dropna(subset=[target]).reset_index(drop=True)
    test = frame.sample(frac=0.25, random_state=0)
    train = frame.drop(index=test.index)
    return train.drop(columns=[target]), train[target], test.drop(columns=[target])


@cache
def trained(family: str, task: str) -> tuple[Any, ServingModel]:
    """A fitted pipeline (or soft-voting ensemble) and its serving copy, cached."""
    X, y, _ = split(task)
    if family == "soft_voting":
        members = [
            (f, build_pipeline(CandidateSpec(f, dict(SMALL[f])), task, seed=0))
            for f in ("lightgbm", "linear")
        ]
        model: Any = build_ensemble("soft_voting", members, task=task, n_folds=3, seed=0)
    else:
        model = build_pipeline(CandidateSpec(family, dict(SMALL[family])), task, seed=0)
    model.fit(X, y)
    return model, _serving(model, X.head(200), task)


def _serving(model: Any, sample: pd.DataFrame, task: str) -> ServingModel:
    manifest, arrays = export_serving(model, sample, task=task)
    return ServingModel(manifest, arrays)


def awkward(rows: pd.DataFrame) -> list[pd.DataFrame]:
    """The rows, then the rows with unseen categories, then with every value missing."""
    unseen, missing = rows.copy(), rows.copy()
    for column in rows.columns:
        if pd.api.types.is_numeric_dtype(rows[column]) and not pd.api.types.is_bool_dtype(
            rows[column]
        ):
            missing[column] = np.nan
        else:
            if not pd.api.types.is_bool_dtype(rows[column]):
                unseen[column] = "never seen in training"
            missing[column] = None
    return [rows, unseen, missing]


def assert_same(fast: np.ndarray, reference: np.ndarray) -> None:
    assert fast.shape == reference.shape
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-9)


FAMILIES = [*SMALL, "soft_voting"]


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", FAMILIES)
def test_numpy_path_gives_the_pandas_paths_numbers(family: str, task: str) -> None:
    _, copy = trained(family, task)
    _, _, test = split(task)
    for rows in awkward(test):
        reference = copy._pandas_output(rows)
        assert_same(copy.predict_output(rows), reference)
        if task != "regression":
            assert_same(copy.predict_proba(rows), reference)
    for i in range(5):  # single rows, the size Deploy answers most
        row = test.iloc[[i]]
        assert_same(copy.predict_output(row), copy._pandas_output(row))


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", ["lightgbm", "random_forest", "linear", "soft_voting"])
def test_checked_rows_score_as_the_joblib_pipeline_scores_the_raw_rows(
    family: str, task: str
) -> None:
    model, copy = trained(family, task)
    X, _, test = split(task)
    signature = build_signature(X, copy.columns)
    for rows in awkward(test.head(40)):
        records = json.loads(rows.to_json(orient="records"))
        checked = check_rows(signature, records)
        out = copy.predict_output(checked.columns)
        assert_same(out, copy._pandas_output(checked.frame))
        if task == "regression":
            np.testing.assert_allclose(out, model.predict(rows), rtol=1e-6)
        else:
            np.testing.assert_allclose(out, model.predict_proba(rows), atol=1e-6)
            labels = copy.labels_from_output(out).astype(str)
            assert list(labels) == list(np.asarray(model.predict(rows)).astype(str))
        one = check_rows(signature, records[:1])
        assert_same(copy.predict_output(one.columns), out[:1])


def test_labels_from_output_apply_the_tuned_threshold_as_predict_does() -> None:
    X, y, test = split("binary")
    pipe = build_pipeline(CandidateSpec("lightgbm", dict(SMALL["lightgbm"])), "binary", seed=0)
    tuned = apply_threshold(pipe.fit(X, y), 0.2, "bad", X.head(10), y.head(10))
    copy = _serving(tuned, X.head(200), "binary")
    out = copy.predict_output(test)
    labels = copy.labels_from_output(out)
    assert list(labels) == list(copy.predict(test)) == list(tuned.predict(test))
    # The threshold, not the most likely class, decides: more rows are "bad" at 0.2.
    assert (labels == "bad").sum() > (np.argmax(out, axis=1) == 0).sum()
    values = trained("lightgbm", "regression")[1]
    hitters = split("regression")[2]
    assert_same(values.labels_from_output(values.predict_output(hitters)), values.predict(hitters))


def _unusual(rows: pd.DataFrame, case: str) -> pd.DataFrame:
    if case == "nullable integers":
        return rows.astype({"Age": "Int64", "Seniority": "Int64"})
    if case == "categorical dtype":
        return rows.astype({"Home": "category", "Job": "category"})
    if case == "numbers as text":
        texts = [None if pd.isna(v) else f" {v} " for v in rows["Income"]]
        return rows.astype({"Income": object}).assign(Income=texts)
    if case == "mixed objects":
        odd = [41, 41.0, b"rent", pd.NA, float("nan"), None, True]
        return rows.astype({"Home": object}).assign(Home=odd + list(rows["Home"].iloc[7:]))
    if case == "booleans as text":
        return rows.astype({"Records": str})
    return pd.concat([rows.drop(columns=["Age"]), rows[["Age", "Age"]]], axis=1)


UNUSUAL = [
    "nullable integers",
    "categorical dtype",
    "numbers as text",
    "mixed objects",
    "booleans as text",
    "duplicate names",
]


@pytest.mark.parametrize("case", UNUSUAL)
def test_rows_pandas_reads_its_own_way_score_as_the_pandas_path_scores_them(case: str) -> None:
    _, copy = trained("lightgbm", "binary")
    frame = _unusual(split("binary")[2].head(30), case)
    try:
        reference = copy._pandas_output(frame)
    except Exception as exc:  # then the NumPy path must fail alike
        with pytest.raises(type(exc)):
            copy.predict_output(frame)
        return
    assert_same(copy.predict_output(frame), reference)


def test_dates_score_the_same_given_as_datetimes_or_as_text() -> None:
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {
            "when": pd.Timestamp("1960-01-01")
            + pd.to_timedelta(rng.integers(0, 30_000, n), "D")
            + pd.to_timedelta(rng.integers(0, 24, n), "h"),
            "amount": rng.normal(size=n),
            "shop": rng.choice(["north", "south", "east"], n),
        }
    )
    X.loc[::13, "when"] = pd.NaT
    y = pd.Series(np.where(X["when"].dt.month.fillna(1) > 6, "late", "early"))
    for family in ("linear", "lightgbm"):
        pipe = build_pipeline(CandidateSpec(family, dict(SMALL[family])), "binary", seed=0)
        copy = _serving(pipe.fit(X, y), X.head(100), "binary")
        as_text = X.assign(when=X["when"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        for rows in (X, X.head(1), X.iloc[[13]], as_text):
            assert_same(copy.predict_output(rows), copy._pandas_output(rows))
        signature = build_signature(X)
        checked = check_rows(signature, json.loads(as_text.to_json(orient="records")))
        assert_same(copy.predict_output(checked.columns), copy._pandas_output(X))
        np.testing.assert_allclose(copy.predict_output(checked.columns), pipe.predict_proba(X))


def test_a_model_with_recipes_scores_columns_through_the_pandas_path() -> None:
    from sklearn.pipeline import Pipeline

    from narrate.core.recipes import RecipeTransformer

    X, y, test = split("binary")
    recipe = {"steps": [{"step": "impute", "columns": ["Income"], "strategy": "median"}]}
    prepared = RecipeTransformer(recipe=recipe).fit(X)
    model = build_pipeline(CandidateSpec("lightgbm", {"n_estimators": 20}), "binary", seed=0)
    whole = Pipeline([("recipe_0", prepared), ("model", model.fit(prepared.transform(X), y))])
    copy = _serving(whole, X.head(100), "binary")
    checked = check_rows(build_signature(X, copy.columns), test.to_dict(orient="records"))
    np.testing.assert_allclose(copy.predict_output(checked.columns), whole.predict_proba(test))
    assert_same(copy.predict_output(test), copy._pandas_output(test))


def test_columns_given_as_arrays_are_checked_like_a_frame() -> None:
    _, copy = trained("lightgbm", "binary")
    _, _, test = split("binary")
    arrays = {c: test[c].to_numpy() for c in test.columns}
    as_lists = {c: test[c].tolist() for c in test.columns}
    assert_same(copy.predict_output(arrays), copy._pandas_output(test))
    assert_same(copy.predict_output(as_lists), copy._pandas_output(test))
    with pytest.raises(InvalidInput, match="Income") as lacking:
        copy.predict_output({c: v for c, v in arrays.items() if c != "Income"})
    assert lacking.value.details == {"missing_columns": ["Income"]}
    with pytest.raises(InvalidInput, match="lengths differ") as ragged:
        copy.predict_output({**arrays, "Age": arrays["Age"][:3]})
    assert ragged.value.details["lengths"]["Age"] == 3
    with pytest.raises(InvalidInput, match="DataFrame or one array per column"):
        copy.predict_output([[1, 2, 3]])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="Give the rows to predict as a pandas DataFrame"):
        copy.predict(arrays)  # type: ignore[arg-type]


def test_a_number_column_holding_words_is_refused_naming_the_column(tmp_path: Path) -> None:
    _, copy = trained("lightgbm", "binary")
    _, _, test = split("binary")
    rows = test.head(3).astype({"Income": object})
    rows.loc[rows.index[1], "Income"] = "plenty"
    with pytest.raises(InvalidInput, match="'Income' must hold numbers") as refused:
        copy.predict_output(rows)
    assert refused.value.details == {"column": "Income"}
    # A copy written to disk and loaded back scores the same.
    path = save_serving(copy.manifest, copy.arrays, tmp_path / "m.serving")
    assert_same(load_serving(path).predict_output(test), copy.predict_output(test))
