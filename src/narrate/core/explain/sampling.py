"""A permutation sampling explainer over raw columns, for models with no exact method.

For one row and an ordering of the columns, the columns are switched from background
values to the row's values one at a time; each column's contribution is the change in the
model's mean output over the background when it is switched. The changes telescope, so
``base (mean output on the background) + sum(contributions) == output on the row``
exactly, whatever the orderings. Two orderings are used, one the reverse of the other
(antithetic sampling halves the variance for interactions between two columns). Cost:
``(2 x (n_columns - 1) + 2) x n_background`` model rows, scored in one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["permutation_contributions"]


def _stacked(row: pd.DataFrame, background: pd.DataFrame, masks: np.ndarray) -> pd.DataFrame:
    n_background = len(background)
    columns = {}
    for j, column in enumerate(background.columns):
        values = background[column].to_numpy()
        if values.dtype == bool:
            values = values.astype(object)
        tiled = np.tile(values, len(masks))
        value = row[column].to_numpy()[0]
        tiled[np.repeat(masks[:, j], n_background)] = value
        series = pd.Series(tiled)
        with contextlib.suppress(TypeError, ValueError):
            series = series.astype(background[column].dtype)
        columns[column] = series
    return pd.DataFrame(columns)


def permutation_contributions(
    score: Callable[[pd.DataFrame], np.ndarray],
    row: pd.DataFrame,
    background: pd.DataFrame,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Contributions of each column of one row to ``score``.

    Args:
        score: The model's output (one number per row) for raw rows.
        row: One raw row.
        background: Raw rows standing for "unknown" values (tens are enough).
        seed: Random state of the column ordering.

    Returns:
        Contributions in ``background.columns`` order, and the base value.
    """
    n = background.shape[1]
    order = np.random.default_rng(seed).permutation(n)
    orders = [order, order[::-1]]
    masks = [np.zeros(n, dtype=bool)]
    for perm in orders:
        for t in range(1, n):
            mask = np.zeros(n, dtype=bool)
            mask[perm[:t]] = True
            masks.append(mask)
    masks.append(np.ones(n, dtype=bool))
    values = np.asarray(score(_stacked(row, background, np.asarray(masks))), dtype=float)
    means = values.reshape(len(masks), len(background)).mean(axis=1)
    base, full = float(means[0]), float(means[-1])
    contributions = np.zeros(n)
    for p, perm in enumerate(orders):
        steps = np.concatenate([[base], means[1 + p * (n - 1) : 1 + (p + 1) * (n - 1)], [full]])
        contributions[perm] += np.diff(steps)
    return contributions / len(orders), base
