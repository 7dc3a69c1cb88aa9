"""Steps for categories: encoding them as numbers and grouping rare ones."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, model_validator
from typing_extensions import override

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
from narrate.core.recipes.steps.target_encoding import (
    apply_target_maps,
    fit_target_encoding,
    target_problems,
)

__all__ = ["EncodeStep", "RareCategoriesStep", "category_counts"]


def category_counts(series: pl.Series) -> list[tuple[str, int]]:
    """Return ``(category, rows)`` pairs, most common first, ties by name; no missing."""
    values = series.cast(pl.String).drop_nulls()
    counts = values.value_counts(name="n").sort(["n", values.name], descending=[True, False])
    return list(zip(counts[values.name].to_list(), counts["n"].to_list(), strict=True))


def _as_text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String)


class EncodeStep(StepBase):
    """Turn categories into numbers."""

    step: Literal["encode"] = "encode"
    columns: list[str] = Field(min_length=1, description="Category columns to encode.")
    method: Literal["one_hot", "ordinal", "frequency", "target"] = Field(
        default="one_hot", description="How to turn categories into numbers."
    )
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="one_hot: keep the k most common, rest 'other'."
    )
    target: str | None = Field(
        default=None, description="target: the column to predict (defaults to the recipe's)."
    )
    n_folds: int = Field(default=5, ge=2, le=20, description="target: folds for out-of-fold fit.")
    smoothing: float = Field(
        default=10.0, ge=0, description="target: pull rare categories toward the overall mean."
    )

    title = "Encode categories"
    category = "categorical"
    summary = "Turn category columns into numbers a model can use."

    @override
    def describe(self) -> str:
        cols = quote(self.columns)
        if self.method == "one_hot":
            top = f" for the {self.top_k} most common values plus 'other'" if self.top_k else ""
            return f"Make one 0/1 column per value of {cols}{top}."
        return {
            "ordinal": f"Number the values of {cols} in sorted order (unseen → -1).",
            "frequency": f"Use how often each value of {cols} occurs, instead of the value.",
            "target": f"Use the average target of each value of {cols}, "
            "fitted out-of-fold (unseen → overall average).",
        }[self.method]

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        if self.method == "target":
            problems += target_problems(state, self.target or state.target, self.columns)
        for column in self.columns:
            if self.method == "one_hot":
                state.columns.pop(column, None)
                state.dynamic_prefixes.append(f"{column}_")
            elif column in state.columns:
                state.columns[column] = pl.Int32() if self.method == "ordinal" else pl.Float64()
        return problems

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        if self.method == "one_hot":
            return {"categories": {c: self._one_hot_categories(df[c]) for c in self.columns}}
        if self.method == "ordinal":
            maps = {}
            for column in self.columns:
                names = sorted(name for name, _ in category_counts(df[column]))
                maps[column] = {name: i for i, name in enumerate(names)}
            return {"maps": maps}
        if self.method == "frequency":
            total = max(df.height, 1)
            return {
                "maps": {
                    c: {name: n / total for name, n in category_counts(df[c])} for c in self.columns
                }
            }
        raise AssertionError("target encoding is fitted by fit()")  # pragma: no cover

    def _one_hot_categories(self, series: pl.Series) -> dict[str, object]:
        names = [name for name, _ in category_counts(series)]
        kept = names[: self.top_k] if self.top_k else names
        return {"values": kept, "other": len(kept) < len(names)}

    @override
    def fit(self, df: pl.DataFrame, ctx: FitContext) -> tuple[pl.DataFrame, Params]:
        if self.method != "target":
            return super().fit(df, ctx)
        require_columns(df, self.columns, ctx, "columns")
        target = self.target or ctx.target
        return fit_target_encoding(
            df, self.columns, target, ctx, n_folds=self.n_folds, smoothing=self.smoothing
        )

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        if self.method == "one_hot":
            return _apply_one_hot(df, params["categories"], ctx)
        if self.method == "target":
            return apply_target_maps(df, params)
        maps: dict[str, dict[str, float]] = params["maps"]
        if self.method == "ordinal":
            return df.with_columns(
                _as_text(c).replace_strict(m, default=-1, return_dtype=pl.Int32).alias(c)
                for c, m in maps.items()
            )
        return df.with_columns(
            _as_text(c).replace_strict(m, default=0.0, return_dtype=pl.Float64).alias(c)
            for c, m in maps.items()
        )


def _apply_one_hot(
    df: pl.DataFrame, categories: dict[str, dict[str, object]], ctx: FitContext
) -> pl.DataFrame:
    """Replace each column by 0/1 columns named ``{column}_{value}`` (+ ``_other``).

    Raises:
        DataProblem: A new column name is already taken (by another column, or by a
            value called ``other`` next to the ``other`` bucket).
    """
    out = df
    for column, spec in categories.items():
        values = [str(v) for v in spec["values"]]  # type: ignore[attr-defined]
        text = _as_text(column)
        exprs = [(text == v).fill_null(False).cast(pl.UInt8).alias(f"{column}_{v}") for v in values]
        if spec["other"]:
            other = text.is_not_null() & ~text.is_in(values)
            exprs.append(other.cast(pl.UInt8).alias(f"{column}_other"))
        _check_new_names(out, column, [e.meta.output_name() for e in exprs], ctx)
        position = out.columns.index(column)
        encoded = out.select(exprs)
        out = pl.concat(
            [out.select(out.columns[:position]), encoded, out.select(out.columns[position + 1 :])],
            how="horizontal",
        )
    return out


def _check_new_names(df: pl.DataFrame, column: str, names: list[str], ctx: FitContext) -> None:
    taken = set(df.columns) - {column}
    clashes = sorted({n for n in names if n in taken or names.count(n) > 1})
    if clashes:
        raise data_problem(
            ctx,
            f"one-hot encoding '{column}' would create column(s) {quote(clashes)} twice (a "
            "column of that name exists, or a value is called 'other'). Rename the "
            "column, or group the values first.",
            code="duplicate_column",
            column=column,
            parameter="columns",
        )


class RareCategoriesStep(StepBase):
    """Group rare categories into one."""

    step: Literal["rare_categories"] = "rare_categories"
    columns: list[str] = Field(min_length=1, description="Category columns.")
    min_share: float = Field(
        default=0.01, gt=0, lt=1, description="Values rarer than this share become the label."
    )
    label: str = Field(default="Other", min_length=1, description="Name of the grouped value.")

    title = "Group rare categories"
    category = "categorical"
    summary = "Group values that occur rarely into a single 'Other' value."

    @model_validator(mode="after")
    def _label_is_text(self) -> RareCategoriesStep:
        if not self.label.strip():
            raise ValueError("label cannot be blank")
        return self

    @override
    def describe(self) -> str:
        return (
            f"In {quote(self.columns)}, replace values found in less than "
            f"{self.min_share:.1%} of rows with '{self.label}'."
        )

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        for column in self.columns:
            if column in state.columns:
                state.columns[column] = pl.String()
        return problems

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        total = max(df.height, 1)
        kept = {
            c: [name for name, n in category_counts(df[c]) if n / total >= self.min_share]
            for c in self.columns
        }
        return {"kept": kept}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        return df.with_columns(
            pl.when(_as_text(c).is_in(kept) | pl.col(c).is_null())
            .then(_as_text(c))
            .otherwise(pl.lit(self.label))
            .alias(c)
            for c, kept in params["kept"].items()
        )
