"""Steps for numeric columns: outliers, scaling, power transforms and binning."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator
from typing_extensions import override

from narrate.core.recipes.dtypes import is_numeric
from narrate.core.recipes.steps.base import (
    FitContext,
    Params,
    Problem,
    SchemaState,
    StepBase,
    check_columns,
    data_problem,
    finite_or_none,
    quote,
    require_columns,
)

__all__ = ["BinStep", "ClipOutliersStep", "ScaleStep", "TransformStep"]


class _NumericStep(StepBase):
    """A step reading numeric ``columns`` and writing floats back to them."""

    columns: list[str] = Field(min_length=1, description="Numeric columns.")

    def _output_dtype(self) -> pl.DataType:
        return pl.Float64()

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(
            state, self.columns, "columns", accepts=is_numeric, expected="numeric"
        )
        for column in self.columns:
            if column in state.columns:
                state.columns[column] = self._output_dtype()
        return problems

    def _values(self, df: pl.DataFrame, column: str, ctx: FitContext) -> pl.Series:
        """Return the non-missing values of ``column`` as floats, refusing none."""
        values = df[column].cast(pl.Float64).drop_nulls().drop_nans()
        if values.len() == 0:
            raise data_problem(
                ctx,
                f"column '{column}' has no values to learn from. Fill or drop it first.",
                code="all_missing",
                column=column,
                parameter="columns",
            )
        return values


class ClipOutliersStep(_NumericStep):
    """Clip or remove extreme values."""

    step: Literal["clip_outliers"] = "clip_outliers"
    method: Literal["iqr", "zscore", "quantile"] = Field(
        default="iqr", description="How to find the limits."
    )
    factor: float | None = Field(
        default=None, gt=0, description="IQR multiple (1.5) or z-score limit (3)."
    )
    lower_quantile: float = Field(default=0.01, ge=0, lt=1, description="For 'quantile'.")
    upper_quantile: float = Field(default=0.99, gt=0, le=1, description="For 'quantile'.")
    action: Literal["clip", "remove"] = Field(
        default="clip", description="Pull values to the limits, or remove those rows."
    )

    title = "Handle outliers"
    category = "numeric"
    summary = "Clip extreme values to limits, or remove those rows."

    @model_validator(mode="after")
    def _ordered_quantiles(self) -> ClipOutliersStep:
        if self.lower_quantile >= self.upper_quantile:
            raise ValueError("lower_quantile must be below upper_quantile")
        return self

    @override
    def describe(self) -> str:
        limits = {
            "iqr": f"{self.factor or 1.5}× the interquartile range",
            "zscore": f"{self.factor or 3} standard deviations",
            "quantile": f"the {self.lower_quantile:.0%}–{self.upper_quantile:.0%} quantiles",
        }[self.method]
        verb = "Clip values" if self.action == "clip" else "Remove rows with values"
        tail = "" if self.action == "clip" else " (training data only)"
        return f"{verb} of {quote(self.columns)} beyond {limits}{tail}."

    @override
    def is_training_only(self) -> bool:
        return self.action == "remove"

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        bounds = {}
        for column in self.columns:
            values = self._values(df, column, ctx)
            if self.method == "iqr":
                q1, q3 = values.quantile(0.25, "linear"), values.quantile(0.75, "linear")
                spread = (self.factor or 1.5) * (float(q3) - float(q1))  # type: ignore[arg-type]
                low, high = float(q1) - spread, float(q3) + spread  # type: ignore[arg-type]
            elif self.method == "zscore":
                mean, std = float(values.mean()), float(values.std(ddof=0) or 0.0)  # type: ignore[arg-type]
                low, high = mean - (self.factor or 3.0) * std, mean + (self.factor or 3.0) * std
            else:
                low = float(values.quantile(self.lower_quantile, "linear"))  # type: ignore[arg-type]
                high = float(values.quantile(self.upper_quantile, "linear"))  # type: ignore[arg-type]
            bounds[column] = [low, high]
        return {"bounds": bounds}

    @override
    def apply_for_prediction(
        self, df: pl.DataFrame, params: Params, ctx: FitContext
    ) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        return df.with_columns(pl.col(self.columns).cast(pl.Float64))

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        bounds: dict[str, list[float]] = params["bounds"]
        out = df.with_columns(pl.col(self.columns).cast(pl.Float64))
        if self.action == "clip":
            return out.with_columns(pl.col(c).clip(lo, hi) for c, (lo, hi) in bounds.items())
        inside = [
            pl.col(c).is_between(lo, hi) | pl.col(c).is_null() for c, (lo, hi) in bounds.items()
        ]
        return out.filter(pl.all_horizontal(inside))


class ScaleStep(_NumericStep):
    """Rescale numeric columns."""

    step: Literal["scale"] = "scale"
    method: Literal["standard", "minmax", "robust"] = Field(
        default="standard", description="standard: mean 0, sd 1; minmax: 0–1; robust: median/IQR."
    )

    title = "Scale numbers"
    category = "numeric"
    summary = "Put numeric columns on a common scale."

    @override
    def describe(self) -> str:
        how = {
            "standard": "mean 0 and standard deviation 1",
            "minmax": "the range 0 to 1",
            "robust": "median 0 and interquartile range 1",
        }[self.method]
        return f"Rescale {quote(self.columns)} to {how}."

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        stats = {}
        for column in self.columns:
            values = self._values(df, column, ctx)
            if self.method == "standard":
                center, spread = values.mean(), values.std(ddof=0)
            elif self.method == "minmax":
                center, spread = values.min(), float(values.max()) - float(values.min())  # type: ignore[arg-type]
            else:
                q1, q3 = values.quantile(0.25, "linear"), values.quantile(0.75, "linear")
                center, spread = values.median(), float(q3) - float(q1)  # type: ignore[arg-type]
            scale = finite_or_none(spread) or 1.0
            stats[column] = {"center": finite_or_none(center) or 0.0, "scale": scale}
        return {"stats": stats}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        stats = params["stats"]
        return df.with_columns(
            (pl.col(c).cast(pl.Float64) - s["center"]) / s["scale"] for c, s in stats.items()
        )


class TransformStep(_NumericStep):
    """Apply log or power transforms to reduce skew."""

    step: Literal["transform"] = "transform"
    method: Literal["log", "box_cox", "yeo_johnson"] = Field(
        default="yeo_johnson", description="log(1+x), Box-Cox (x > 0) or Yeo-Johnson."
    )

    title = "Reduce skew"
    category = "numeric"
    summary = "Apply a log or power transform so long-tailed columns look more normal."

    @override
    def describe(self) -> str:
        how = {"log": "log(1 + x)", "box_cox": "a Box-Cox", "yeo_johnson": "a Yeo-Johnson"}
        return f"Apply {how[self.method]} transform to {quote(self.columns)}."

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        lambdas = {}
        for column in self.columns:
            values = self._values(df, column, ctx)
            low = float(values.min())  # type: ignore[arg-type]
            if (self.method == "log" and low < 0) or (self.method == "box_cox" and low <= 0):
                need = "zero or more" if self.method == "log" else "above zero"
                raise data_problem(
                    ctx,
                    f"'{column}' has values down to {low:g}, but {self.method} needs {need}. "
                    "Use yeo_johnson instead.",
                    code="out_of_domain",
                    column=column,
                    parameter="method",
                )
            if self.method == "box_cox" and values.n_unique() == 1:
                raise data_problem(
                    ctx,
                    f"'{column}' has the same value ({low:g}) in every row, so no Box-Cox "
                    "transform can be fitted. Drop the column or use yeo_johnson.",
                    code="constant_column",
                    column=column,
                    parameter="method",
                )
            if self.method != "log":
                lambdas[column] = _fit_lambda(values.to_numpy(), self.method)
        return {"lambdas": lambdas}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        if self.method == "log":
            return df.with_columns(pl.col(self.columns).cast(pl.Float64).log1p())
        lambdas: dict[str, float] = params["lambdas"]
        power = _box_cox if self.method == "box_cox" else _yeo_johnson
        return df.with_columns(
            power(pl.col(c).cast(pl.Float64), lam).alias(c) for c, lam in lambdas.items()
        )


def _fit_lambda(values: np.ndarray, method: str) -> float:
    """Fit the power-transform lambda with scikit-learn's maximum likelihood."""
    # Imported here: applying other recipes (a served model) needs no scikit-learn.
    from sklearn.preprocessing import PowerTransformer

    transformer = PowerTransformer(
        method="box-cox" if method == "box_cox" else "yeo-johnson", standardize=False
    )
    with warnings.catch_warnings():
        # very skewed columns overflow inside the optimiser; the lambda is still usable
        warnings.simplefilter("ignore", RuntimeWarning)
        transformer.fit(values.reshape(-1, 1))
    return float(transformer.lambdas_[0])


