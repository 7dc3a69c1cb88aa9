"""Steps for dates, text and personal data."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

import polars as pl
from pydantic import Field, model_validator
from typing_extensions import override

from narrate.core.recipes.dtypes import is_stringlike, is_temporal
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

__all__ = ["DatetimePartsStep", "PiiStep", "TextStep"]

DatePart = Literal["year", "month", "day", "weekday", "hour", "elapsed_days"]
_PART_TYPES: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "month": pl.Int8(),
    "day": pl.Int8(),
    "weekday": pl.Int8(),
    "hour": pl.Int8(),
    "elapsed_days": pl.Float64(),
}


def _default_parts() -> list[DatePart]:
    return ["year", "month", "day", "weekday"]


class DatetimePartsStep(StepBase):
    """Split dates into parts a model can use."""

    step: Literal["datetime_parts"] = "datetime_parts"
    columns: list[str] = Field(min_length=1, description="Date or datetime columns.")
    parts: list[DatePart] = Field(
        default_factory=_default_parts,
        min_length=1,
        description="Parts to extract; weekday is 1 (Monday) to 7.",
    )
    reference: dt.datetime | None = Field(
        default=None, description="elapsed_days counts from here; the earliest value when empty."
    )
    drop_original: bool = Field(default=True, description="Remove the date column afterwards.")

    title = "Date parts"
    category = "features"
    summary = "Split dates into year, month, day, weekday, hour and days elapsed."

    @override
    def describe(self) -> str:
        keep = "" if self.drop_original else ", keeping the original"
        return f"Extract {', '.join(self.parts)} from {quote(self.columns)}{keep}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(
            state, self.columns, "columns", accepts=is_temporal, expected="date or datetime"
        )
        for column in self.columns:
            for part in self.parts:
                state.columns[f"{column}_{part}"] = _PART_TYPES[part]
            if self.drop_original:
                state.columns.pop(column, None)
        return problems

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        require_columns(df, self.columns, ctx, "columns")
        if "elapsed_days" not in self.parts:
            return {}
        references = {}
        for column in self.columns:
            if self.reference is not None:
                references[column] = self.reference.isoformat()
                continue
            earliest = df.select(_instant(pl.col(column), df.schema[column])).to_series().min()
            if earliest is None:
                raise data_problem(
                    ctx,
                    f"column '{column}' has no dates to count from.",
                    code="all_missing",
                    column=column,
                    parameter="reference",
                )
            references[column] = earliest.isoformat()  # type: ignore[union-attr]
        return {"reference": references}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        exprs = []
        for column in self.columns:
            dtype = df.schema[column]
            local = _wall_clock(pl.col(column), dtype)
            for part in self.parts:
                if part == "elapsed_days":
                    ref = _naive_utc(dt.datetime.fromisoformat(params["reference"][column]))
                    since = _instant(pl.col(column), dtype) - pl.lit(ref)
                    value = since.dt.total_seconds() / 86400.0
                else:
                    value = getattr(local.dt, part)()
                exprs.append(value.cast(_PART_TYPES[part]).alias(f"{column}_{part}"))
        out = df.with_columns(exprs)
        return out.drop(self.columns) if self.drop_original else out


def _wall_clock(x: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Dates and times as read on the column's own clock (its time zone, if any)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        x = x.dt.replace_time_zone(None)
    return x.cast(pl.Datetime("us"))


def _instant(x: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The moment in naive UTC, so elapsed days are not shifted by time zones."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        x = x.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return x.cast(pl.Datetime("us"))


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


class TextStep(StepBase):
    """Clean text or derive simple text features."""

    step: Literal["text"] = "text"
    columns: list[str] = Field(min_length=1, description="Text columns.")
    operation: Literal["lowercase", "strip", "length", "contains"] = Field(
        description="lowercase/strip change the column; length/contains add a column."
    )
    pattern: str | None = Field(default=None, description="For 'contains': the text to find.")
    regex: bool = Field(default=False, description="For 'contains': pattern is a regex.")

    title = "Text"
    category = "text"
    summary = "Lowercase or trim text, or add its length or whether it contains a pattern."

    @model_validator(mode="after")
    def _contains_needs_pattern(self) -> TextStep:
        if self.operation == "contains" and not self.pattern:
            raise ValueError("the 'contains' operation needs a 'pattern'")
        return self

    def _new_name(self, column: str) -> str:
        return f"{column}_{self.operation}"

    @override
    def describe(self) -> str:
        cols = quote(self.columns)
        return {
            "lowercase": f"Lowercase the text in {cols}.",
            "strip": f"Trim spaces around the text in {cols}.",
            "length": f"Add the number of characters of {cols}.",
            "contains": f"Add whether {cols} contain '{self.pattern}'.",
        }[self.operation]

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(
            state, self.columns, "columns", accepts=is_stringlike, expected="text"
        )
        for column in self.columns:
            if self.operation == "length":
                state.columns[self._new_name(column)] = pl.UInt32()
            elif self.operation == "contains":
                state.columns[self._new_name(column)] = pl.Boolean()
            elif column in state.columns:
                state.columns[column] = pl.String()
        return problems

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        exprs = []
        for column in self.columns:
            text = pl.col(column).cast(pl.String)
            if self.operation == "lowercase":
                exprs.append(text.str.to_lowercase().alias(column))
            elif self.operation == "strip":
                exprs.append(text.str.strip_chars().alias(column))
            elif self.operation == "length":
                exprs.append(text.str.len_chars().alias(self._new_name(column)))
            else:
                found = text.str.contains(self.pattern or "", literal=not self.regex)
                exprs.append(found.alias(self._new_name(column)))
        try:
            return df.with_columns(exprs)
        except pl.exceptions.PolarsError as exc:
            raise data_problem(
                ctx,
                f"the pattern '{self.pattern}' is not a valid regex.",
                code="invalid_pattern",
                parameter="pattern",
            ) from exc


class PiiStep(StepBase):
    """Mask or hash personal data."""

    step: Literal["pii"] = "pii"
    columns: list[str] = Field(min_length=1, description="Columns holding personal data.")
    method: Literal["mask", "hash"] = Field(
        default="hash", description="mask: hide characters; hash: salted SHA-256."
    )
    salt: str | None = Field(
        default=None,
        description="Secret salt for hashing. Without one a salt is derived from the seed, "
        "which keeps output reproducible but is not secret.",
    )
    keep_last: int = Field(default=0, ge=0, le=8, description="mask: characters left visible.")

    title = "Protect personal data"
    category = "text"
    summary = "Mask personal data or replace it with a salted SHA-256 hash."

    @override
    def describe(self) -> str:
        if self.method == "hash":
            return f"Replace {quote(self.columns)} with a salted SHA-256 hash."
        visible = f", leaving the last {self.keep_last} characters" if self.keep_last else ""
        return f"Mask the characters of {quote(self.columns)}{visible}."

    @override
    def check(self, state: SchemaState) -> list[Problem]:
        problems = check_columns(state, self.columns, "columns")
        for column in self.columns:
            if column in state.columns:
                state.columns[column] = pl.String()
        return problems

    @override
    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        if self.method == "mask":
            return {}
        if self.salt is not None:
            return {"salt": self.salt}
        return {"salt": hashlib.sha256(f"narrate-pii-{ctx.seed}".encode()).hexdigest()[:32]}

    @override
    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        require_columns(df, self.columns, ctx, "columns")
        if self.method == "mask":
            return df.with_columns(
                _mask(pl.col(c).cast(pl.String), self.keep_last).alias(c) for c in self.columns
            )
        salt = str(params["salt"])
        return df.with_columns(_hash(df[c], salt) for c in self.columns)


def _mask(text: pl.Expr, keep_last: int) -> pl.Expr:
    length = text.str.len_chars()
    hidden = (length - keep_last).clip(lower_bound=0)
    return pl.lit("*").repeat_by(hidden).list.join("") + text.str.tail(keep_last)


def _hash(series: pl.Series, salt: str) -> pl.Series:
    """SHA-256 of salt + value, computed once per distinct value."""
    text = series.cast(pl.String)
    distinct = text.drop_nulls().unique().to_list()
    digests = {v: hashlib.sha256((salt + v).encode()).hexdigest() for v in distinct}
    return text.replace_strict(digests, default=None, return_dtype=pl.String).alias(series.name)
