"""Fitting a recipe on data, and the fitted recipe that replays it on new rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from narrate.core.recipes.dtypes import dtype_from_str, dtype_to_str
from narrate.core.recipes.model import Recipe
from narrate.core.recipes.steps.base import FitContext, Params, quote
from narrate.core.recipes.validate import raise_if_invalid, validate_recipe
from narrate.errors import DataProblem, InvalidInput

__all__ = ["FittedRecipe", "Progress", "check_target", "fit_recipe", "run_fit"]

Progress = Callable[[float, str], None]


class FittedRecipe(BaseModel):
    """A recipe plus what each step learned, as plain JSON.

    ``params[i]`` holds step ``i``'s learned values (``None`` for disabled steps): means,
    medians, scaler statistics, category maps, bin edges, the KNN imputer's sample,
    target-encoding maps ...
    """

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    recipe: Recipe
    params: list[Params | None]
    input_schema: dict[str, str]
    output_schema: dict[str, str]
    target: str | None = None
    seed: int = 0

    def apply(self, df: pl.DataFrame, *, for_prediction: bool = False) -> pl.DataFrame:
        """Replay the recipe on ``df`` with the stored parameters (no refitting).

        Unseen categories get a neutral value (one-hot: all zeros or ``other``; ordinal:
        -1; target: overall mean). With ``for_prediction`` the training-only steps —
        those that remove or reorder rows (filter, drop_missing on rows, deduplicate,
        sample, sort, clip_outliers with ``remove``) — are skipped so every input row gets
        exactly one output row, and the target column may be absent.

        Args:
            df: Rows with the columns the recipe was fitted on (extra columns are ignored).
            for_prediction: Skip training-only steps and tolerate a missing target.

        Returns:
            The transformed rows.

        Raises:
            InvalidInput: Columns are missing or hold values of another type.
        """
        work = self._conform(df, for_prediction=for_prediction)
        added_target = self.target is not None and self.target not in df.columns
        for index, step in enumerate(self.recipe.steps):
            params = self.params[index]
            if params is None:
                continue
            ctx = FitContext(step_index=index, seed=self.seed, target=self.target)
            if for_prediction and step.is_training_only():
                work = step.apply_for_prediction(work, params, ctx)
            else:
                work = step.apply(work, params, ctx)
        if added_target and self.target in work.columns:
            work = work.drop(self.target)
        return work

    def _conform(self, df: pl.DataFrame, *, for_prediction: bool) -> pl.DataFrame:
        """Select the fitted input columns and cast them to their training types."""
        optional = {self.target} if for_prediction and self.target else set()
        missing = [c for c in self.input_schema if c not in df.columns and c not in optional]
        if missing:
            raise InvalidInput(
                f"The data lacks column(s) {quote(missing)} that the recipe was fitted on.",
                code="missing_columns",
                details={"columns": missing},
            )
        exprs = []
        for column, name in self.input_schema.items():
            dtype = dtype_from_str(name)
            if column not in df.columns:
                exprs.append(pl.lit(None, dtype=dtype).alias(column))
            elif df.schema[column] != dtype:
                exprs.append(_cast_like_training(df, column, dtype))
            else:
                exprs.append(pl.col(column))
        return df.select(exprs)

    def to_json(self) -> str:
        """Return the fitted recipe as JSON text (see :meth:`from_json`)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> FittedRecipe:
        """Read a fitted recipe written by :meth:`to_json`.

        Raises:
            InvalidInput: The text is not a fitted recipe.
        """
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            raise InvalidInput(
                f"This is not a fitted recipe: {str(exc).splitlines()[0]}",
                code="invalid_fitted_recipe",
            ) from exc


