"""Drift statistics checked against SciPy, against hand-computed values, and on a real
dataset with and without an injected shift."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from narrate.core.monitor.drift import (
    Thresholds,
    compute_drift,
    drift_level,
    ks_pvalue,
    thresholds_from_dict,
)
from narrate.errors import InvalidInput


def _entry(report: dict, name: str) -> dict:
    found = [e for e in report["columns"] if e["column"] == name]
    return found[0] if found else report["prediction"]


@pytest.fixture(scope="module")
def numeric_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(0, 2, 3_000), rng.normal(0.4, 2.5, 2_000)


def test_ks_statistic_and_pvalue_match_scipy(numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = numeric_pair
    entry = _entry(compute_drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert entry["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert entry["ks_p"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_handles_ties_like_scipy() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 5, 1_000), rng.integers(1, 6, 800)
    entry = _entry(compute_drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert entry["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert entry["ks_p"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_pvalue_is_scipys_asymptotic_formula() -> None:
    assert ks_pvalue(0.05, 1_000, 1_000) == pytest.approx(stats.kstwo.sf(0.05, 500))


def test_wasserstein_matches_scipy_and_is_normalised_by_reference_std(
    numeric_pair: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = numeric_pair
    entry = _entry(compute_drift(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")
    raw = stats.wasserstein_distance(ref, cur)
    assert entry["wasserstein_raw"] == pytest.approx(raw, rel=1e-9)
    assert entry["wasserstein"] == pytest.approx(raw / np.std(ref), rel=1e-9)


def test_wasserstein_of_a_shifted_constant_is_the_shift() -> None:
    # Hand value: moving every unit of mass by 3 costs 3; the reference has no spread, so
    # the normalised value is the raw one.
    report = compute_drift(pl.DataFrame({"x": [1.0] * 10}), pl.DataFrame({"x": [4.0] * 5}))
    entry = _entry(report, "x")
    assert entry["wasserstein_raw"] == pytest.approx(3.0)
    assert entry["wasserstein"] == pytest.approx(3.0)
    assert entry["ks"] == pytest.approx(1.0)


def test_numeric_psi_and_kl_by_hand_on_quantile_bins() -> None:
    # Reference 1..10 in 2 bins cut at its median 5: (-inf, 5] and (5, inf) hold 5 and 5.
    # Current: 8 values <= 5 and 2 above. Shares smoothed by half a count per bin.
    ref = pl.DataFrame({"x": [float(v) for v in range(1, 11)]})
    cur = pl.DataFrame({"x": [1.0, 2, 3, 4, 5, 1, 2, 3, 9, 10]})
    entry = _entry(compute_drift(ref, cur, bins=2), "x")
    r = np.array([5.5, 5.5]) / 11
    c = np.array([8.5, 2.5]) / 11
    assert entry["histogram"]["edges"] == [5.0]
    assert entry["histogram"]["reference"] == [0.5, 0.5]
    assert entry["histogram"]["current"] == [0.8, 0.2]
    assert entry["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert entry["kl"] == pytest.approx(float(stats.entropy(c, r)))


def test_categorical_statistics_match_scipy() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["d"] * 10
    entry = _entry(compute_drift(pl.DataFrame({"k": ref}), pl.DataFrame({"k": cur})), "k")
    assert entry["kind"] == "categorical"
    assert entry["histogram"]["categories"] == ["a", "b", "c", "(new)"]
    table = np.array([[50, 30, 20, 0], [20, 30, 40, 10]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert entry["chi2"] == pytest.approx(chi2)
    assert entry["chi2_p"] == pytest.approx(p)
    assert entry["js"] == pytest.approx(jensenshannon(table[0], table[1], base=2))
    r = (table[0] + 0.5) / (100 + 2)
    c = (table[1] + 0.5) / (100 + 2)
    assert entry["kl"] == pytest.approx(float(stats.entropy(c, r)))
    assert entry["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert entry["new_category_rate"] == pytest.approx(0.1)
    assert entry["new_categories"] == ["d"]


def test_two_category_chi2_has_no_continuity_correction() -> None:
    ref, cur = ["x"] * 60 + ["y"] * 40, ["x"] * 45 + ["y"] * 55
    entry = _entry(compute_drift(pl.DataFrame({"k": ref}), pl.DataFrame({"k": cur})), "k")
    chi2, p, _, _ = stats.chi2_contingency(np.array([[60, 40], [45, 55]]), correction=False)
    assert entry["chi2"] == pytest.approx(chi2)
    assert entry["chi2_p"] == pytest.approx(p)


def test_identical_samples_show_no_drift() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 25, "k": ["a", "b"] * 50})
    report = compute_drift(frame, frame)
    for entry in report["columns"]:
        assert entry["psi"] == pytest.approx(0.0)
        assert entry["level"] == "none"
    assert _entry(report, "x")["ks_p"] == pytest.approx(1.0)
    assert _entry(report, "k")["js"] == pytest.approx(0.0)
    assert report["overall"]["level"] == "none"


def test_missing_rate_is_a_signal_of_its_own() -> None:
    ref = pl.DataFrame({"x": [float(i) for i in range(100)]})
    values: list[float | None] = [float(i) for i in range(100)]
    for i in range(0, 100, 5):
        values[i] = None
    values[1] = float("nan")
    entry = _entry(compute_drift(ref, pl.DataFrame({"x": values})), "x")
    assert entry["missing_rate_reference"] == 0.0
    assert entry["missing_rate_current"] == pytest.approx(0.21)
    assert entry["missing_rate_change"] == pytest.approx(0.21)
    assert entry["level"] == "high"
    assert "missing_rate" in entry["reasons"]


def test_new_categories_raise_the_level_even_with_little_psi() -> None:
    ref = pl.DataFrame({"k": ["a", "b"] * 500})
    cur = pl.DataFrame({"k": ["a", "b"] * 492 + ["zz"] * 16})
    entry = _entry(compute_drift(ref, cur), "k")
    assert entry["new_category_rate"] == pytest.approx(0.016)
    assert entry["psi"] < 0.1
    assert entry["level"] == "low"
    assert entry["reasons"] == ["new_category_rate"]


def test_rare_reference_categories_share_an_other_bucket() -> None:
    ref = pl.DataFrame({"k": ["a"] * 10 + ["b"] * 5 + ["c"] * 2 + ["d"]})
    entry = _entry(compute_drift(ref, ref, max_categories=2), "k")
    assert entry["histogram"]["categories"] == ["a", "b", "(other)"]


def test_prediction_is_reported_apart_from_inputs() -> None:
    ref = pl.DataFrame({"x": [1.0, 2.0] * 50, "prediction": ["yes", "no"] * 50})
    cur = pl.DataFrame({"x": [1.0, 2.0] * 50, "prediction": ["yes"] * 90 + ["no"] * 10})
    report = compute_drift(ref, cur, prediction="prediction")
    assert [e["column"] for e in report["columns"]] == ["x"]
    assert report["prediction"]["column"] == "prediction"
    assert report["prediction"]["level"] == "high"
    assert report["overall"]["prediction_level"] == "high"
    assert report["overall"]["level"] == "high"


@pytest.mark.parametrize(
    ("value", "level"),
    [(0.0, "none"), (0.099, "none"), (0.1, "low"), (0.2, "medium"), (0.25, "high"), (None, "none")],
    ids=["zero", "below-low", "low", "medium", "high", "missing"],
)
def test_psi_levels_follow_default_thresholds(value: float | None, level: str) -> None:
    assert drift_level(value, Thresholds().psi) == level


def test_thresholds_are_a_parameter() -> None:
    ref = pl.DataFrame({"k": ["a"] * 60 + ["b"] * 40})
    cur = pl.DataFrame({"k": ["a"] * 45 + ["b"] * 55})
    default = _entry(compute_drift(ref, cur), "k")
    strict = _entry(
        compute_drift(ref, cur, thresholds=thresholds_from_dict({"psi": [0.01, 0.02, 0.05]})),
        "k",
    )
    assert default["level"] == "none"
    assert strict["level"] == "high"


@pytest.mark.parametrize(
    ("values", "parameter"),
    [
        ({"psi": [0.3, 0.2, 0.1]}, "thresholds.psi"),
        ({"psi": [0.1, 0.2]}, "thresholds.psi"),
        ({"missing_rate": [-1, 0.2, 0.3]}, "thresholds.missing_rate"),
        ({"ks": [0.1, 0.2, 0.3]}, "thresholds.ks"),
    ],
    ids=["decreasing", "two-values", "negative", "unknown-key"],
)
def test_bad_thresholds_name_the_parameter(values: dict, parameter: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        thresholds_from_dict(values)
    assert caught.value.details["parameter"] == parameter


def test_unknown_column_is_named() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match="'nope'") as caught:
        compute_drift(frame, frame, columns=["nope"])
    assert caught.value.details["column"] == "nope"


def test_a_side_with_no_values_reports_missing_only() -> None:
    ref = pl.DataFrame({"x": [1.0, 2.0, 3.0]})
    cur = pl.DataFrame({"x": pl.Series([None, None], dtype=pl.Float64)})
    entry = _entry(compute_drift(ref, cur), "x")
    assert entry["psi"] is None
    assert entry["ks"] is None
    assert entry["missing_rate_current"] == 1.0
    assert entry["level"] == "high"


# --- a real dataset -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def credit() -> pl.DataFrame:
    path = resources.files("narrate.samples").joinpath("credit_data.csv")
    with resources.as_file(path) as local:
        return pl.read_csv(local, infer_schema_length=10_000)


def test_a_random_split_of_real_data_shows_no_drift(credit: pl.DataFrame) -> None:
    shuffled = credit.sample(fraction=1.0, shuffle=True, seed=11)
    half = shuffled.height // 2
    report = compute_drift(shuffled.head(half), shuffled.slice(half))
    assert report["overall"]["level"] == "none", [
        (e["column"], e["psi"]) for e in report["columns"] if e["level"] != "none"
    ]
    assert all(e["psi"] < 0.1 for e in report["columns"])


def test_an_injected_shift_in_real_data_is_found_and_ranked_first(credit: pl.DataFrame) -> None:
    shuffled = credit.sample(fraction=1.0, shuffle=True, seed=11)
    half = shuffled.height // 2
    reference, current = shuffled.head(half), shuffled.slice(half)
    # Incomes rise by 40% and a fifth of the "rent" homes become a new category.
    rng = np.random.default_rng(5)
    home = current["Home"].to_numpy().astype(object)
    flip = (home == "rent") & (rng.random(len(home)) < 0.2)
    home[flip] = "coliving"
    current = current.with_columns(
        (pl.col("Income") * 1.4).alias("Income"), pl.Series("Home", home.tolist())
    )
    report = compute_drift(reference, current)
    income = _entry(report, "Income")
    assert report["columns"][0]["column"] == "Income"
    assert income["level"] == "high"
    assert income["ks_p"] < 1e-6
    assert _entry(report, "Home")["new_categories"] == ["coliving"]
    assert _entry(report, "Home")["level"] != "none"
    unchanged = [e for e in report["columns"] if e["column"] not in {"Income", "Home"}]
    assert all(e["level"] == "none" for e in unchanged)
    assert not math.isnan(income["wasserstein"])
