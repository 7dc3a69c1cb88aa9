"""Trees compiled to native code score as the interpreted serving copy does.

Real models (LightGBM, XGBoost, scikit-learn's forests and histogram boosting, and a
soft-voting ensemble with a tree member) are trained on the samples, exported to the
serving format, compiled with TL2cgen and a real C compiler, and compared with the same
serving copy before compiling (to 1e-6, and the same labels) on held-out rows, rows with
unseen categories and rows with every value missing, for one row and for thousands.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.unit.core.test_serving_fast import TASKS, awkward, split, trained

from narrate.core import compiled_trees
from narrate.core.serving import ServingModel

pytestmark = pytest.mark.skipif(
    compiled_trees.compiler() is None, reason="no C compiler or TL2cgen here"
)

TREE_FAMILIES = ["lightgbm", "xgboost", "random_forest", "hist_gradient_boosting", "soft_voting"]


def _fresh(model: ServingModel) -> ServingModel:
    """A copy of a serving model with nothing compiled attached."""
    return ServingModel(copy.deepcopy(model.manifest), dict(model.arrays))


def _many(rows: pd.DataFrame, n: int = 5_000) -> pd.DataFrame:
    return pd.concat([rows] * (n // len(rows) + 1), ignore_index=True).head(n)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", TREE_FAMILIES)
def test_compiled_trees_give_the_same_outputs(family: str, task: str, tmp_path: Path) -> None:
    _, serving = trained(family, task)
    interpreted, compiled = _fresh(serving), _fresh(serving)
    assert compiled.use_compiled_trees(tmp_path, compile_missing=True) == len(compiled.tree_models)
    assert all(t.compiled is not None for t in compiled.tree_models)
    _, _, test = split(task)
    for rows in [*awkward(test), test.head(1), _many(test)]:
        expected = interpreted.predict_output(rows)
        got = compiled.predict_output(rows)
        assert got.shape == expected.shape
        # Float32 models (XGBoost) and softmax sum leaves in float32 in the generated C,
        # as Treelite's interpreter does in its own order: float32 rounding (~1e-7).
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
        if task != "regression":
            np.testing.assert_array_equal(compiled.predict(rows), interpreted.predict(rows))


def test_a_library_is_compiled_once_and_shared(tmp_path: Path) -> None:
    _, serving = trained("lightgbm", "binary")
    first = _fresh(serving)
    assert first.use_compiled_trees(tmp_path, compile_missing=True) == 1
    libraries = list(tmp_path.glob("trees-*.so"))
    assert len(libraries) == 1
    built = libraries[0].stat().st_mtime_ns
    # Another process (here: another load) finds it and does not compile again, even
    # when it may not compile at all.
    second = _fresh(serving)
    assert second.use_compiled_trees(tmp_path, compile_missing=False) == 1
    assert second.use_compiled_trees(tmp_path, compile_missing=True) == 1
    assert libraries[0].stat().st_mtime_ns == built
    assert not list(tmp_path.glob(".building-*"))  # no temporary file left behind


def test_nothing_is_compiled_when_not_asked(tmp_path: Path) -> None:
    _, serving = trained("lightgbm", "regression")
    model = _fresh(serving)
    assert model.use_compiled_trees(tmp_path, compile_missing=False) == 0
    assert not list(tmp_path.iterdir())
    assert all(t.compiled is None for t in model.tree_models)


def test_without_a_compiler_the_model_keeps_its_predictors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no gcc, cc or clang to be found
    assert compiled_trees.compiler() is None
    _, serving = trained("lightgbm", "binary")
    model = _fresh(serving)
    assert model.use_compiled_trees(tmp_path, compile_missing=True) == 0
    _, _, test = split("binary")
    np.testing.assert_allclose(
        model.predict_output(test), serving.predict_output(test), rtol=0, atol=1e-12
    )


def test_a_linear_model_has_nothing_to_compile(tmp_path: Path) -> None:
    _, serving = trained("linear", "binary")
    model = _fresh(serving)
    assert not model.has_trees
    assert model.use_compiled_trees(tmp_path, compile_missing=True) == 0
    assert not os.listdir(tmp_path)