def _cast_like_training(df: pl.DataFrame, column: str, dtype: pl.DataType) -> pl.Expr:
    source = df.schema[column]
    if isinstance(source, pl.Null):
        return pl.col(column).cast(dtype)
    if isinstance(source, pl.String) and dtype == pl.Boolean:
        # Read yes/no, true/false … the way an upload reads them.
        from narrate.core.data.parsing import cleaned, parse_boolean

        parsed = parse_boolean(cleaned(pl.col(column)))
        unread = df.filter(cleaned(pl.col(column)).is_not_null() & parsed.is_null())
        if unread.height:
            raise InvalidInput(
                f"Column '{column}' holds text such as {unread[column][0]!r} that cannot be "
                "read as true/false, the type it had when the recipe was fitted.",
                code="wrong_type",
                details={"column": column, "expected": dtype_to_str(dtype), "received": "String"},
            )
        return parsed.alias(column)
    try:
        df.select(pl.col(column).cast(dtype, strict=True))
    except pl.exceptions.PolarsError as exc:
        raise InvalidInput(
            f"Column '{column}' holds {source} values that cannot be read as {dtype}, the "
            "type it had when the recipe was fitted.",
            code="wrong_type",
            details={"column": column, "expected": dtype_to_str(dtype), "received": str(source)},
        ) from exc
    return pl.col(column).cast(dtype, strict=True)


def run_fit(
    df: pl.DataFrame,
    recipe: Recipe,
    *,
    target: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    protected: frozenset[str] = frozenset(),
) -> tuple[pl.DataFrame, FittedRecipe]:
    """Fit each enabled step in turn, without validation or the empty-result check."""
    params: list[Params | None] = []
    work = df
    enabled = [s for s in recipe.steps if s.enabled]
    done = 0
    for index, step in enumerate(recipe.steps):
        if not step.enabled:
            params.append(None)
            continue
        ctx = FitContext(step_index=index, seed=seed, target=target, protected=protected)
        work, learned = step.fit(work, ctx)
        params.append(learned)
        done += 1
        if progress is not None:
            progress(done / len(enabled), f"Step {index + 1}: {step.describe()}")
    fitted = FittedRecipe(
        recipe=recipe,
        params=params,
        input_schema={c: dtype_to_str(t) for c, t in df.schema.items() if c not in protected},
        output_schema={c: dtype_to_str(t) for c, t in work.schema.items() if c not in protected},
        target=target,
        seed=seed,
    )
    return work, fitted


def fit_recipe(
    df: pl.DataFrame,
    recipe: Recipe | dict[str, Any] | str,
    *,
    target: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, FittedRecipe]:
    """Fit a recipe on data and return the transformed data with the fitted recipe.

    Deterministic: the same frame, recipe and seed give identical output.

    Args:
        df: The training data.
        recipe: The recipe (or its dict / JSON / YAML form).
        target: The column to predict (needed by target encoding; kept for stratifying).
        seed: Seed for every random choice (sampling, folds, KNN sample).
        progress: Called with ``(fraction done, message)`` after each step.

    Returns:
        The transformed frame and the :class:`FittedRecipe`.

    Raises:
        InvalidInput: The recipe is invalid for this data (``details["issues"]``).
        DataProblem: A step cannot learn from this data, or the result has no rows
            (``code="empty_result"``).
    """
    parsed = Recipe.parse(recipe)
    check_target(df, target)
    raise_if_invalid(validate_recipe(parsed, df.schema, target=target))
    out, fitted = run_fit(df, parsed, target=target, seed=seed, progress=progress)
    if out.height == 0:
        raise DataProblem(
            f"The recipe removes all {df.height:,} rows. Loosen the filters or the "
            "missing-value and outlier steps.",
            code="empty_result",
            details={"rows_before": df.height, "rows_after": 0},
        )
    return out, fitted


def check_target(df: pl.DataFrame, target: str | None) -> None:
    """Raise when ``target`` is named but not a column of ``df``.

    Raises:
        InvalidInput: ``code="unknown_target"``.
    """
    if target is not None and target not in df.columns:
        raise InvalidInput(
            f"Target column '{target}' is not in the data. Columns: {quote(df.columns[:20])}.",
            code="unknown_target",
            details={"column": target},
        )
