"""Problem detection: what kind of task a target implies, and which features look risky."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from narrate.errors import InvalidInput

__all__ = [
    "FeatureWarning",
    "ProblemInfo",
    "Task",
    "detect_problem",
    "find_feature_warnings",
    "is_id_like",
]

Task = Literal["binary", "multiclass", "regression"]
_MAX_CLASSES = 50
_LEAKAGE_SCORE = 0.99
_HIGH_CARDINALITY = 50


@dataclass(frozen=True)
class ProblemInfo:
    """The detected learning task for a target column.

    Attributes:
        target: The target column.
        task: ``binary``, ``multiclass`` or ``regression``.
        reasoning: Plain-language explanation of the choice.
        classes: Class labels as strings (classification only), sorted.
        positive_class: The class scored as positive (binary only: the minority class).
        minority_share: Share of rows in the smallest class (classification only).
        n_rows: Rows with a known target.
        warnings: Plain-language warnings about the target.
    """

    target: str
    task: Task
    reasoning: str
    classes: list[str] = field(default_factory=list)
    positive_class: str | None = None
    minority_share: float | None = None
    n_rows: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class FeatureWarning:
    """A feature that may hurt or fake model quality."""

    column: str
    kind: Literal["leakage", "id_like", "datetime", "high_cardinality"]
    message: str
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the warning as a JSON-serialisable dict."""
        return asdict(self)


def is_id_like(values: pd.Series) -> bool:
    """Return whether a column holds one distinct string or integer per row.

    Args:
        values: The column.

    Returns:
        True for unique-per-row strings or integers (floats are measurements, not IDs).
    """
    non_null = values.dropna()
    if len(non_null) < 20 or non_null.nunique() < len(non_null):
        return False
    return bool(
        pd.api.types.is_integer_dtype(non_null)
        or pd.api.types.is_string_dtype(non_null)
        or pd.api.types.is_object_dtype(non_null)
    )


def _refuse(target: str, message: str, hint: str) -> InvalidInput:
    return InvalidInput(message, hint=hint, details={"column": target})


def _check_target(df: pd.DataFrame, target: str) -> pd.Series:
    if target not in df.columns:
        raise _refuse(
            target,
            f"Column '{target}' can't be the target: it is missing from the data "
            f"({len(df.columns)} columns).",
            "Pick one of the existing columns.",
        )
    y = df[target]
    known = y.dropna()
    if known.empty:
        raise _refuse(
            target,
            f"Column '{target}' can't be the target: all {len(y):,} rows are empty.",
            "Pick another column or fill the values in.",
        )
    if known.nunique() < 2:
        raise _refuse(
            target,
            f"Column '{target}' can't be the target: it is constant "
            f"(every known row is {known.iloc[0]!r}).",
            "Pick a column whose values differ between rows.",
        )
    if is_id_like(known) and not pd.api.types.is_float_dtype(known):
        raise _refuse(
            target,
            f"Column '{target}' can't be the target: it looks like an ID "
            f"(a different value on each of {len(known):,} rows).",
            "Pick the column you want to predict, not a row identifier.",
        )
    return known


