"""Small scikit-learn transformers used inside candidate pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "DatetimeParts",
    "DropColumns",
    "categorical_columns",
    "datetime_columns",
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

    _PARTS = ("year", "month", "day", "day_of_week", "hour")

    def fit(self, X: pd.DataFrame, y: Any = None) -> DatetimeParts:  # noqa: ARG002
        """Record the input columns; returns self."""
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Return one float column per (input column, part); missing dates become NaN."""
        blocks = []
        for column in X.columns:
            values = pd.to_datetime(X[column], errors="coerce")
            for part in self._PARTS:
                blocks.append(getattr(values.dt, part).to_numpy(dtype=float, na_value=np.nan))
        if not blocks:
            return np.empty((len(X), 0))
        return np.column_stack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """Return ``<column>_<part>`` names."""
        names = [f"{c}_{p}" for c in self.feature_names_in_ for p in self._PARTS]
        return np.asarray(names, dtype=object)
