"""Steps for missing values: drop them or fill them in."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator
from typing_extensions import override

from narrate.core.recipes.dtypes import is_numeric, kind_of
from narrate.core.recipes.steps.base import (
    FitContext,
    Params,
    Problem,
    SchemaState,
    StepBase,
    check_columns,
    data_problem,
    quote,
    require_columns,
)

__all__ = ["DropMissingStep", "ImputeStep"]


class DropMissingStep(StepBase):
    """Drop rows (or columns) with missing values."""

    step: Literal["drop_missing"] = "drop_missing"
    columns: list[str] | None = Field(
        default=None, description="Columns to look at; all columns when empty."
    )
    how: Literal["any", "all"] = Field(
        default="any", description="Drop a row when any / all of the columns are missing."
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Drop rows or columns whose share of missing values is above this.",
    )
    axis: Literal["rows", "columns"] = Field(
        default="rows", description="With a threshold: drop rows or columns."
    )

    title = "Drop missing values"
    category = "missing"
    summary = "Remove rows (or mostly-empty columns) with missing values."

    @model_validator(mode="after")
    def _columns_axis_needs_threshold(self) -> DropMissingStep:
        if self.axis == "columns" and self.threshold is None:
            raise ValueError("dropping columns needs a 'threshold' (share of missing values)")
        return self

    @override
    def describe(self) -> str:
        where = f"in {quote(self.columns)}" if self.columns else "in any column"
        if self.threshold is not None:
            share = f"{self.threshold:.0%}"
            if self.axis == "columns":
                return f"Remove columns where more than {share} of values are missing."
            return f"Remove rows where more than {share} of values {where} are missing."
        word = "any" if self.how == "any" else "all"
        return f"Remove rows where {word} of the values {where} are missing (training only)."

    @override
    def is_training_only(self) -> bool:
        return self.axis == "rows"

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns or [], "columns")
        if self.axis == "columns":
            # which columns go depends on data; later steps are checked leniently
            state.dynamic_prefixes.extend(c for c in (self.columns or state.columns))
        return problems

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        columns = self.columns or ctx.data_columns(df)
        require_columns(df, columns, ctx, "columns")
        if self.axis != "columns" or df.height == 0:
            return {"dropped_columns": []}
        shares = df.select(pl.col(columns).null_count()).row(0)
        limit = self.threshold or 0.0
        dropped = [c for c, n in zip(columns, shares, strict=True) if n / df.height > limit]
        return {"dropped_columns": dropped}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        if self.axis == "columns":
            return df.drop([c for c in params["dropped_columns"] if c in df.columns])
        columns = self.columns or ctx.data_columns(df)
        require_columns(df, columns, ctx, "columns")
        if not columns:
            return df
        missing = pl.sum_horizontal(pl.col(columns).is_null().cast(pl.Int32))
        if self.threshold is not None:
            return df.filter(missing <= self.threshold * len(columns))
        if self.how == "any":
            return df.filter(missing == 0)
        return df.filter(missing < len(columns))


ImputeStrategy = Literal["mean", "median", "mode", "constant", "ffill", "bfill", "knn"]


class ImputeStep(StepBase):
    """Fill in missing values."""

    step: Literal["impute"] = "impute"
    columns: list[str] = Field(min_length=1, description="Columns to fill in.")
    strategy: ImputeStrategy = Field(default="median", description="How to fill.")
    value: float | int | bool | str | None = Field(
        default=None, description="The fill value for the 'constant' strategy."
    )
    n_neighbors: int = Field(default=5, ge=1, le=50, description="Neighbours for 'knn'.")
    max_train_rows: int = Field(
        default=2000, ge=10, le=50_000, description="Rows 'knn' keeps to find neighbours."
    )

    title = "Fill missing values"
    category = "missing"
    summary = "Fill missing values with a mean, median, most common value, constant or neighbours."

    @model_validator(mode="after")
    def _constant_needs_value(self) -> ImputeStep:
        if self.strategy == "constant" and self.value is None:
            raise ValueError("the 'constant' strategy needs a 'value'")
        return self

    @override
    def describe(self) -> str:
        how = {
            "mean": "the column average",
            "median": "the column median",
            "mode": "the most common value",
            "constant": f"{self.value!r}",
            "ffill": "the previous row's value",
            "bfill": "the next row's value",
            "knn": f"the average of the {self.n_neighbors} most similar rows",
        }[self.strategy]
        return f"Fill missing values in {quote(self.columns)} with {how}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        if self.strategy in ("mean", "median", "knn"):
            problems = check_columns(
                state, self.columns, "columns", accepts=is_numeric, expected="numeric"
            )
        else:
            problems = check_columns(state, self.columns, "columns")
        if self.strategy == "constant":
            problems += self._check_value(state)
        if self.strategy in ("mean", "median", "knn"):
            for column in self.columns:
                if state.dtype(column) is not None:
                    state.columns[column] = pl.Float64()
        return problems

    def _check_value(self, state: SchemaState) -> list[Problem]:
        """A constant must fit the column's type, or filling would silently change it."""
        problems = []
        for column in self.columns:
            dtype = state.dtype(column)
            if dtype is None:
                continue
            fits = {
                "numeric": isinstance(self.value, int | float) and not isinstance(self.value, bool),
                "boolean": isinstance(self.value, bool),
                "text": isinstance(self.value, str),
            }.get(kind_of(dtype), True)
            if not fits:
                message = (
                    f"The fill value {self.value!r} does not fit column '{column}', which is "
                    f"{kind_of(dtype)}. Give a {kind_of(dtype)} value, or cast the column first."
                )
                problems.append(Problem(message, "wrong_type", "value", column))
            elif kind_of(dtype) == "numeric" and isinstance(self.value, float):
                state.columns[column] = pl.Float64() if not dtype.is_float() else dtype
        return problems

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        if self.strategy in ("ffill", "bfill", "constant"):
            return {}
        if self.strategy == "knn":
            return self._learn_knn(df, ctx)
        fills: dict[str, Any] = {}
        for column in self.columns:
            fills[column] = _statistic(df[column], self.strategy)
            if fills[column] is None:
                raise data_problem(
                    ctx,
                    f"column '{column}' has no values, so there is no {self.strategy} to "
                    "fill with. Use a constant, or drop the column.",
                    code="all_missing",
                    column=column,
                    parameter="strategy",
                )
        return {"fill": fills}

    def _learn_knn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        train = df.select(pl.col(self.columns).cast(pl.Float64))
        nulls = train.null_count().row(0)
        empty = [c for c, n in zip(self.columns, nulls, strict=True) if n == train.height]
        if empty:
            raise data_problem(
                ctx,
                f"column '{empty[0]}' has no values, so its neighbours cannot fill it. "
                "Use a constant, or drop the column.",
                code="all_missing",
                column=empty[0],
                parameter="columns",
            )
        if train.height > self.max_train_rows:
            train = train.sample(n=self.max_train_rows, seed=ctx.seed).sort(
                self.columns, nulls_last=True, maintain_order=True
            )
        return {"columns": self.columns, "train": [list(row) for row in train.rows()]}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        if self.strategy == "ffill":
            return df.with_columns(pl.col(self.columns).fill_null(strategy="forward"))
        if self.strategy == "bfill":
            return df.with_columns(pl.col(self.columns).fill_null(strategy="backward"))
        if self.strategy == "constant":
            return df.with_columns(pl.col(self.columns).fill_null(self.value))
        if self.strategy == "knn":
            return _apply_knn(df, params, self.n_neighbors)
        fills = params["fill"]
        if self.strategy == "mode":
            return df.with_columns(
                pl.col(c).fill_null(pl.lit(fills[c]).cast(df.schema[c])) for c in self.columns
            )
        return df.with_columns(
            pl.col(c).cast(pl.Float64).fill_null(float(fills[c])) for c in self.columns
        )


