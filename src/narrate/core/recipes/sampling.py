"""Seeded row sampling, optionally stratified, that keeps the original row order."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["sample_rows"]

_INDEX = "__narrate_sample_index__"


def sample_rows(
    df: pl.DataFrame,
    *,
    n: int | None = None,
    fraction: float | None = None,
    stratify: str | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """Return a seeded random subset of rows in their original order.

    With ``stratify`` each group of that column keeps its share of rows (missing values
    form their own group).

    Args:
        df: The frame.
        n: How many rows to keep (at most ``df.height``).
        fraction: Share of rows to keep, used when ``n`` is ``None``.
        stratify: Column whose group shares to keep.
        seed: Random seed; same seed, same rows.

    Returns:
        The sampled rows, order preserved.
    """
    share = fraction if n is None else min(1.0, n / df.height if df.height else 1.0)
    if share is None or share >= 1.0 or df.height == 0:
        return df
    rng = np.random.default_rng(seed)
    if stratify is None:
        size = min(df.height, n if n is not None else round(share * df.height))
        chosen = np.sort(rng.choice(df.height, size=size, replace=False))
        return df[chosen]
    groups = (
        df.select(pl.col(stratify).rank("dense").fill_null(0).alias("g"))
        .with_row_index(_INDEX)
        .group_by("g")
        .agg(pl.col(_INDEX))
        .sort("g")
    )
    picked: list[np.ndarray] = []
    for members in groups[_INDEX].to_list():
        size = max(1, round(share * len(members))) if members else 0
        picked.append(rng.choice(np.asarray(members), size=min(size, len(members)), replace=False))
    chosen = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64)
    return df[chosen]
