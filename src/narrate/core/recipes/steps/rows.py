"""Steps driven by SQL expressions or acting on whole rows: filter, derive, dedupe, sample.

Expressions are parsed into a syntax tree, allow-listed node by node and rendered for Polars
SQL (``narrate.core.data.expressions``) — never evaluated as Python — and test-compiled
against an empty frame during validation.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, model_validator
from typing_extensions import override

from narrate.core.data.expressions import POLARS_ERRORS, compile_expression
from narrate.core.recipes.sampling import sample_rows
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
from narrate.errors import InvalidInput

__all__ = ["DeduplicateStep", "DeriveStep", "FilterStep", "SampleStep", "compile_sql"]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def compile_sql(expression: str) -> pl.Expr:
    """Parse a user's SQL expression into a Polars expression, safely.

    Args:
        expression: e.g. ``"age >= 18 AND city = 'Paris'"``.

    Returns:
        The expression.

    Raises:
        BadRequest: The expression holds a sub-query, a table or a function outside the
            allowed set (see ``narrate.core.data.expressions``).
        InvalidInput: It is not a SQL expression Polars understands, or is too long or
            too deeply nested.
    """
    return compile_expression(expression, parameter="expression")


def _check_sql(state: SchemaState, expression: str) -> tuple[list[Problem], pl.DataType | None]:
    """Compile ``expression`` against an empty frame of ``state`` and return its type."""
    try:
        expr = compile_sql(expression)
    except InvalidInput as exc:
        return [Problem(exc.message, exc.code, "expression")], None
    roots = expr.meta.root_names()
    problems = check_columns(state, roots, "expression")
    if problems or any(state.dtype(c) is None for c in roots):
        return problems, None
    schema = {c: t for c, t in state.columns.items() if t is not None}
    try:
        out = pl.LazyFrame(schema=schema).select(expr.alias("result")).collect_schema()
    except POLARS_ERRORS as exc:
        message = f"The expression '{expression}' cannot run on this data: {_first_line(exc)}"
        return [Problem(message, "invalid_expression", "expression")], None
    return [], out["result"]


def _evaluate(df: pl.DataFrame, expression: str, ctx: FitContext) -> pl.Expr:
    expr = compile_sql(expression)
    require_columns(df, expr.meta.root_names(), ctx, "expression")
    return expr


class FilterStep(StepBase):
    """Keep rows matching a SQL condition."""

    step: Literal["filter"] = "filter"
    expression: str = Field(min_length=1, description="SQL condition, e.g. age >= 18.")

    title = "Filter rows"
    category = "rows"
    summary = "Keep only rows matching a condition (training data only)."

    @override
    def describe(self) -> str:
        return f"Keep only rows where {self.expression} (training data only)."

    @override
    def is_training_only(self) -> bool:
        return True

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems, dtype = _check_sql(state, self.expression)
        if dtype is not None and not isinstance(dtype, pl.Boolean | pl.Null):
            message = (
                f"The condition '{self.expression}' gives {dtype} values, not true/false. "
                "Compare a column with a value, e.g. age >= 18."
            )
            problems.append(Problem(message, "not_a_condition", "expression"))
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        expr = _evaluate(df, self.expression, ctx)
        try:
            return df.filter(expr)
        except POLARS_ERRORS as exc:
            raise data_problem(
                ctx, _first_line(exc), code="invalid_expression", parameter="expression"
            ) from exc


class DeriveStep(StepBase):
    """Add a column computed with a SQL expression."""

    step: Literal["derive"] = "derive"
    name: str = Field(min_length=1, description="Name of the new column.")
    expression: str = Field(min_length=1, description="SQL expression, e.g. income / (age + 1).")

    title = "New column from a formula"
    category = "features"
    summary = "Add a column computed from others with a SQL formula."

    @override
    def describe(self) -> str:
        return f"Add column '{self.name}' = {self.expression}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems, dtype = _check_sql(state, self.expression)
        state.columns[self.name] = dtype
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        expr = _evaluate(df, self.expression, ctx)
        try:
            return df.with_columns(expr.alias(self.name))
        except POLARS_ERRORS as exc:
            raise data_problem(
                ctx, _first_line(exc), code="invalid_expression", parameter="expression"
            ) from exc


class DeduplicateStep(StepBase):
    """Remove repeated rows."""

    step: Literal["deduplicate"] = "deduplicate"
    subset: list[str] | None = Field(
        default=None, description="Columns that define a duplicate; all when empty."
    )
    keep: Literal["first", "last"] = Field(default="first", description="Which copy to keep.")

    title = "Remove duplicates"
    category = "rows"
    summary = "Remove repeated rows (training data only)."

    @override
    def describe(self) -> str:
        what = f"the same {quote(self.subset)}" if self.subset else "identical values"
        return f"Remove rows with {what}, keeping the {self.keep} (training data only)."

    @override
    def is_training_only(self) -> bool:
        return True

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        return check_columns(state, self.subset or [], "subset")

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        subset = self.subset or ctx.data_columns(df)
        require_columns(df, subset, ctx, "subset")
        return df.unique(subset=subset, keep=self.keep, maintain_order=True)


class SampleStep(StepBase):
    """Keep a random subset of rows."""

    step: Literal["sample"] = "sample"
    n: int | None = Field(default=None, ge=1, description="Number of rows to keep.")
    fraction: float | None = Field(default=None, gt=0, le=1, description="Share of rows.")
    stratify: str | None = Field(default=None, description="Keep this column's group shares.")
    seed: int | None = Field(default=None, description="Random seed; the recipe's when empty.")

    title = "Sample rows"
    category = "rows"
    summary = "Keep a random subset of rows (training data only)."

    @model_validator(mode="after")
    def _one_size(self) -> SampleStep:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of 'n' or 'fraction'")
        return self

    @override
    def describe(self) -> str:
        size = f"{self.n:,} rows" if self.n is not None else f"{self.fraction:.0%} of rows"
        strat = f", keeping the shares of '{self.stratify}'" if self.stratify else ""
        return f"Keep a random {size}{strat} (training data only)."

    @override
    def is_training_only(self) -> bool:
        return True

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        return check_columns(state, [self.stratify] if self.stratify else [], "stratify")

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        if self.stratify:
            require_columns(df, [self.stratify], ctx, "stratify")
        seed = ctx.seed if self.seed is None else self.seed
        return sample_rows(df, n=self.n, fraction=self.fraction, stratify=self.stratify, seed=seed)
