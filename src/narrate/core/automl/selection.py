"""Feature selection on raw columns: correlation filter, mutual-information top-k, RFE with CV.

Selection runs inside the pipeline (so it is refitted on each training fold) and works on
the original column names, so the report reads "dropped 'Price': 0.97 correlated with
'Amount'" rather than naming one-hot dummies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import RFECV, mutual_info_classif, mutual_info_regression

from narrate.core.automl.transformers import categorical_columns, numeric_columns

__all__ = ["FeatureSelector", "encode_for_scoring"]


def encode_for_scoring(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Encode numeric and categorical columns as floats for scoring.

    Args:
        X: Raw feature frame.

    Returns:
        The matrix (median-imputed numbers, category codes), a discrete-column mask and
        the column names in matrix order (date/time columns are left out).
    """
    numeric = numeric_columns(X)
    categorical = categorical_columns(X)
    blocks: list[np.ndarray] = []
    for column in numeric:
        values = X[column].to_numpy(dtype=float, na_value=np.nan)
        median = np.nanmedian(values) if np.isfinite(values).any() else 0.0
        blocks.append(np.where(np.isnan(values), median, values))
    for column in categorical:
        blocks.append(X[column].astype(str).astype("category").cat.codes.to_numpy(dtype=float))
    names = numeric + categorical
    matrix = np.column_stack(blocks) if blocks else np.empty((len(X), 0))
    mask = np.array([False] * len(numeric) + [True] * len(categorical), dtype=bool)
    return matrix, mask, names


class FeatureSelector(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Keep the most useful raw columns and record why the others were dropped.

    Args:
        method: ``correlation``, ``mutual_info`` or ``rfe`` (``auto`` = ``correlation``).
        k: Columns to keep for ``mutual_info``/``rfe`` (default: half, at least 1).
        threshold: Absolute Pearson correlation above which one of a pair is dropped.
        task: ``binary``, ``multiclass`` or ``regression``.
        random_state: Seed for mutual information and RFE.
    """

    def __init__(
        self,
        method: str = "correlation",
        *,
        k: int | None = None,
        threshold: float = 0.95,
        task: str = "binary",
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.k = k
        self.threshold = threshold
        self.task = task
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> FeatureSelector:
        """Choose the columns to keep; returns self."""
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        matrix, mask, names = encode_for_scoring(X)
        relevance = self._relevance(matrix, mask, np.asarray(y))
        method = "correlation" if self.method == "auto" else self.method
        if method == "correlation":
            dropped = self._correlated(matrix, mask, names, relevance)
        elif method == "mutual_info":
            dropped = self._lowest_mutual_info(names, relevance)
        elif method == "rfe":
            dropped = self._recursive_elimination(matrix, np.asarray(y), names)
        else:
            raise ValueError(f"unknown feature selection method {self.method!r}")
        self.dropped_: dict[str, str] = dropped
        self.selected_ = [str(c) for c in X.columns if str(c) not in dropped]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the kept columns."""
        return X[self.selected_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """Return the kept column names."""
        return np.asarray(self.selected_, dtype=object)

    def _relevance(self, matrix: np.ndarray, mask: np.ndarray, y: np.ndarray) -> np.ndarray:
        if matrix.shape[1] == 0:
            return np.empty(0)
        if self.task == "regression":
            return np.asarray(
                mutual_info_regression(
                    matrix, y.astype(float), discrete_features=mask, random_state=self.random_state
                )
            )
        return np.asarray(
            mutual_info_classif(
                matrix, y.astype(str), discrete_features=mask, random_state=self.random_state
            )
        )

    def _correlated(
        self, matrix: np.ndarray, mask: np.ndarray, names: list[str], relevance: np.ndarray
    ) -> dict[str, str]:
        numeric = np.flatnonzero(~mask)
        if len(numeric) < 2:
            return {}
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.corrcoef(matrix[:, numeric], rowvar=False))
        dropped: dict[str, str] = {}
        for a in range(len(numeric)):
            for b in range(a + 1, len(numeric)):
                first, second = names[numeric[a]], names[numeric[b]]
                if first in dropped or second in dropped or not corr[a, b] > self.threshold:
                    continue
                keep_first = relevance[numeric[a]] >= relevance[numeric[b]]
                loser, winner = (second, first) if keep_first else (first, second)
                dropped[loser] = (
                    f"{corr[a, b]:.2f} correlated with '{winner}', which is more related "
                    "to the target"
                )
        return dropped

    def _keep_count(self, n_columns: int) -> int:
        return min(n_columns, self.k if self.k is not None else max(1, (n_columns + 1) // 2))

    def _lowest_mutual_info(self, names: list[str], relevance: np.ndarray) -> dict[str, str]:
        keep = self._keep_count(len(names))
        order = np.argsort(-relevance, kind="stable")
        return {
            names[i]: f"mutual information with the target {relevance[i]:.3f} is not in the "
            f"top {keep}"
            for i in order[keep:]
        }

    def _recursive_elimination(
        self, matrix: np.ndarray, y: np.ndarray, names: list[str]
    ) -> dict[str, str]:
        if matrix.shape[1] < 2:
            return {}
        if self.task == "regression":
            model: Any = ExtraTreesRegressor(
                n_estimators=30, max_depth=4, random_state=self.random_state
            )
            target = y.astype(float)
        else:
            model = ExtraTreesClassifier(
                n_estimators=30, max_depth=4, random_state=self.random_state
            )
            target = y.astype(str)
        minimum = self.k if self.k is not None else 1
        rfe = RFECV(model, cv=3, min_features_to_select=min(minimum, matrix.shape[1]))
        rfe.fit(matrix, target)
        return {
            name: f"recursive feature elimination (3-fold CV) ranked it {rank}"
            for name, rank, kept in zip(names, rfe.ranking_, rfe.support_, strict=True)
            if not kept
        }
