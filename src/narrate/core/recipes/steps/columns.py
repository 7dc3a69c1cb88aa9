"""Steps that select, rename, reorder, cast or sort columns."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, field_validator
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

__all__ = [
    "CastStep",
    "DropColumnsStep",
    "KeepColumnsStep",
    "RenameStep",
    "ReorderStep",
    "SortStep",
]

ColumnList = list[str]
CastTarget = Literal["integer", "float", "boolean", "string", "date", "datetime", "categorical"]

_CAST_TYPES: dict[str, pl.DataType] = {
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "boolean": pl.Boolean(),
    "string": pl.String(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
    "categorical": pl.Categorical(),
}
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def _non_empty(columns: list[str]) -> list[str]:
    if not columns:
        raise ValueError("name at least one column")
    if len(set(columns)) != len(columns):
        raise ValueError("columns are listed more than once")
    return columns


class DropColumnsStep(StepBase):
    """Remove columns."""

    step: Literal["drop_columns"] = "drop_columns"
    columns: ColumnList = Field(description="Columns to remove.")

    title = "Drop columns"
    category = "columns"
    summary = "Remove columns you do not need."

    _validate_columns = field_validator("columns")(_non_empty)

    @override
    def describe(self) -> str:
        return f"Remove column(s) {quote(self.columns)}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        for column in self.columns:
            state.columns.pop(column, None)
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        return df.drop(self.columns)


class KeepColumnsStep(StepBase):
    """Keep only the named columns."""

    step: Literal["keep_columns"] = "keep_columns"
    columns: ColumnList = Field(description="Columns to keep, in this order.")

    title = "Keep columns"
    category = "columns"
    summary = "Keep only the columns you name."

    _validate_columns = field_validator("columns")(_non_empty)

    @override
    def describe(self) -> str:
        return f"Keep only column(s) {quote(self.columns)}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        state.columns = {c: state.columns.get(c) for c in self.columns}
        state.dynamic_prefixes = []
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        extra = [c for c in df.columns if c in ctx.protected and c not in self.columns]
        return df.select([*self.columns, *extra])


class RenameStep(StepBase):
    """Rename columns."""

    step: Literal["rename"] = "rename"
    mapping: dict[str, str] = Field(description="Old name → new name.")

    title = "Rename columns"
    category = "columns"
    summary = "Give columns new names."

    @field_validator("mapping")
    @classmethod
    def _check_mapping(cls, mapping: dict[str, str]) -> dict[str, str]:
        if not mapping:
            raise ValueError("name at least one column to rename")
        if any(not new.strip() for new in mapping.values()):
            raise ValueError("new names cannot be empty")
        if len(set(mapping.values())) != len(mapping):
            raise ValueError("two columns would get the same new name")
        return mapping

    @override
    def describe(self) -> str:
        pairs = ", ".join(f"'{old}' → '{new}'" for old, new in self.mapping.items())
        return f"Rename {pairs}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.mapping, "mapping")
        kept = set(state.columns) - set(self.mapping)
        for new in self.mapping.values():
            if new in kept:
                message = f"New name '{new}' is already used by another column."
                problems.append(Problem(message, "duplicate_column", "mapping", new))
        state.columns = {self.mapping.get(c, c): t for c, t in state.columns.items()}
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.mapping, ctx, "mapping")
        return df.rename(self.mapping)


class ReorderStep(StepBase):
    """Move the named columns to the front."""

    step: Literal["reorder"] = "reorder"
    columns: ColumnList = Field(description="Columns to put first; the rest follow.")

    title = "Reorder columns"
    category = "columns"
    summary = "Put the named columns first; the others keep their order."

    _validate_columns = field_validator("columns")(_non_empty)

    @override
    def describe(self) -> str:
        return f"Put column(s) {quote(self.columns)} first."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        order = [*self.columns, *(c for c in state.columns if c not in self.columns)]
        state.columns = {c: state.columns.get(c) for c in order}
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        return df.select([*self.columns, *(c for c in df.columns if c not in self.columns)])


class CastStep(StepBase):
    """Change the type of columns."""

    step: Literal["cast"] = "cast"
    columns: ColumnList = Field(description="Columns to convert.")
    to: CastTarget = Field(description="The new type.")

    title = "Change type"
    category = "columns"
    summary = "Convert columns to another type (number, text, date ...)."

    _validate_columns = field_validator("columns")(_non_empty)

    @override
    def describe(self) -> str:
        return f"Convert {quote(self.columns)} to {self.to}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        for column in self.columns:
            state.columns[column] = _CAST_TYPES[self.to]
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        out = df
        for column in self.columns:
            try:
                out = out.with_columns(_cast(out[column], self.to))
            except pl.exceptions.PolarsError as exc:
                message = (
                    f"Some values of '{column}' cannot be read as {self.to}: "
                    f"{str(exc).splitlines()[0]}"
                )
                raise data_problem(
                    ctx, message, code="cast_failed", column=column, parameter="to"
                ) from exc
        return out


def _cast(series: pl.Series, to: str) -> pl.Series:
    """Convert ``series`` strictly; text dates and booleans are parsed."""
    dtype = series.dtype
    if to == "boolean" and isinstance(dtype, pl.String | pl.Categorical):
        text = series.cast(pl.String).str.strip_chars().str.to_lowercase()
        mapping = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
        return text.replace_strict(mapping, return_dtype=pl.Boolean)
    if to == "boolean" and dtype.is_numeric():
        return (series != 0).alias(series.name)
    if to in ("date", "datetime") and isinstance(dtype, pl.String | pl.Categorical):
        text = series.cast(pl.String).str.strip_chars()
        return text.str.to_date() if to == "date" else text.str.to_datetime(time_unit="us")
    if to == "float" and isinstance(dtype, pl.String):
        return series.str.strip_chars().cast(pl.Float64)
    if to == "integer" and isinstance(dtype, pl.String):
        return series.str.strip_chars().cast(pl.Int64)
    if to == "categorical" and not isinstance(dtype, pl.String):
        return series.cast(pl.String).cast(pl.Categorical())
    return series.cast(_CAST_TYPES[to])


class SortStep(StepBase):
    """Sort rows."""

    step: Literal["sort"] = "sort"
    columns: ColumnList = Field(description="Columns to sort by, most important first.")
    descending: bool = Field(default=False, description="Largest first.")

    title = "Sort rows"
    category = "rows"
    summary = "Sort rows by columns (training data only)."

    _validate_columns = field_validator("columns")(_non_empty)

    @override
    def describe(self) -> str:
        order = "largest" if self.descending else "smallest"
        return f"Sort rows by {quote(self.columns)}, {order} first (training data only)."

    @override
    def is_training_only(self) -> bool:
        return True

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        return check_columns(state, self.columns, "columns")

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        return df.sort(
            self.columns, descending=self.descending, nulls_last=True, maintain_order=True
        )
