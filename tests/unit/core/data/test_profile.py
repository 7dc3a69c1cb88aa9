"""profile_frame: JSON-safe statistics, correlations, missingness and targets."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import polars as pl
import pytest

import narrate
from narrate.core.data.profile import profile_frame
from narrate.core.data.readers import read_table
from narrate.core.data.types import infer_types
from narrate.errors import InvalidInput

SAMPLES = Path(narrate.__file__).parent / "samples"


@pytest.fixture(scope="module")
def penguins() -> tuple[pl.DataFrame, dict[str, object]]:
    frame, kinds = infer_types(read_table(SAMPLES / "penguins.csv", filename="p.csv").frame)
    return frame, profile_frame(frame, kinds, target="species")


def test_profile_frame_is_strict_json(penguins: tuple[pl.DataFrame, dict[str, object]]) -> None:
    _, profile = penguins
    json.dumps(profile, allow_nan=False)


def test_profile_frame_counts_table(penguins: tuple[pl.DataFrame, dict[str, object]]) -> None:
    _, profile = penguins
    assert profile["table"] == {
        "rows": 344,
        "columns": 8,
        "duplicate_rows": 0,
        "memory_bytes": profile["table"]["memory_bytes"],  # type: ignore[index]
        "sampled_rows": None,
    }


def test_profile_frame_describes_numeric_column(
    penguins: tuple[pl.DataFrame, dict[str, object]],
) -> None:
    frame, profile = penguins
    column = profile["columns"]["body_mass_g"]  # type: ignore[index]
    values = frame.get_column("body_mass_g").drop_nulls()
    assert (column["kind"], column["missing"], column["count"]) == ("float", 2, 342)
    assert column["min"] == values.min() and column["max"] == values.max()
    assert math.isclose(column["mean"], values.mean())
    assert column["quantiles"]["50"] == pytest.approx(values.median(), abs=25)
    assert sum(column["histogram"]["counts"]) == 342
    assert len(column["histogram"]["edges"]) == len(column["histogram"]["counts"]) + 1
    assert column["outliers"] == 0


def test_profile_frame_describes_categorical_column(
    penguins: tuple[pl.DataFrame, dict[str, object]],
) -> None:
    _, profile = penguins
    column = profile["columns"]["species"]  # type: ignore[index]
    assert column["distinct"] == 3
    assert column["top_values"][0] == {"value": "Adelie", "count": 152, "share": 0.44186}
    assert column["length"]["max"] == 9


def test_profile_frame_gives_target_class_balance(
    penguins: tuple[pl.DataFrame, dict[str, object]],
) -> None:
    _, profile = penguins
    target = profile["target"]
    assert target["problem_type"] == "classification"  # type: ignore[index]
    assert [c["value"] for c in target["classes"]] == ["Adelie", "Gentoo", "Chinstrap"]  # type: ignore[index]
    assert target["minority_share"] == pytest.approx(68 / 344, abs=1e-5)  # type: ignore[index]


def test_profile_frame_correlates_numeric_and_categorical(
    penguins: tuple[pl.DataFrame, dict[str, object]],
) -> None:
    _, profile = penguins
    correlations = profile["correlations"]
    names = correlations["columns"]  # type: ignore[index]
    flipper, mass = names.index("flipper_length_mm"), names.index("body_mass_g")
    assert correlations["pearson"][flipper][mass] == pytest.approx(0.871, abs=0.001)  # type: ignore[index]
    assert correlations["spearman"][flipper][mass] > 0.8  # type: ignore[index]
    cramers = correlations["cramers_v"]  # type: ignore[index]
    assert cramers["columns"][0] == "species"
    island = cramers["columns"].index("island")
    assert 0.6 < cramers["matrix"][0][island] <= 1.0


def test_profile_frame_maps_missing_values_by_chunk(
    penguins: tuple[pl.DataFrame, dict[str, object]],
) -> None:
    _, profile = penguins
    matrix = profile["missing_matrix"]
    assert matrix["chunk_rows"] == 7  # type: ignore[index]
    assert len(matrix["shares"]) == 50  # type: ignore[index]
    sex = matrix["columns"].index("sex")  # type: ignore[index]
    assert max(row[sex] for row in matrix["shares"]) > 0  # type: ignore[index]


def test_profile_frame_samples_large_tables_and_says_so() -> None:
    frame = pl.DataFrame({"x": [float(i % 100) for i in range(5_000)], "y": list(range(5_000))})
    typed, kinds = infer_types(frame)
    profile = profile_frame(typed, kinds, sample_size=1_000)
    assert profile["table"]["sampled_rows"] == 1_000
    assert profile["columns"]["x"]["count"] == 5_000


def test_profile_frame_counts_duplicates_and_text_numbers() -> None:
    frame = pl.DataFrame(
        {"a": ["1", "1", "2", "3"] * 5, "total": ["1.5", " ", "2", "x"] * 4 + ["7"] * 4}
    )
    typed, kinds = infer_types(frame)
    profile = profile_frame(typed, kinds)
    assert profile["table"]["duplicate_rows"] == 13
    info = profile["columns"]["total"]["numeric_text"]
    assert (info["numeric_count"], info["blank_count"], info["non_numeric_count"]) == (12, 4, 4)
    assert info["examples"] == ["x"]


def test_profile_frame_maps_nan_and_inf_to_none() -> None:
    frame = pl.DataFrame({"v": [float("nan"), float("inf"), 1.0, 2.0]})
    typed, kinds = infer_types(frame)
    json.dumps(profile_frame(typed, kinds), allow_nan=False)


def test_profile_frame_suggests_potential_targets() -> None:
    frame, kinds = infer_types(read_table(SAMPLES / "credit_data.csv", filename="c.csv").frame)
    targets = profile_frame(frame, kinds)["potential_targets"]
    assert targets[0]["column"] == "Status"
    assert "two values" in targets[0]["reason"]


def test_profile_frame_rejects_unknown_target() -> None:
    frame, kinds = infer_types(pl.DataFrame({"a": ["1", "2"]}))
    with pytest.raises(InvalidInput) as caught:
        profile_frame(frame, kinds, target="b")
    assert caught.value.code == "invalid_input"
    assert "no column named 'b'" in caught.value.message


def test_histogram_of_tiny_floats_has_increasing_edges() -> None:
    frame, kinds = infer_types(pl.DataFrame({"x": [0.0, 1.8e-123, 3.6e-123, 1e-122]}))
    profile = profile_frame(frame, kinds)
    column = profile["columns"]["x"]  # type: ignore[index]
    edges = column["histogram"]["edges"]
    assert all(a < b for a, b in itertools.pairwise(edges))
    assert sum(column["histogram"]["counts"]) == 4


@pytest.mark.parametrize(
    "values",
    [[float("inf")] * 3, [float("nan"), float("-inf")], [None, None]],
    ids=["all-inf", "nan-and-inf", "all-empty"],
)
def test_numeric_columns_without_one_finite_value_are_profiled(values: list[float | None]) -> None:
    df = pl.DataFrame(
        {"x": values, "y": [1.0] * len(values)}, schema={"x": pl.Float64, "y": pl.Float64}
    )
    profile = profile_frame(df, {"x": "float", "y": "float"})
    assert "quantiles" not in profile["columns"]["x"]
    assert profile["columns"]["y"]["histogram"]["counts"] == [len(values)]
    json.dumps(profile, allow_nan=False)
