"""Drift statistics: how far a current sample of a column has moved from a reference.

Per column (and for a model's predictions) :func:`compute_drift` reports:

- **PSI**, the population stability index ``sum((c - r) * ln(c / r))`` over shared bins:
  for numbers, ``bins`` bins cut at the *reference's* quantiles (right-closed, open at
  both ends, so every current value falls in one); for categories, the reference's
  ``max_categories`` most frequent ones, one ``(other)`` bucket for the rest of the
  reference's categories and one ``(new)`` bucket for categories the reference never had.
- **KL**, the Kullback–Leibler divergence of current from reference, ``sum(c * ln(c / r))``
  over the same bins (natural log).
- Both smooth the bin shares by adding half a count to every bin (Jeffreys), so an empty
  bin gives a large but finite value instead of infinity.
- **Wasserstein** (numbers): the exact earth mover's distance between the two empirical
  distributions (as ``scipy.stats.wasserstein_distance``), divided by the *reference's
  standard deviation* so that columns in different units compare; the raw distance is
  kept too (``wasserstein_raw``). A reference with no spread leaves it undivided.
- **KS** (numbers): the exact two-sample Kolmogorov–Smirnov statistic over both samples,
  with the asymptotic two-sided p-value ``kstwo.sf(D, round(n·m / (n + m)))`` that
  ``scipy.stats.ks_2samp(method="asymp")`` uses.
- **χ²** (categories): the test of homogeneity of the 2 × k table of bucket counts
  (``scipy.stats.chi2_contingency`` without continuity correction), with its p-value.
- **JS** (categories): the Jensen–Shannon *distance* of the unsmoothed shares, base 2,
  between 0 (same) and 1 (disjoint).
- **Missing rate** in each sample (null, and for numbers NaN or infinite) and **new
  category rate**: the share of current non-missing values whose category the reference
  never had. Both are drift signals of their own.

A column's level is the highest level any of its signals reaches against
:class:`Thresholds`: PSI, the absolute change in missing rate and the new category rate;
``reasons`` lists every signal that reached at least ``low``.
P-values are reported but do not set levels: with a million rows every tiny difference
is "significant", so they say whether drift is real, not whether it matters.

Everything is computed from sorted arrays and value counts, with no per-row Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy import stats

from narrate.errors import InvalidInput

__all__ = [
    "LEVELS",
    "Kind",
    "Thresholds",
    "column_kind",
    "compute_drift",
    "drift_level",
    "ks_pvalue",
    "thresholds_from_dict",
]

Kind = Literal["numeric", "categorical"]
LEVELS = ("none", "low", "medium", "high")
"""Drift levels from least to most."""

_SMOOTHING = 0.5
_NEW = "(new)"
_OTHER = "(other)"
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Thresholds:
    """Where each signal reaches the levels low, medium and high (each inclusive).

    Attributes:
        psi: PSI thresholds (defaults 0.1 / 0.2 / 0.25).
        missing_rate: Thresholds on the absolute change in the share of missing values.
        new_category_rate: Thresholds on the share of current values in unseen categories.
    """

    psi: tuple[float, float, float] = (0.1, 0.2, 0.25)
    missing_rate: tuple[float, float, float] = (0.02, 0.05, 0.1)
    new_category_rate: tuple[float, float, float] = (0.01, 0.05, 0.1)

    def __post_init__(self) -> None:
        for name in ("psi", "missing_rate", "new_category_rate"):
            values = getattr(self, name)
            ok = (
                len(values) == 3
                and all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values)
                and values[0] <= values[1] <= values[2]
            )
            if not ok:
                raise InvalidInput(
                    f"Thresholds for '{name}' must be three non-negative numbers in "
                    f"increasing order (low, medium, high); got {list(values)}.",
                    details={"parameter": f"thresholds.{name}", "value": list(values)},
                )

    def to_dict(self) -> dict[str, list[float]]:
        """The thresholds as JSON-ready lists."""
        return {k: list(v) for k, v in asdict(self).items()}


def thresholds_from_dict(values: Mapping[str, Sequence[float]] | None) -> Thresholds:
    """Build :class:`Thresholds` from ``{"psi": [low, medium, high], ...}``; missing keys
    keep their defaults.

    Raises:
        InvalidInput: an unknown key or thresholds that are not increasing.
    """
    if not values:
        return Thresholds()
    known = set(Thresholds.__dataclass_fields__)
    for key in values:
        if key not in known:
            raise InvalidInput(
                f"Unknown threshold '{key}'; use {', '.join(sorted(known))}.",
                details={"parameter": f"thresholds.{key}", "allowed": sorted(known)},
            )
    return Thresholds(**{k: tuple(float(x) for x in v) for k, v in values.items()})  # type: ignore[arg-type]


def drift_level(value: float | None, thresholds: Sequence[float]) -> str:
    """The level ``value`` reaches: ``none`` below the first threshold, then ``low``,
    ``medium`` and ``high`` (a threshold belongs to the level it opens)."""
    if value is None or not math.isfinite(value):
        return "none"
    reached = sum(1 for t in thresholds if value >= t)
    return LEVELS[reached]


def column_kind(dtype: pl.DataType) -> Kind:
    """Numbers and dates are compared as numbers; everything else (text, booleans,
    categories) as categories."""
    if dtype.is_numeric() or dtype.is_temporal():
        return "numeric"
    return "categorical"


# --- shared -------------------------------------------------------------------------------


def _smoothed(counts: np.ndarray) -> np.ndarray:
    counts = counts.astype(float)
    smoothed: np.ndarray = (counts + _SMOOTHING) / (counts.sum() + _SMOOTHING * len(counts))
    return smoothed


def _psi_kl(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float | None, float | None]:
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return None, None
    r, c = _smoothed(ref_counts), _smoothed(cur_counts)
    log_ratio = np.log(c / r)
    return float(np.sum((c - r) * log_ratio)), float(np.sum(c * log_ratio))


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [round(float(x), 6) for x in (counts / total if total else counts * 0.0)]


def _none_if_nan(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- numbers ------------------------------------------------------------------------------


def _numbers(series: pl.Series) -> tuple[np.ndarray, int]:
    """The finite values as float64 (sorted) and how many were missing."""
    if series.dtype.is_temporal():
        series = series.to_physical()
    values = series.cast(pl.Float64).drop_nulls()
    if values.len():
        values = values.filter(values.is_finite())
    array = np.sort(values.to_numpy())
    return array, series.len() - len(array)


def _ks_wasserstein(r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """The exact KS statistic and Wasserstein-1 distance of two sorted samples.

    Both samples are merged (a stable sort of two sorted runs is a linear merge), each
    position remembers its side, and both CDFs are read at the end of every run of equal
    values: KS is the largest gap between them, Wasserstein the area between them.
    """
    n1, n2 = len(r), len(c)
    merged = np.concatenate([r, c])
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    from_ref = np.cumsum(order < n1)
    ends = np.flatnonzero(np.diff(values))
    ends = np.append(ends, len(values) - 1)
    cdf_r = from_ref[ends] / n1
    cdf_c = (ends + 1 - from_ref[ends]) / n2
    gaps = np.abs(cdf_r - cdf_c)
    ks = float(gaps.max())
    wasserstein = float(np.sum(gaps[:-1] * np.diff(values[ends])))
    return ks, wasserstein


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Asymptotic two-sided p-value of the two-sample KS statistic (as SciPy's
    ``ks_2samp(method="asymp")``)."""
    en = n1 * n2 / (n1 + n2)
    return float(np.clip(stats.kstwo.sf(statistic, round(en)), 0.0, 1.0))


