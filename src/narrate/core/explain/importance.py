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
    name, score = _scorer(model, task, y)
    baseline = score(X)
    rng = np.random.default_rng(seed)
    drops: dict[str, list[float]] = {}
    for column in X.columns:
        work = X.copy()
        for _ in range(repeats):
            work[column] = X[column].to_numpy()[rng.permutation(len(X))]
            drops.setdefault(str(column), []).append(baseline - score(work))
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
