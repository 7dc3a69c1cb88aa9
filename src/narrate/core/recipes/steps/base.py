"""What every recipe step shares: the model base, the fit context and schema checks.

A step is a frozen pydantic model holding its parameters. It can

* ``check`` itself against a symbolic schema (no data) and update that schema,
* ``learn`` its parameters from data as plain JSON (means, category maps ...),
* ``apply`` those parameters to any frame — training rows or new rows alike.

``fit`` is ``learn`` followed by ``apply`` unless a step needs otherwise (target
encoding is fitted out-of-fold).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from narrate.core.recipes.dtypes import kind_of
from narrate.errors import DataProblem, InvalidInput

__all__ = [
    "FitContext",
    "Params",
    "Problem",
    "SchemaState",
    "StepBase",
    "check_columns",
    "data_problem",
    "finite_or_none",
    "quote",
    "require_columns",
]

Params = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a step, found without touching data."""

    message: str
    code: str
    parameter: str | None = None
    column: str | None = None


@dataclass
class SchemaState:
    """The symbolic schema flowing through a recipe during validation.

    ``columns`` maps names to types; ``None`` means "exists, type known only from data"
    (for example one-hot columns). Names starting with a ``dynamic_prefixes`` entry are
    accepted because their existence depends on the data.
    """

    columns: dict[str, pl.DataType | None]
    target: str | None = None
    dynamic_prefixes: list[str] = field(default_factory=list)

    def has(self, column: str) -> bool:
        """Return whether ``column`` exists (or may exist) at this point."""
        return column in self.columns or any(column.startswith(p) for p in self.dynamic_prefixes)

    def dtype(self, column: str) -> pl.DataType | None:
        """Return the known type of ``column`` or ``None`` when unknown."""
        return self.columns.get(column)


@dataclass(frozen=True)
class FitContext:
    """What a step needs besides its parameters while fitting or applying."""

    step_index: int
    seed: int = 0
    target: str | None = None
    protected: frozenset[str] = frozenset()

    def data_columns(self, df: pl.DataFrame) -> list[str]:
        """Return the frame's columns without the protected bookkeeping ones."""
        return [c for c in df.columns if c not in self.protected]


class StepBase(BaseModel):
    """Base of every recipe step model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Skip this step when false.")

    title: ClassVar[str] = ""
    category: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    @classmethod
    def step_name(cls) -> str:
        """Return the ``step`` discriminator value of this step type."""
        return str(cls.model_fields["step"].default)

    def describe(self) -> str:
        """Return a plain-language sentence saying what this step does."""
        return self.summary

    def is_training_only(self) -> bool:
        """Return whether the step removes or reorders rows (skipped for prediction)."""
        return False

    def check(self, state: SchemaState) -> list[Problem]:
        """Check parameters against ``state`` and update it to the step's output schema."""
        del state
        return []

    def learn(self, df: pl.DataFrame, ctx: FitContext) -> Params:
        """Learn the step's parameters from ``df`` as plain JSON values."""
        del df, ctx
        return {}

    def apply(self, df: pl.DataFrame, params: Params, ctx: FitContext) -> pl.DataFrame:
        """Transform ``df`` with learned ``params``."""
        raise NotImplementedError

    def apply_for_prediction(
        self, df: pl.DataFrame, params: Params, ctx: FitContext
    ) -> pl.DataFrame:
        """Stand-in for a training-only step on prediction rows: keep every row.

        Steps whose training output also changes column types override this so
        prediction rows get the same schema.
        """
        del params, ctx
        return df

    def fit(self, df: pl.DataFrame, ctx: FitContext) -> tuple[pl.DataFrame, Params]:
        """Learn parameters from ``df`` and return the transformed frame with them."""
        params = self.learn(df, ctx)
        return self.apply(df, params, ctx), params


def quote(columns: Iterable[str]) -> str:
    """Return ``'a', 'b'`` for messages."""
    return ", ".join(f"'{c}'" for c in columns)


def check_columns(
    state: SchemaState,
    columns: Iterable[str],
    parameter: str,
    *,
    accepts: Callable[[pl.DataType], bool] | None = None,
    expected: str = "",
) -> list[Problem]:
    """Report columns that do not exist or have a type the step cannot use.

    Args:
        state: The schema at this step.
        columns: Columns the step reads.
        parameter: The parameter naming them (for the issue).
        accepts: Predicate on the column type; unknown types always pass.
        expected: Plain-language name of accepted types, e.g. ``"numeric"``.

    Returns:
        One problem per bad column.
    """
    problems = []
    for column in columns:
        if not state.has(column):
            problems.append(
                Problem(f"Column '{column}' does not exist.", "unknown_column", parameter, column)
            )
            continue
        dtype = state.dtype(column)
        if accepts is not None and dtype is not None and not accepts(dtype):
            message = (
                f"Column '{column}' is {kind_of(dtype)}, but this step needs {expected} "
                "columns. Cast it first or pick another column."
            )
            problems.append(Problem(message, "wrong_type", parameter, column))
    return problems


def require_columns(
    df: pl.DataFrame, columns: Iterable[str], ctx: FitContext, parameter: str
) -> None:
    """Raise when ``df`` lacks a column the step needs.

    Raises:
        InvalidInput: Naming the step index, parameter and the missing columns.
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInput(
            f"Step {ctx.step_index + 1} needs column(s) {quote(missing)}, which the data "
            "does not have.",
            code="unknown_column",
            hint="Check the column names or the earlier steps of the recipe.",
            details={"step_index": ctx.step_index, "parameter": parameter, "column": missing[0]},
        )


def data_problem(
    ctx: FitContext,
    message: str,
    *,
    code: str,
    column: str | None = None,
    parameter: str | None = None,
) -> DataProblem:
    """Build a :class:`DataProblem` naming the step, parameter and column."""
    return DataProblem(
        f"Step {ctx.step_index + 1}: {message}",
        code=code,
        details={"step_index": ctx.step_index, "parameter": parameter, "column": column},
    )


def finite_or_none(value: Any) -> float | None:
    """Return ``value`` as a finite float, or ``None`` (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