def _numeric_drift(ref: pl.Series, cur: pl.Series, bins: int) -> dict[str, Any]:
    r, r_missing = _numbers(ref)
    c, c_missing = _numbers(cur)
    out: dict[str, Any] = {
        "kind": "numeric",
        "missing_rate_reference": r_missing / ref.len() if ref.len() else None,
        "missing_rate_current": c_missing / cur.len() if cur.len() else None,
        "new_category_rate": None,
    }
    empty = {"psi": None, "kl": None, "wasserstein": None, "wasserstein_raw": None}
    if not len(r) or not len(c):
        return {**out, **empty, "ks": None, "ks_p": None, "histogram": None}
    cuts = np.unique(r[np.floor(np.arange(1, bins) / bins * (len(r) - 1)).astype(int)])
    # Right-closed bins (-inf, e1], (e1, e2], ..., (ek, inf): counts from two searches.
    edges_r = np.concatenate([[0], np.searchsorted(r, cuts, side="right"), [len(r)]])
    edges_c = np.concatenate([[0], np.searchsorted(c, cuts, side="right"), [len(c)]])
    ref_counts, cur_counts = np.diff(edges_r), np.diff(edges_c)
    psi, kl = _psi_kl(ref_counts, cur_counts)
    ks, wasserstein = _ks_wasserstein(r, c)
    spread = float(np.std(r))
    return {
        **out,
        "psi": psi,
        "kl": kl,
        "wasserstein": wasserstein / spread if spread > 0 else wasserstein,
        "wasserstein_raw": wasserstein,
        "ks": ks,
        "ks_p": ks_pvalue(ks, len(r), len(c)),
        "histogram": {
            "edges": [float(x) for x in cuts],
            "reference": _shares(ref_counts),
            "current": _shares(cur_counts),
        },
    }