def _infer_task(known: pd.Series) -> tuple[Task, str]:
    n_unique = int(known.nunique())
    if pd.api.types.is_bool_dtype(known) or n_unique == 2:
        return "binary", "it has exactly 2 distinct values, so this is binary classification"
    numeric = pd.api.types.is_numeric_dtype(known)
    if not numeric:
        return "multiclass", f"it holds text with {n_unique} categories, so this is multiclass"
    integer_like = bool(np.all(np.mod(known.to_numpy(dtype=float), 1) == 0))
    if integer_like and n_unique <= min(20, max(3, len(known) // 20)):
        return "multiclass", (
            f"it holds {n_unique} distinct whole numbers, so they are treated as classes"
        )
    return "regression", f"it holds {n_unique} distinct numbers, so this is regression"


def detect_problem(df: pd.DataFrame, target: str, *, override: str | None = None) -> ProblemInfo:
    """Detect the learning task implied by a target column.

    Args:
        df: The data, one row per example.
        target: The column to predict.
        override: Force ``binary``, ``multiclass`` or ``regression``.

    Returns:
        The detected :class:`ProblemInfo`.

    Raises:
        InvalidInput: The target is missing, empty, constant, ID-like, has a class with
            fewer than 2 rows, or the override does not fit the column.
    """
    known = _check_target(df, target)
    task, why = _infer_task(known)
    if override is not None:
        task, why = _apply_override(known, target, override, task)
    reasoning = f"'{target}' was chosen as the target; {why}."
    warnings: list[str] = []
    missing = len(df) - len(known)
    if missing:
        warnings.append(f"{missing:,} rows have no '{target}' value and will be left out.")
    if task == "regression":
        return ProblemInfo(target, task, reasoning, n_rows=len(known), warnings=warnings)
    counts = known.astype(str).value_counts()
    if int(counts.min()) < 2:
        rare = counts[counts < 2].index.tolist()
        raise InvalidInput(
            f"Column '{target}' can't be the target: class {rare[0]!r} has only 1 row "
            f"({len(rare)} class(es) with fewer than 2 rows).",
            hint="Merge rare classes or drop those rows, then train again.",
            details={"column": target, "classes": rare[:20]},
        )
    if task == "multiclass" and len(counts) > _MAX_CLASSES:
        raise _refuse(
            target,
            f"Column '{target}' has {len(counts)} classes; at most {_MAX_CLASSES} are supported.",
            "Group the classes or pick a numeric target for regression.",
        )
    share = float(counts.min() / counts.sum())
    if share < 0.1:
        warnings.append(
            f"The classes are imbalanced: the smallest ({counts.index[-1]!r}) is "
            f"{share:.1%} of rows."
        )
    positive = str(counts.index[-1]) if task == "binary" else None
    return ProblemInfo(
        target,
        task,
        reasoning,
        classes=sorted(counts.index.tolist()),
        positive_class=positive,
        minority_share=share,
        n_rows=len(known),
        warnings=warnings,
    )


def _apply_override(known: pd.Series, target: str, override: str, task: Task) -> tuple[Task, str]:
    if override not in ("binary", "multiclass", "regression"):
        raise InvalidInput(
            f"Task override {override!r} is not known; use binary, multiclass or regression.",
            details={"parameter": "task", "column": target},
        )
    n_unique = int(known.nunique())
    if override == "regression" and not pd.api.types.is_numeric_dtype(known):
        raise _refuse(
            target,
            f"Column '{target}' holds text, so it can't be a regression target.",
            "Pick binary or multiclass.",
        )
    if override == "binary" and n_unique != 2:
        raise _refuse(
            target,
            f"Column '{target}' has {n_unique} values, not the 2 binary needs.",
            "Pick multiclass, or recode the column to two values.",
        )
    if override == task:
        return task, f"you chose {override}, which matches the data"
    return override, f"you chose {override} (the data suggested {task})"  # type: ignore[return-value]


def find_feature_warnings(df: pd.DataFrame, target: str) -> list[FeatureWarning]:
    """Flag features that leak the target, identify rows, hold dates or many text values.

    Args:
        df: The data including the target column.
        target: The target column.

    Returns:
        Warnings, leakage suspects first.
    """
    known = df[df[target].notna()]
    y = known[target]
    classification = y.nunique() >= 2 and _infer_task(y)[0] != "regression"
    found: list[FeatureWarning] = []
    for column in (c for c in df.columns if c != target):
        values = known[column]
        found.extend(_column_warnings(str(column), values))
        score = _single_feature_score(values, y, classification=classification)
        if score is not None and score >= _LEAKAGE_SCORE:
            found.insert(
                0,
                FeatureWarning(
                    str(column),
                    "leakage",
                    f"'{column}' alone predicts '{target}' almost perfectly (score {score:.3f}); "
                    "it may be recorded after the outcome. Check it or drop it.",
                    score=round(score, 4),
                ),
            )
    return found


def _column_warnings(column: str, values: pd.Series) -> list[FeatureWarning]:
    if pd.api.types.is_datetime64_any_dtype(values):
        return [
            FeatureWarning(
                column,
                "datetime",
                f"'{column}' is a date/time; it is split into year, month, day "
                "and weekday. Random splits can leak the future into training.",
            )
        ]
    if is_id_like(values):
        return [
            FeatureWarning(
                column,
                "id_like",
                f"'{column}' has a different value on every row, like an ID; "
                "it is left out of training.",
            )
        ]
    if pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values):
        n_unique = int(values.nunique())
        if n_unique > _HIGH_CARDINALITY and n_unique > 0.2 * max(len(values), 1):
            return [
                FeatureWarning(
                    column,
                    "high_cardinality",
                    f"'{column}' is text with {n_unique:,} distinct values; only "
                    "its most frequent values are used.",
                )
            ]
    return []


def _single_feature_score(values: pd.Series, y: pd.Series, *, classification: bool) -> float | None:
    """Cross-validated AUC (classification) or R² (regression) of a depth-3 tree on one feature."""
    if pd.api.types.is_datetime64_any_dtype(values) or is_id_like(values) or len(y) < 20:
        return None
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        x = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        x = values.astype("category").cat.codes.to_numpy(dtype=float)
    x = np.where(np.isnan(x), -1e12, x).reshape(-1, 1)
    if classification:
        labels = y.astype(str).to_numpy()
        if pd.Series(labels).value_counts().min() < 3:
            return None
        tree = DecisionTreeClassifier(max_depth=3, random_state=0)
        proba = cross_val_predict(tree, x, labels, cv=3, method="predict_proba")
        classes = np.unique(labels)
        if len(classes) == 2:
            return float(roc_auc_score(labels == classes[1], proba[:, 1]))
        return float(roc_auc_score(labels, proba, multi_class="ovr", labels=classes))
    pred = cross_val_predict(
        DecisionTreeRegressor(max_depth=3, random_state=0), x, y.to_numpy(dtype=float), cv=3
    )
    return float(r2_score(y.to_numpy(dtype=float), pred))
