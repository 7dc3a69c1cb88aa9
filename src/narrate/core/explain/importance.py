"""Global importances in raw columns: permutation importance with its spread over repeats.

A raw column is permuted as a whole (so its one-hot dummies, date parts and missing-value
indicator move together) and the drop in the model's score is its importance. The score
is ROC AUC for binary classifiers, log loss (as its negative) for multiclass and R² for
regression, so a larger drop always means a more important column. Where the explainer is
exact and fast (not the sampling one), the mean absolute local contribution per column and
per prepared part is added, from at most ``MAX_LOCAL_ROWS`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, r2_score, roc_auc_score

from narrate.core.explain.lineage import transform_chain
from narrate.core.explain.local import Explainer

__all__ = ["ColumnImportance", "Importances", "permutation_importances"]

#: Rows whose local contributions are averaged for mean |contribution|.
MAX_LOCAL_ROWS = 500


@dataclass
class ColumnImportance:
    """One raw column's importance."""

    column: str
    importance: float
    std: float
    mean_abs_contribution: float | None
    parts: dict[str, float]


@dataclass
class Importances:
    """Importances of every raw column, most important first."""

    columns: list[ColumnImportance]
    method: str
    score: str
    baseline_score: float
    n_rows: int
    repeats: int
    contribution_scale: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "columns": [vars(c) for c in self.columns],
            "method": self.method,
            "score": self.score,
            "baseline_score": self.baseline_score,
            "n_rows": self.n_rows,
            "repeats": self.repeats,
            "contribution_scale": self.contribution_scale,
        }


def _scorer(model: Any, task: str, y: pd.Series) -> tuple[str, Any]:
    if task == "regression":
        truth = y.to_numpy(dtype=float)
        return "r2", lambda X: float(r2_score(truth, np.asarray(model.predict(X), dtype=float)))
    classes = [str(c) for c in model.classes_]
    labels = y.astype(str).to_numpy()
    if task == "binary":
        positive = labels == classes[1]

        def auc(X: pd.DataFrame) -> float:
            return float(roc_auc_score(positive, np.asarray(model.predict_proba(X))[:, 1]))

        return "roc_auc", auc

    def neg_log_loss(X: pd.DataFrame) -> float:
        proba = np.asarray(model.predict_proba(X), dtype=float)
        # float32 boosters can drift from summing to one; log_loss insists.
        proba = proba / proba.sum(axis=1, keepdims=True)
        return -float(log_loss(labels, proba, labels=classes))

    return "neg_log_loss", neg_log_loss


def permutation_importances(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    *,
    repeats: int = 3,
    seed: int = 0,
    explainer: Explainer | None = None,
) -> Importances:
    """Permutation importance of each raw column on labelled rows.

    Args:
        model: The fitted model taking raw rows.
        X: Raw rows (ideally not seen in training).
        y: Their target.
        task: ``binary``, ``multiclass`` or ``regression``.
        repeats: Permutations per column (mean and standard deviation over them).
        seed: Random state of the permutations.
        explainer: Adds mean |local contribution| per column and part when its method is
            exact (not sampling).

    Returns:
        Importances, most important column first.
    """
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True)
    prepared = _prepared(explainer, X)
    if prepared is None:
        name, score = _scorer(model, task, y)
        data: Any = X
        groups = {str(c): [j] for j, c in enumerate(X.columns)}
    else:
        data, groups, estimator = prepared
        name, score = _scorer(estimator, task, y)
    baseline = score(data)
    rng = np.random.default_rng(seed)
    drops: dict[str, list[float]] = {}
    for column, positions in groups.items():
        for _ in range(repeats):
            shuffled = _shuffled(data, positions, rng.permutation(len(X)))
            drops.setdefault(column, []).append(baseline - score(shuffled))
    local, scale = _mean_abs(explainer, X, seed)
    columns = [
        ColumnImportance(
            column=column,
            importance=float(np.mean(values)),
            std=float(np.std(values)),
            mean_abs_contribution=(local or {}).get(column, {}).get("", None),
            parts={k: v for k, v in (local or {}).get(column, {}).items() if k},
        )
        for column, values in drops.items()
    ]
    columns.sort(key=lambda c: -c.importance)
    return Importances(columns, "permutation", name, float(baseline), len(X), repeats, scale)


def _prepared(
    explainer: Explainer | None, X: pd.DataFrame
) -> tuple[Any, dict[str, list[int]], Any] | None:
    """The rows as the estimator receives them, each raw column's prepared features and
    the estimator; None unless every prepared feature comes from exactly one raw column.

    Shuffling a raw column's rows then equals shuffling the same rows of its prepared
    features, so the pipeline's preparation runs once instead of once per shuffle (the
    costly part for tens of thousands of rows).
    """
    if explainer is None or explainer.method != "native":
        return None
    member = explainer.members[0]
    weights = member.features.weights
    single = np.all((weights == 0) | (weights == 1)) and np.all((weights > 0).sum(axis=1) == 1)
    if not single or not set(member.features.raw_columns) <= {str(c) for c in X.columns}:
        return None
    data = transform_chain(member.chain.steps, explainer.conform(X))
    groups = {
        column: [int(i) for i in np.flatnonzero(weights[:, r])]
        for r, column in enumerate(member.features.raw_columns)
    }
    for column in X.columns:
        groups.setdefault(str(column), [])
    return data, groups, member.chain.estimator


def _shuffled(data: Any, positions: list[int], order: np.ndarray) -> Any:
    """``data`` with the rows of the columns at ``positions`` put in ``order``."""
    if isinstance(data, pd.DataFrame):
        work = data.copy()
        moved = data.iloc[order, positions].set_axis(data.index, axis=0)
        for name in moved.columns:
            work[name] = moved[name]
        return work
    work = np.array(data, copy=True)
    work[:, positions] = np.asarray(data)[order][:, positions]
    return work


def _mean_abs(
    explainer: Explainer | None, X: pd.DataFrame, seed: int
) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """Mean |contribution| per column (key "") and per part, on the explainer's scale."""
    if explainer is None or explainer.method == "sampling":
        return None, None
    rows = X.sample(n=min(MAX_LOCAL_ROWS, len(X)), random_state=seed)
    scale, explained = explainer.explain(rows)
    out: dict[str, dict[str, float]] = {}
    for row in explained:
        for column, value in row.contributions.items():
            into = out.setdefault(column, {})
            into[""] = into.get("", 0.0) + abs(value) / len(explained)
            for part, v in row.parts.get(column, {}).items():
                into[part] = into.get(part, 0.0) + abs(v) / len(explained)
    return out, scale
