from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from narrate.core.automl import detect_problem, find_feature_warnings
from narrate.errors import InvalidInput


def _frame(target: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(len(target)), "y": target})


@pytest.mark.parametrize(
    ("frame", "target", "words"),
    [
        (_frame([1, 2] * 20), "missing", "missing from the data"),
        (_frame([None] * 40), "y", "all 40 rows are empty"),
        (_frame(["a"] * 40), "y", "constant"),
        (_frame([f"id{i}" for i in range(40)]), "y", "looks like an ID"),
        (_frame(["a"] * 20 + ["b"] * 19 + ["c"]), "y", "has only 1 row"),
    ],
    ids=["missing", "all_missing", "constant", "id_like", "singleton_class"],
)
def test_detect_problem_refuses_bad_targets_naming_column(
    frame: pd.DataFrame, target: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        detect_problem(frame, target)
    assert caught.value.code == "invalid_input"
    assert words in caught.value.message
    assert caught.value.details["column"] == target


def test_detect_problem_finds_binary_with_minority_positive() -> None:
    info = detect_problem(_frame(["good"] * 30 + ["bad"] * 10), "y")
    assert info.task == "binary"
    assert info.positive_class == "bad"
    assert info.minority_share == pytest.approx(0.25)
    assert "2 distinct values" in info.reasoning


def test_detect_problem_finds_multiclass_and_regression() -> None:
    assert detect_problem(_frame(["a", "b", "c"] * 10), "y").task == "multiclass"
    rng = np.random.default_rng(0)
    assert detect_problem(_frame(list(rng.normal(size=50))), "y").task == "regression"


def test_detect_problem_override_is_checked() -> None:
    info = detect_problem(_frame([1, 2, 3] * 10), "y", override="regression")
    assert info.task == "regression"
    with pytest.raises(InvalidInput, match="not the 2 binary needs"):
        detect_problem(_frame([1, 2, 3] * 10), "y", override="binary")


def test_feature_warnings_flag_leakage_ids_and_dates() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    frame = pd.DataFrame(
        {
            "leak": y * 10 + rng.normal(0, 0.1, 200),
            "noise": rng.normal(size=200),
            "row_id": [f"r{i}" for i in range(200)],
            "when": pd.date_range("2024-01-01", periods=200, freq="D"),
            "y": np.where(y == 1, "yes", "no"),
        }
    )
    kinds = {(w.column, w.kind) for w in find_feature_warnings(frame, "y")}
    assert ("leak", "leakage") in kinds
    assert ("row_id", "id_like") in kinds
    assert ("when", "datetime") in kinds
    assert not any(column == "noise" for column, _ in kinds)
