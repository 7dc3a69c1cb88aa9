"""Partial dependence and ICE curves: grids from the data, one scoring call, the mean of
the curves is the partial dependence, and real models move the way their data says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from narrate.core.explain.dependence import dependence, grid_of
from narrate.errors import InvalidInput


def _monotone(n: int = 400) -> tuple[dict[str, np.ndarray], GradientBoostingRegressor]:
    """y rises with x, ignores noise; a fitted model of it and its columns."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, n)
    noise = rng.normal(size=n)
    y = 3 * x + rng.normal(scale=0.5, size=n)
    model = GradientBoostingRegressor(n_estimators=60, random_state=0)
    model.fit(np.column_stack([x, noise]), y)
    return {"x": x, "noise": noise}, model


class _Counted:
    """A score function over a fitted model that counts its calls and rows."""

    def __init__(self, model: Any, names: list[str]) -> None:
        self.model, self.names, self.calls, self.rows = model, names, 0, 0

    def __call__(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        self.calls += 1
        self.rows += len(columns[self.names[0]])
        return np.asarray(self.model.predict(np.column_stack([columns[n] for n in self.names])))


def test_partial_dependence_rises_with_a_monotone_column_in_one_scoring_call() -> None:
    columns, model = _monotone()
    score = _Counted(model, ["x", "noise"])
    found = dependence(columns, "x", "numeric", score, grid_points=15, ice_rows=5)
    assert score.calls == 1 and score.rows == 400 * len(found.grid)
    assert found.kind == "numeric" and 2 <= len(found.grid) <= 15
    assert found.grid == sorted(found.grid) and len(set(found.grid)) == len(found.grid)
    # Grid values are values seen in the data, from its smallest to its largest.
    assert set(found.grid) <= set(columns["x"].tolist())
    assert found.grid[0] == columns["x"].min() and found.grid[-1] == columns["x"].max()
    assert np.all(np.diff(found.average) >= -0.3), found.average
    assert found.average[-1] - found.average[0] > 20  # about 3 x 10
    assert len(found.ice) == 5 and [c["row"] for c in found.ice] == [0, 1, 2, 3, 4]
    hist = found.distribution
    assert sum(hist["counts"]) == 400 and hist["missing"] == 0
    assert len(hist["edges"]) == len(hist["counts"]) + 1


def test_an_unused_column_gives_flat_curves() -> None:
    columns, model = _monotone()
    found = dependence(columns, "noise", "numeric", _Counted(model, ["x", "noise"]))
    assert max(found.average) - min(found.average) < 3  # vs about 30 for x


def test_the_mean_of_all_ice_curves_is_the_partial_dependence() -> None:
    columns, model = _monotone(120)
    found = dependence(
        columns, "x", "numeric", _Counted(model, ["x", "noise"]), grid_points=7, ice_rows=120
    )
    curves = np.array([c["values"] for c in found.ice])
    assert curves.shape == (120, len(found.grid))
    np.testing.assert_allclose(curves.mean(axis=0), found.average, rtol=1e-12)
    # Each ICE point is the model's answer for that row with x set to the grid value.
    row, j = 17, 3
    expected = model.predict([[found.grid[j], columns["noise"][row]]])[0]
    assert found.ice[row]["values"][j] == pytest.approx(expected)


def test_row_ids_name_the_ice_rows() -> None:
    columns, model = _monotone(30)
    ids = list(range(100, 130))
    found = dependence(
        columns, "x", "numeric", _Counted(model, ["x", "noise"]), ice_rows=3, row_ids=ids
    )
    assert [c["row"] for c in found.ice] == [100, 101, 102]


def test_an_integer_column_gets_its_own_distinct_values_as_grid() -> None:
    years = np.array([2007.0, 2008.0, 2009.0, np.nan] * 25)
    assert grid_of(years, "numeric", 20).tolist() == [2007.0, 2008.0, 2009.0]


def test_categorical_grid_is_the_most_frequent_categories_first() -> None:
    island = np.array(["Biscoe"] * 5 + ["Dream"] * 3 + ["Torgersen"] * 2 + [None] * 4, dtype=object)

    def score(columns: dict[str, np.ndarray]) -> np.ndarray:
        # Biscoe scores 1, anything else 0, plus a per-row offset from the other column.
        return (columns["island"] == "Biscoe").astype(float) + columns["size"] / 100

    size = np.arange(len(island), dtype=float)
    found = dependence(
        {"island": island, "size": size}, "island", "categorical", score, grid_points=2
    )
    assert found.kind == "categorical" and found.grid == ["Biscoe", "Dream"]
    offset = size.mean() / 100
    assert found.average == pytest.approx([1 + offset, offset])
    assert found.distribution == {
        "categories": ["Biscoe", "Dream"],
        "counts": [5, 3],
        "other": 2,
        "missing": 4,
    }


def test_boolean_columns_keep_their_values_in_the_grid() -> None:
    flag = np.array([True, False, True, None], dtype=object)
    assert grid_of(flag, "categorical", 5).tolist() == [True, False]


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([np.nan, np.nan]), "numeric"),
        (np.array([None, None], dtype=object), "categorical"),
    ],
    ids=["numeric", "categorical"],
)
def test_a_column_without_values_is_refused(values: np.ndarray, kind: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        grid_of(values, kind, 10)
    assert caught.value.code == "no_values"


def test_penguin_flipper_length_moves_a_real_pipelines_gentoo_probability(
    fitted: Callable[..., tuple[Any, pd.DataFrame, pd.Series, str]],
) -> None:
    model, X, _, _ = fitted("penguins", "lightgbm")
    classes = [str(c) for c in model.classes_]
    k = classes.index("Gentoo")
    sample = X.sample(100, random_state=0).reset_index(drop=True)
    columns = {c: sample[c].to_numpy() for c in sample.columns}

    def score(cols: dict[str, np.ndarray]) -> np.ndarray:
        frame = pd.DataFrame(cols).astype(sample.dtypes.to_dict())
        return np.asarray(model.predict_proba(frame)[:, k])

    found = dependence(columns, "flipper_length_mm", "numeric", score, grid_points=10)
    # Gentoo penguins have the longest flippers: the curve ends higher than it starts.
    assert found.average[-1] > found.average[0] + 0.2, found.average