def _box_cox(x: pl.Expr, lam: float) -> pl.Expr:
    return x.log() if abs(lam) < 1e-12 else (x.pow(lam) - 1) / lam


def _yeo_johnson(x: pl.Expr, lam: float) -> pl.Expr:
    pos = (x + 1).log() if abs(lam) < 1e-12 else ((x + 1).pow(lam) - 1) / lam
    neg = -(1 - x).log() if abs(lam - 2) < 1e-12 else -((1 - x).pow(2 - lam) - 1) / (2 - lam)
    return pl.when(x >= 0).then(pos).otherwise(neg)


class BinStep(_NumericStep):
    """Turn numbers into bin numbers."""

    step: Literal["bin"] = "bin"
    method: Literal["equal_width", "quantile", "custom"] = Field(
        default="quantile", description="Equal-width bins, equal-count bins or your edges."
    )
    n_bins: int = Field(default=5, ge=2, le=100, description="Number of bins.")
    edges: list[float] | None = Field(
        default=None, description="Inner bin edges for 'custom', ascending."
    )

    title = "Group into bins"
    category = "numeric"
    summary = "Replace numbers with the number of the bin they fall in (0, 1, 2 ...)."

    @model_validator(mode="after")
    def _custom_needs_edges(self) -> BinStep:
        if self.method == "custom":
            if not self.edges:
                raise ValueError("the 'custom' method needs 'edges'")
            if sorted(set(self.edges)) != self.edges:
                raise ValueError("edges must be strictly ascending")
        return self

    @override
    def _output_dtype(self) -> pl.DataType:
        return pl.Int32()

    @override
    def describe(self) -> str:
        how = {
            "equal_width": f"{self.n_bins} equal-width bins",
            "quantile": f"{self.n_bins} bins with about as many rows each",
            "custom": f"bins split at {self.edges}",
        }[self.method]
        return f"Group {quote(self.columns)} into {how}."

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        if self.method == "custom":
            return {"edges": dict.fromkeys(self.columns, self.edges)}
        edges = {}
        for column in self.columns:
            values = self._values(df, column, ctx)
            if self.method == "equal_width":
                low, high = float(values.min()), float(values.max())  # type: ignore[arg-type]
                inner = np.linspace(low, high, self.n_bins + 1)[1:-1]
            else:
                probs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
                inner = np.quantile(values.to_numpy(), probs)
            edges[column] = sorted({float(e) for e in inner})
        return {"edges": edges}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        exprs = []
        for column, inner in params["edges"].items():
            x = pl.col(column).cast(pl.Float64)
            count = (
                pl.sum_horizontal([(x > e).cast(pl.Int32) for e in inner]) if inner else pl.lit(0)
            )
            exprs.append(
                pl.when(x.is_null()).then(None).otherwise(count).cast(pl.Int32).alias(column)
            )
        return df.with_columns(exprs)