def _statistic(series: pl.Series, strategy: str) -> Any:
    """Return the mean, median or most common non-missing value of ``series``."""
    values = series.drop_nulls()
    if values.len() == 0:
        return None
    if strategy == "mean":
        return float(values.cast(pl.Float64).mean())  # type: ignore[arg-type]
    if strategy == "median":
        return float(values.cast(pl.Float64).median())  # type: ignore[arg-type]
    counts = values.value_counts(name="n").sort(["n", values.name], descending=[True, False])
    value = counts[values.name][0]
    return value.isoformat() if hasattr(value, "isoformat") else value


def _apply_knn(df: pl.DataFrame, params: Params, n_neighbors: int) -> pl.DataFrame:
    """Fill ``params['columns']`` from their nearest neighbours in the stored sample."""
    columns: list[str] = params["columns"]
    if df.height == 0:
        return df.with_columns(pl.col(columns).cast(pl.Float64))
    train = np.asarray(params["train"], dtype=np.float64).reshape(-1, len(columns))
    # Imported here: applying other recipes (a served model) needs no scikit-learn.
    from sklearn.impute import KNNImputer

    imputer = KNNImputer(n_neighbors=n_neighbors, keep_empty_features=True)
    imputer.fit(train)
    values = df.select(pl.col(columns).cast(pl.Float64)).to_numpy()
    filled = imputer.transform(values)
    return df.with_columns(
        pl.Series(c, filled[:, i], dtype=pl.Float64) for i, c in enumerate(columns)
    )