# --- categories ---------------------------------------------------------------------------


def _counts(series: pl.Series) -> tuple[pl.DataFrame, int]:
    """Value counts of the non-missing values as text, and how many were missing."""
    text = series.cast(pl.String) if series.dtype != pl.String else series
    present = text.drop_nulls()
    counts = present.value_counts(name="n")
    return counts.rename({counts.columns[0]: "value"}), series.len() - present.len()


def _categorical_drift(ref: pl.Series, cur: pl.Series, max_categories: int) -> dict[str, Any]:
    ref_counts, r_missing = _counts(ref)
    cur_counts, c_missing = _counts(cur)
    out: dict[str, Any] = {
        "kind": "categorical",
        "missing_rate_reference": r_missing / ref.len() if ref.len() else None,
        "missing_rate_current": c_missing / cur.len() if cur.len() else None,
    }
    joined = ref_counts.join(cur_counts, on="value", how="full", coalesce=True, suffix="_cur")
    joined = joined.with_columns(pl.col("n").fill_null(0), pl.col("n_cur").fill_null(0))
    seen = joined.filter(pl.col("n") > 0).sort(["n", "value"], descending=[True, False])
    new = joined.filter(pl.col("n") == 0).sort("n_cur", descending=True)
    n_cur_present = int(cur_counts["n"].sum()) if cur_counts.height else 0
    new_total = int(new["n_cur"].sum()) if new.height else 0
    out["new_category_rate"] = new_total / n_cur_present if n_cur_present else None
    out["new_categories"] = new["value"].head(_MAX_EXAMPLES).to_list()
    top, rest = seen.head(max_categories), seen.slice(max_categories)
    labels = top["value"].to_list()
    r_counts = top["n"].to_numpy().astype(np.int64)
    c_counts = top["n_cur"].to_numpy().astype(np.int64)
    for label, part in ((_OTHER, rest), (_NEW, new)):
        if part.height:
            labels.append(label)
            r_counts = np.append(r_counts, int(part["n"].sum()))
            c_counts = np.append(c_counts, int(part["n_cur"].sum()))
    empty = {"psi": None, "kl": None, "js": None, "chi2": None, "chi2_p": None}
    if not r_counts.sum() or not c_counts.sum():
        return {**out, **empty, "histogram": None}
    psi, kl = _psi_kl(r_counts, c_counts)
    chi2, chi2_p = _chi2(r_counts, c_counts)
    return {
        **out,
        "psi": psi,
        "kl": kl,
        "js": _js(r_counts, c_counts),
        "chi2": chi2,
        "chi2_p": chi2_p,
        "histogram": {
            "categories": labels,
            "reference": _shares(r_counts),
            "current": _shares(c_counts),
        },
    }


