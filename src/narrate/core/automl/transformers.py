"""Small scikit-learn transformers used inside candidate pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# Shared with the serving format, which must not import scikit-learn; pickled pipelines
# refer to these functions by name.
from narrate.core.serving import DATETIME_PARTS, as_text, datetime_parts, expm1_capped

__all__ = [
    "CategoryCodes",
    "DatetimeParts",
    "DropColumns",
    "as_text",
    "categorical_columns",
    "datetime_columns",
    "expm1_capped",
    "numeric_columns",
]


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Return numeric (not boolean) columns; a ColumnTransformer selector."""
    return [
        str(c)
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    """Return text, categorical and boolean columns; a ColumnTransformer selector."""
    return [
        str(c)
        for c in frame.columns
        if not pd.api.types.is_datetime64_any_dtype(frame[c])
        and (not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]


def datetime_columns(frame: pd.DataFrame) -> list[str]:
    """Return date/time columns; a ColumnTransformer selector."""
    return [str(c) for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]


class DropColumns(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Drop named columns from a DataFrame (missing names are ignored).

    Args:
        columns: Column names to drop.
    """

    def __init__(self, columns: tuple[str, ...] = ()) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> DropColumns:  # noqa: ARG002
        """Record the input columns; returns self."""
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the frame without the dropped columns."""
        return X.drop(columns=[c for c in self.columns if c in X.columns])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """Return the kept column names."""
        kept = [c for c in self.feature_names_in_ if c not in set(self.columns)]
        return np.asarray(kept, dtype=object)


class DatetimeParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Turn date/time columns into numeric year, month, day, weekday and hour columns."""

    _PARTS = DATETIME_PARTS

    def fit(self, X: pd.DataFrame, y: Any = None) -> DatetimeParts:  # noqa: ARG002
        """Record the input columns; returns self."""
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Return one float column per (input column, part); missing dates become NaN."""
        return datetime_parts(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """Return ``<column>_<part>`` names."""
        names = [f"{c}_{p}" for c in self.feature_names_in_ for p in self._PARTS]
        return np.asarray(names, dtype=object)


class CategoryCodes(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Turn ordinal codes (``-1`` = unknown) into pandas categorical columns.

    Gradient-boosted trees (HistGradientBoosting, LightGBM, XGBoost) split a categorical
    column on groups of categories instead of on the codes' arbitrary order. The category
    set of each column is fixed at fit time, so training and prediction agree; a code
    unseen at fit time becomes missing.
    """

    def fit(self, X: Any, y: Any = None) -> CategoryCodes:  # noqa: ARG002
        """Record each column's number of categories; returns self."""
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        codes = frame.to_numpy(dtype=float)
        self.n_categories_ = [
            int(np.nanmax(codes[:, j])) + 1 if len(codes) and np.isfinite(codes[:, j]).any() else 0
            for j in range(codes.shape[1])
        ]
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        """Return one pandas categorical column per input column."""
        frame = pd.DataFrame(X)
        codes = np.nan_to_num(frame.to_numpy(dtype=float), nan=-1.0).astype(int)
        columns = {}
        for j, name in enumerate(self.feature_names_in_):
            n = max(self.n_categories_[j], 1)
            column = np.where(codes[:, j] < n, codes[:, j], -1)
            columns[str(name)] = pd.Categorical.from_codes(column, categories=list(range(n)))
        return pd.DataFrame(columns, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """Return the input names."""
        return np.asarray(self.feature_names_in_, dtype=object)

    def set_output(self, *, transform: str | None = None) -> CategoryCodes:  # noqa: ARG002
        """Always pandas: categorical columns need a DataFrame to carry their dtype."""
        return self
