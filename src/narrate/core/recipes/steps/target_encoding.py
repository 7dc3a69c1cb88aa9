"""Target encoding fitted out-of-fold, so a category's own rows never leak its target.

Training rows get the smoothed target mean of their category computed on the *other*
folds (K folds assigned with a seeded permutation); the stored map is fitted on all rows
and is what new rows get. Unseen or missing categories get the overall mean.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from narrate.core.recipes.dtypes import is_numeric, kind_of
from narrate.core.recipes.steps.base import FitContext, Params, Problem, SchemaState, data_problem

__all__ = ["apply_target_maps", "fit_target_encoding", "target_problems"]

_FOLD = "__narrate_fold__"
_Y = "__narrate_y__"


def target_problems(state: SchemaState, target: str | None, columns: list[str]) -> list[Problem]:
    """Check that target encoding has a usable target."""
    if target is None:
        message = "Target encoding needs a target column. Choose the column to predict first."
        return [Problem(message, "missing_target", "target")]
    if not state.has(target):
        message = f"Target column '{target}' does not exist at this step."
        return [Problem(message, "unknown_column", "target", target)]
    if target in columns:
        message = f"Column '{target}' is the target; it cannot encode itself."
        return [Problem(message, "target_in_columns", "columns", target)]
    dtype = state.dtype(target)
    if dtype is not None and kind_of(dtype) not in ("numeric", "boolean", "text"):
        message = (
            f"Target '{target}' is {kind_of(dtype)}; target encoding needs numbers or classes."
        )
        return [Problem(message, "wrong_type", "target", target)]
    return []


def _target_values(df: pl.DataFrame, target: str, ctx: FitContext) -> tuple[pl.Series, str | None]:
    """Return the target as floats (binary classes as 0/1) and the positive class."""
    series = df[target]
    if is_numeric(series.dtype) or isinstance(series.dtype, pl.Boolean):
        return series.cast(pl.Float64), None
    classes = sorted(series.cast(pl.String).drop_nulls().unique().to_list())
    if len(classes) > 2:
        raise data_problem(
            ctx,
            f"target '{target}' has {len(classes)} classes; target encoding supports numeric "
            "or two-class targets. Use one_hot or frequency encoding instead.",
            code="unsupported_target",
            column=target,
            parameter="target",
        )
    positive = classes[-1] if classes else None
    return (series.cast(pl.String) == positive).cast(pl.Float64), positive


def fit_target_encoding(
    df: pl.DataFrame,
    columns: list[str],
    target: str | None,
    ctx: FitContext,
    *,
    n_folds: int,
    smoothing: float,
) -> tuple[pl.DataFrame, Params]:
    """Encode ``columns`` out-of-fold and return the frame plus the full-data maps.

    Raises:
        DataProblem: No target, or a target with more than two classes.
    """
    if target is None or target not in df.columns:
        raise data_problem(
            ctx,
            "target encoding needs a target column.",
            code="missing_target",
            parameter="target",
            column=target,
        )
    y, positive = _target_values(df, target, ctx)
    if y.drop_nulls().len() == 0:
        raise data_problem(
            ctx,
            f"target '{target}' has no values to learn category averages from. Drop the "
            "rows without a target first, or pick another encoding.",
            code="all_missing",
            parameter="target",
            column=target,
        )
    prior = float(y.mean())  # type: ignore[arg-type]
    folds = np.random.default_rng(ctx.seed).permutation(df.height) % n_folds
    work = pl.DataFrame({_Y: y, _FOLD: pl.Series(folds, dtype=pl.Int32)})
    maps, encoded = {}, []
    for column in columns:
        keyed = work.with_columns(df[column].cast(pl.String).alias("k"))
        maps[column] = _full_map(keyed, prior, smoothing)
        encoded.append(_out_of_fold(keyed, prior, smoothing).alias(column))
    params: Params = {"maps": maps, "default": prior, "positive": positive, "target": target}
    return df.with_columns(encoded), params


def _full_map(keyed: pl.DataFrame, prior: float, smoothing: float) -> dict[str, float]:
    stats = (
        keyed.filter(pl.col("k").is_not_null() & pl.col(_Y).is_not_null())
        .group_by("k")
        .agg(pl.col(_Y).sum().alias("s"), pl.len().alias("n"))
        .sort("k")
    )
    values = (stats["s"] + smoothing * prior) / (stats["n"] + smoothing)
    return {k: float(v) for k, v in zip(stats["k"].to_list(), values.to_list(), strict=True)}


def _out_of_fold(keyed: pl.DataFrame, prior: float, smoothing: float) -> pl.Series:
    """Smoothed mean of each row's category over all folds but its own."""
    valid = keyed.filter(pl.col(_Y).is_not_null())
    per_fold = valid.group_by(["k", _FOLD]).agg(pl.col(_Y).sum().alias("fs"), pl.len().alias("fn"))
    per_key = per_fold.group_by("k").agg(
        pl.col("fs").sum().alias("ts"), pl.col("fn").sum().alias("tn")
    )
    fold_tot = valid.group_by(_FOLD).agg(pl.col(_Y).sum().alias("ys"), pl.len().alias("yn"))
    total_s, total_n = float(valid[_Y].sum()), valid.height
    joined = (
        keyed.join(per_fold, on=["k", _FOLD], how="left", maintain_order="left")
        .join(per_key, on="k", how="left", maintain_order="left")
        .join(fold_tot, on=_FOLD, how="left", maintain_order="left")
        .with_columns(pl.col("fs", "fn", "ts", "tn", "ys", "yn").fill_null(0))
    )
    rest_n = total_n - pl.col("yn")
    fold_prior = pl.when(rest_n > 0).then((total_s - pl.col("ys")) / rest_n).otherwise(prior)
    s = pl.col("ts") - pl.col("fs")
    n = pl.col("tn") - pl.col("fn")
    value = (
        pl.when(n + smoothing > 0)
        .then((s + smoothing * fold_prior) / (n + smoothing))
        .otherwise(fold_prior)
    )
    out = joined.select(
        pl.when(pl.col("k").is_null()).then(pl.lit(prior)).otherwise(value).cast(pl.Float64)
    )
    return out.to_series()


def apply_target_maps(df: pl.DataFrame, params: Params) -> pl.DataFrame:
    """Replace categories with their full-data target means; unseen → overall mean."""
    default = float(params["default"])
    return df.with_columns(
        pl.col(c)
        .cast(pl.String)
        .replace_strict(m, default=default, return_dtype=pl.Float64)
        .alias(c)
        for c, m in params["maps"].items()
    )
