"""A scikit-learn transformer that runs a recipe on pandas frames inside a model pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from narrate.core.recipes.fit import FittedRecipe, fit_recipe
from narrate.core.recipes.model import Recipe
from narrate.errors import InvalidInput

__all__ = ["RecipeTransformer"]


class RecipeTransformer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Apply a recipe to raw rows so a model pipeline can start from them.

    Give either an already ``fitted`` recipe (then ``fit`` only checks it) or a
    ``recipe`` to fit on the training rows in :meth:`fit`. ``transform`` skips the
    training-only steps by default (``for_prediction=True``) so every input row gets
    one output row. Input and output are pandas DataFrames; the object pickles.

    Args:
        recipe: Recipe to fit (a :class:`Recipe`, dict, or JSON/YAML text).
        fitted: A :class:`FittedRecipe` (or its JSON) to use as is.
        target: Target column name; ``y`` passed to ``fit`` is added under it.
        seed: Seed when fitting ``recipe``.
        for_prediction: Skip training-only steps in ``transform``.
    """

    def __init__(
        self,
        recipe: Recipe | dict[str, Any] | str | None = None,
        fitted: FittedRecipe | str | None = None,
        target: str | None = None,
        seed: int = 0,
        for_prediction: bool = True,
    ) -> None:
        self.recipe = recipe
        self.fitted = fitted
        self.target = target
        self.seed = seed
        self.for_prediction = for_prediction

    def fit(self, X: pd.DataFrame, y: Any = None) -> RecipeTransformer:
        """Fit the recipe on ``X`` (plus ``y`` as the target), or adopt ``fitted``.

        Args:
            X: Training rows.
            y: Optional target values, added to ``X`` as column ``target``.

        Returns:
            self

        Raises:
            InvalidInput: Neither or both of ``recipe`` and ``fitted`` given, or the
                recipe is invalid for ``X``.
        """
        if (self.recipe is None) == (self.fitted is None):
            raise InvalidInput(
                "Give RecipeTransformer exactly one of 'recipe' or 'fitted'.",
                code="invalid_parameter",
            )
        if isinstance(self.fitted, FittedRecipe):
            self.fitted_ = self.fitted
        elif isinstance(self.fitted, str):
            self.fitted_ = FittedRecipe.from_json(self.fitted)
        elif self.recipe is not None:
            frame = _to_polars(X)
            if y is not None and self.target is not None:
                frame = frame.with_columns(pl.Series(self.target, np.asarray(y)))
            _, self.fitted_ = fit_recipe(frame, self.recipe, target=self.target, seed=self.seed)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Apply the fitted recipe to ``X``.

        Args:
            X: Rows with the columns the recipe was fitted on.

        Returns:
            The transformed rows, index preserved when no row was removed.

        Raises:
            InvalidInput: Missing columns or values of the wrong type.
        """
        check_is_fitted(self, "fitted_")
        out = self.fitted_.apply(_to_polars(X), for_prediction=self.for_prediction)
        result = out.to_pandas()
        if len(result) == len(X):
            result.index = X.index
        return result

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return the output column names.

        Args:
            input_features: Ignored (accepted for scikit-learn compatibility).

        Returns:
            The names of the columns ``transform`` returns.
        """
        del input_features
        check_is_fitted(self, "fitted_")
        names = [c for c in self.fitted_.output_schema if c != self.fitted_.target]
        if not self.for_prediction:
            names = list(self.fitted_.output_schema)
        return np.asarray(names, dtype=object)


def _to_polars(X: Any) -> pl.DataFrame:
    if isinstance(X, pl.DataFrame):
        return X
    if not isinstance(X, pd.DataFrame):
        raise InvalidInput(
            f"RecipeTransformer needs a pandas DataFrame, got {type(X).__name__}.",
            code="invalid_input",
        )
    return pl.from_pandas(X.reset_index(drop=True))