def _chi2(r_counts: np.ndarray, c_counts: np.ndarray) -> tuple[float | None, float | None]:
    """χ² test of homogeneity of the 2 × k table (no continuity correction)."""
    table = np.vstack([r_counts, c_counts]).astype(float)
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def _js(r_counts: np.ndarray, c_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) of the two shares."""
    p, q = r_counts / r_counts.sum(), c_counts / c_counts.sum()
    m = (p + q) / 2

    def _kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return math.sqrt(max(0.0, (_kl(p) + _kl(q)) / 2))


# --- the report ---------------------------------------------------------------------------


def _level(entry: dict[str, Any], thresholds: Thresholds) -> tuple[str, list[str]]:
    change = None
    if entry["missing_rate_reference"] is not None and entry["missing_rate_current"] is not None:
        change = abs(entry["missing_rate_current"] - entry["missing_rate_reference"])
    entry["missing_rate_change"] = change
    signals = {
        "psi": drift_level(entry.get("psi"), thresholds.psi),
        "missing_rate": drift_level(change, thresholds.missing_rate),
        "new_category_rate": drift_level(
            entry.get("new_category_rate"), thresholds.new_category_rate
        ),
    }
    level = max(signals.values(), key=LEVELS.index)
    reasons = [name for name, lv in signals.items() if lv != "none"]
    return level, reasons


@dataclass
class _Request:
    columns: list[str]
    kinds: dict[str, Kind] = field(default_factory=dict)


def _resolve(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Sequence[str] | None,
    kinds: Mapping[str, Kind] | None,
) -> _Request:
    names = (
        list(columns)
        if columns is not None
        else [c for c in reference.columns if c in current.columns]
    )
    for name in names:
        for side, frame in (("reference", reference), ("current", current)):
            if name not in frame.columns:
                raise InvalidInput(
                    f"Column '{name}' is not in the {side} data; it has "
                    f"{', '.join(frame.columns[:20])}.",
                    details={"column": name, "parameter": "columns", "side": side},
                )
    resolved: dict[str, Kind] = {}
    for name in names:
        kind = (kinds or {}).get(name) or column_kind(reference.schema[name])
        if kind == "numeric" and not (
            reference.schema[name].is_numeric() or reference.schema[name].is_temporal()
        ):
            kind = "categorical"
        resolved[name] = kind
    return _Request(names, resolved)


def _one(
    name: str,
    kind: Kind,
    ref: pl.Series,
    cur: pl.Series,
    thresholds: Thresholds,
    bins: int,
    max_categories: int,
) -> dict[str, Any]:
    if kind == "numeric" and not (cur.dtype.is_numeric() or cur.dtype.is_temporal()):
        cur = cur.cast(ref.dtype, strict=False)
    if kind == "numeric":
        entry = _numeric_drift(ref, cur, bins)
    else:
        entry = _categorical_drift(ref, cur, max_categories)
    entry = {"column": name, **entry, "n_reference": ref.len(), "n_current": cur.len()}
    level, reasons = _level(entry, thresholds)
    entry["level"], entry["reasons"] = level, reasons
    for key in ("psi", "kl", "wasserstein", "wasserstein_raw", "js", "chi2"):
        if entry.get(key) is not None:
            entry[key] = _none_if_nan(entry[key])
    return entry


def compute_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    prediction: str | None = None,
    thresholds: Thresholds | None = None,
    bins: int = 10,
    max_categories: int = 50,
    workers: int = 2,
) -> dict[str, Any]:
    """Compare every column of ``current`` with ``reference``.

    Args:
        reference: What the model learned from (or any baseline).
        current: What it sees now.
        columns: The columns to compare (default: every column both frames have).
        kinds: ``numeric`` or ``categorical`` per column, overriding the dtype (a
            category coded as numbers); a numeric kind on a text column is ignored.
        prediction: The column holding the model's predictions, reported apart as
            ``prediction`` and not counted among the inputs.
        thresholds: Level thresholds (defaults: PSI 0.1 / 0.2 / 0.25).
        bins: Quantile bins for numbers (2 to 100).
        max_categories: Reference categories kept apart; the rest share ``(other)``.
        workers: Threads (NumPy's sorts release the GIL).

    Returns:
        ``{"columns": [...], "prediction": {...} | None, "overall": {...},
        "thresholds": {...}, "reference_rows", "current_rows"}``; the columns are sorted
        by level, then PSI, most drifted first.

    Raises:
        InvalidInput: a column is missing from either frame, or a bad parameter.
    """
    thresholds = thresholds or Thresholds()
    if not 2 <= bins <= 100:
        raise InvalidInput(
            f"bins must be between 2 and 100; got {bins}.", details={"parameter": "bins"}
        )
    names = list(columns) if columns is not None else None
    if names is not None and prediction is not None and prediction not in names:
        names.append(prediction)
    request = _resolve(reference, current, names, kinds)

    def run(name: str) -> dict[str, Any]:
        return _one(
            name,
            request.kinds[name],
            reference.get_column(name),
            current.get_column(name),
            thresholds,
            bins,
            max_categories,
        )

    if workers > 1 and len(request.columns) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            entries = list(pool.map(run, request.columns))
    else:
        entries = [run(name) for name in request.columns]
    predicted = next((e for e in entries if e["column"] == prediction), None)
    inputs = [e for e in entries if e["column"] != prediction]
    inputs.sort(key=lambda e: (-LEVELS.index(e["level"]), -(e["psi"] or 0.0), e["column"]))
    return {
        "columns": inputs,
        "prediction": predicted,
        "overall": _overall(inputs, predicted),
        "thresholds": thresholds.to_dict(),
        "reference_rows": reference.height,
        "current_rows": current.height,
    }


def _overall(inputs: list[dict[str, Any]], predicted: dict[str, Any] | None) -> dict[str, Any]:
    by_level = {level: sum(1 for e in inputs if e["level"] == level) for level in LEVELS}
    drifted = [e["column"] for e in inputs if e["level"] != "none"]
    levels = [e["level"] for e in inputs] + ([predicted["level"]] if predicted else [])
    return {
        "level": max(levels, key=LEVELS.index) if levels else "none",
        "columns": len(inputs),
        "drifted": len(drifted),
        "share_drifted": len(drifted) / len(inputs) if inputs else 0.0,
        "by_level": by_level,
        "most_drifted": drifted[:5],
        "prediction_level": predicted["level"] if predicted else None,
    }
