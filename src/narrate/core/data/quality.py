"""Quality warnings from a profile, each with a plain-language message and a one-click fix.

Fixes are steps in the Transform stage's recipe format, e.g.
``{"step": "impute", "columns": ["x"], "strategy": "median"}``.
"""

from __future__ import annotations

from typing import Any

from narrate.core.data.pii import pii_fix
from narrate.core.data.types import ColumnKind

__all__ = ["SEVERITIES", "find_warnings"]

SEVERITIES = ("critical", "warning", "info")
_MOSTLY_EMPTY = 0.5
_SOME_EMPTY = 0.05
_NEAR_CONSTANT = 0.98
_HIGH_CARDINALITY = 50
_SKEW = 2.0
_OUTLIER_SHARE = 0.01
_MIXED_MIN_NUMERIC = 0.9
_LEAKAGE = 0.98
_IMBALANCED = 0.2
_SEVERELY_IMBALANCED = 0.05
_NUMERIC = {ColumnKind.INTEGER.value, ColumnKind.FLOAT.value}


def _warning(
    code: str, severity: str, column: str | None, message: str, fix: dict[str, Any] | None
) -> dict[str, Any]:
    return {"code": code, "severity": severity, "column": column, "message": message, "fix": fix}


def find_warnings(
    profile: dict[str, Any],
    *,
    target: str | None = None,
    pii: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """List the data-quality problems a profile shows, most severe first.

    Args:
        profile: The output of ``profile_frame``.
        target: The column the user wants to predict (enables leakage and balance checks).
        pii: The output of ``detect_pii``, to add personal-data warnings.

    Returns:
        ``{"code", "severity", "column", "message", "fix"}`` dicts; ``fix`` is a recipe
        step or None.
    """
    table = profile["table"]
    found: list[dict[str, Any]] = []
    if table["duplicate_rows"]:
        share = table["duplicate_rows"] / table["rows"]
        found.append(
            _warning(
                "duplicate_rows",
                "warning",
                None,
                f"{table['duplicate_rows']:,} rows ({share:.1%}) repeat an earlier row exactly.",
                {"step": "deduplicate"},
            )
        )
    for name, column in profile["columns"].items():
        found.extend(_column_warnings(column, is_target=name == target))
    if target is not None:
        found.extend(_leakage_warnings(profile, target))
        found.extend(_balance_warnings(profile.get("target") or {}))
    found.extend(_pii_warnings(pii or []))
    found.sort(key=lambda item: SEVERITIES.index(item["severity"]))
    return found


def _column_warnings(column: dict[str, Any], *, is_target: bool) -> list[dict[str, Any]]:
    found = _missing_warnings(column, is_target=is_target)
    if is_target:
        return found
    found += _constant_warnings(column)
    found += _kind_warnings(column)
    found += _distribution_warnings(column)
    return found


def _missing_warnings(column: dict[str, Any], *, is_target: bool) -> list[dict[str, Any]]:
    name, share, missing = column["name"], column["missing_share"], column["missing"]
    if is_target and missing:
        return [
            _warning(
                "target_missing",
                "warning",
                name,
                f"The target '{name}' is empty in {missing:,} rows ({share:.1%}); "
                "those rows can't be used for training.",
                None,
            )
        ]
    if share >= _MOSTLY_EMPTY:
        text = (
            f"'{name}' is empty in {missing:,} rows ({share:.1%}); it carries little information."
        )
        return [
            _warning(
                "high_missing", "critical", name, text, {"step": "drop_columns", "columns": [name]}
            )
        ]
    if share >= _SOME_EMPTY:
        strategy = "median" if column["kind"] in _NUMERIC else "mode"
        how = "median" if strategy == "median" else "most common"
        text = (
            f"'{name}' is empty in {missing:,} rows ({share:.1%}); fill them with the {how} value."
        )
        fix = {"step": "impute", "columns": [name], "strategy": strategy}
        return [_warning("missing_values", "warning", name, text, fix)]
    return []


def _constant_warnings(column: dict[str, Any]) -> list[dict[str, Any]]:
    name, drop = column["name"], {"step": "drop_columns", "columns": [column["name"]]}
    if column["count"] and column["distinct"] <= 1:
        value = column["top_values"][0]["value"] if column.get("top_values") else None
        text = (
            f"'{name}' has the same value ({value!r}) in every filled row, "
            "so it can't help a model."
        )
        return [_warning("constant", "warning", name, text, drop)]
    top = (column.get("top_values") or [{}])[0]
    if top.get("share", 0) >= _NEAR_CONSTANT and not column.get("top_values_sampled"):
        text = (
            f"'{name}' is {top['value']!r} in {top['share']:.1%} of rows; the other values are "
            "too rare to learn from."
        )
        return [_warning("near_constant", "info", name, text, drop)]
    return []


def _kind_warnings(column: dict[str, Any]) -> list[dict[str, Any]]:
    name, kind = column["name"], column["kind"]
    numeric_text = column.get("numeric_text")
    if numeric_text and numeric_text["numeric_share"] >= _MIXED_MIN_NUMERIC:
        return [_mixed_types_warning(column, numeric_text)]
    if kind == ColumnKind.IDENTIFIER.value:
        text = (
            f"'{name}' looks like an ID ({column['distinct']:,} distinct values); "
            "IDs don't generalise to new rows."
        )
        return [
            _warning("id_like", "info", name, text, {"step": "drop_columns", "columns": [name]})
        ]
    if kind == ColumnKind.CATEGORICAL.value and column["distinct"] > _HIGH_CARDINALITY:
        text = (
            f"'{name}' has {column['distinct']:,} different values; grouping rare ones into "
            "'other' keeps models small."
        )
        fix = {"step": "rare_categories", "columns": [name], "min_share": 0.01}
        return [_warning("high_cardinality", "warning", name, text, fix)]
    return []


def _mixed_types_warning(column: dict[str, Any], numeric_text: dict[str, Any]) -> dict[str, Any]:
    name = column["name"]
    parts = []
    if numeric_text["blank_count"]:
        parts.append(f"{numeric_text['blank_count']:,} blank")
    if numeric_text["non_numeric_count"]:
        examples = ", ".join(repr(v) for v in numeric_text["examples"][:3])
        parts.append(f"{numeric_text['non_numeric_count']:,} not numbers (e.g. {examples})")
    text = (
        f"'{name}' is stored as text but {numeric_text['numeric_count']:,} of "
        f"{column['count']:,} filled values are numbers; {' and '.join(parts)}. "
        "Converting it to a number turns those into empty values."
    )
    # A lenient conversion (the cast step is strict and would refuse the non-numbers).
    quoted = '"' + name.replace('"', '""') + '"'
    fix = {"step": "derive", "name": name, "expression": f"TRY_CAST(TRIM({quoted}) AS DOUBLE)"}
    return _warning("mixed_types", "warning", name, text, fix)


def _distribution_warnings(column: dict[str, Any]) -> list[dict[str, Any]]:
    name, found = column["name"], []
    if column["kind"] not in _NUMERIC or not column["count"]:
        return []
    skew = column.get("skew")
    if skew is not None and abs(skew) >= _SKEW:
        side = "right" if skew > 0 else "left"
        text = (
            f"'{name}' is strongly skewed to the {side} (skew {skew:.1f}); "
            "a Yeo-Johnson transform evens it out."
        )
        fix = {"step": "transform", "columns": [name], "method": "yeo_johnson"}
        found.append(_warning("skewed", "info", name, text, fix))
    outliers = column.get("outliers", 0)
    if outliers and outliers / column["count"] >= _OUTLIER_SHARE:
        low, high = column["outlier_bounds"]
        text = (
            f"'{name}' has {outliers:,} outliers ({outliers / column['count']:.1%}) outside "
            f"{low:,.4g} to {high:,.4g} (1.5 x IQR)."
        )
        fix = {"step": "clip_outliers", "columns": [name], "method": "iqr"}
        found.append(_warning("outliers", "info", name, text, fix))
    return found


def _leakage_warnings(profile: dict[str, Any], target: str) -> list[dict[str, Any]]:
    correlations = profile.get("correlations") or {}
    suspects: dict[str, str] = {}
    numeric = correlations.get("columns") or []
    if target in numeric:
        row = correlations["pearson"][numeric.index(target)]
        for name, value in zip(numeric, row, strict=True):
            if name != target and value is not None and abs(value) >= _LEAKAGE:
                suspects[name] = f"correlation {value:+.3f}"
    cramers = correlations.get("cramers_v") or {}
    categorical = cramers.get("columns") or []
    if target in categorical:
        row = cramers["matrix"][categorical.index(target)]
        for name, value in zip(categorical, row, strict=True):
            if name != target and value is not None and value >= _LEAKAGE:
                suspects.setdefault(name, f"Cramér's V {value:.3f}")
    return [
        _warning(
            "target_leakage",
            "critical",
            name,
            f"'{name}' predicts the target '{target}' almost perfectly ({how}); it probably "
            "contains the answer and won't be available at prediction time.",
            {"step": "drop_columns", "columns": [name]},
        )
        for name, how in suspects.items()
    ]


def _balance_warnings(summary: dict[str, Any]) -> list[dict[str, Any]]:
    minority = summary.get("minority_share")
    if summary.get("problem_type") != "classification" or minority is None:
        return []
    if minority >= _IMBALANCED:
        return []
    severity = "critical" if minority < _SEVERELY_IMBALANCED else "warning"
    rare = summary["classes"][-1]
    text = (
        f"The target '{summary['column']}' is imbalanced: {rare['value']!r} is only "
        f"{minority:.1%} of rows ({rare['count']:,}). Accuracy will look good even for a "
        "useless model; Narrate will weigh the classes when training."
    )
    return [_warning("class_imbalance", severity, summary["column"], text, None)]


def _pii_warnings(pii: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        _warning(
            "personal_data",
            "warning",
            item["column"],
            f"'{item['column']}' looks like personal data ({item['kind'].replace('_', ' ')}, "
            f"{item['share']:.0%} of checked values); mask, hash or drop it before sharing.",
            pii_fix(item["column"], "mask"),
        )
        for item in pii
    ]
