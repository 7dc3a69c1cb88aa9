"""Candidate pipelines: one per model family, from raw columns to predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline, make_union
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from narrate.core.automl.boosting import BoostedClassifier, BoostedRegressor
from narrate.core.automl.imbalance import RESAMPLERS, make_resampler
from narrate.core.automl.selection import FeatureSelector
from narrate.core.automl.transformers import (
    CategoryCodes,
    DatetimeParts,
    DropColumns,
    as_text,
    categorical_columns,
    datetime_columns,
    expm1_capped,
    numeric_columns,
)

__all__ = ["CandidateSpec", "as_text", "build_pipeline", "make_estimator", "output_name"]

_GBDT = ("hist_gradient_boosting", "lightgbm", "xgboost")


@dataclass(frozen=True)
class CandidateSpec:
    """Everything needed to rebuild one candidate pipeline without a search.

    Attributes:
        family: Model family (see :data:`narrate.core.automl.config.FAMILIES`).
        params: Estimator hyper-parameters (JSON-serialisable).
        imbalance: ``none``, ``class_weight`` or a resampler name.
        selection: Feature selection method (``none``, ``correlation``, ...).
        selection_k: Columns to keep for top-k methods.
        drop_columns: Raw columns left out (ID-like, group, ...).
    """

    family: str
    params: dict[str, Any] = field(default_factory=dict)
    imbalance: str = "none"
    selection: str = "none"
    selection_k: int | None = None
    drop_columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-serialisable dict."""
        data = asdict(self)
        data["drop_columns"] = list(self.drop_columns)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateSpec:
        """Rebuild a spec from :meth:`to_dict` output (e.g. a leaderboard entry)."""
        return cls(
            family=str(data["family"]),
            params=dict(data.get("params") or {}),
            imbalance=str(data.get("imbalance", "none")),
            selection=str(data.get("selection", "none")),
            selection_k=data.get("selection_k"),
            drop_columns=tuple(data.get("drop_columns") or ()),
        )


def _text() -> FunctionTransformer:
    return FunctionTransformer(as_text, feature_names_out="one-to-one")


#: Categories kept per column for native categorical splits (the rest are grouped as
#: infrequent); HistGradientBoosting allows at most 255 bins.
_MAX_NATIVE_CATEGORIES = 250


def output_name(transformer: str, feature: str) -> str:
    """Name a prepared column: raw columns keep the user's name, date parts get a prefix.

    A date column ``when`` becomes ``when_year`` ..., which a raw column may already be
    called; the ``datetime__`` prefix keeps the two apart (pandas output refuses duplicate
    names). Pickled models refer to this function by name.

    Args:
        transformer: The column block's name.
        feature: The block's output name.

    Returns:
        The prepared column's name.
    """
    return f"datetime__{feature}" if transformer == "datetime" else feature


def _columns_for(
    family: str, *, native_categories: bool = False, resampled: bool = False
) -> ColumnTransformer:
    dates = make_pipeline(
        DatetimeParts(), SimpleImputer(strategy="median", keep_empty_features=True)
    )
    if family == "linear":
        # Missing-value indicators stay 0/1: standardising a rarely-missing column's
        # indicator turns it into a huge value that a linear model over-trusts.
        numeric: Any = make_union(
            make_pipeline(
                SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
            ),
            MissingIndicator(features="missing-only", error_on_new=False),
        )
        categorical: Any = make_pipeline(
            _text(),
            OneHotEncoder(
                handle_unknown="infrequent_if_exist", max_categories=20, sparse_output=False
            ),
        )
        dates = make_pipeline(dates, StandardScaler())
    elif native_categories:
        numeric = "passthrough"
        categorical = make_pipeline(
            _text(),
            OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                max_categories=_MAX_NATIVE_CATEGORIES,
            ),
            CategoryCodes(),
        )
    else:
        # Boosted trees handle missing numbers themselves, but a resampler sees them first
        # and SMOTE's neighbours can't be found through a missing value.
        numeric = (
            "passthrough"
            if family in _GBDT and not resampled
            else SimpleImputer(strategy="median", keep_empty_features=True)
        )
        categorical = make_pipeline(
            _text(), OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        )
    columns = ColumnTransformer(
        [
            ("numeric", numeric, numeric_columns),
            ("categorical", categorical, categorical_columns),
            ("datetime", dates, datetime_columns),
        ],
        sparse_threshold=0.0,
        verbose_feature_names_out=output_name,
    )
    # Native categorical splits need the categorical dtype, which only a DataFrame carries.
    return columns.set_output(transform="pandas") if native_categories else columns


def make_estimator(
    family: str,
    task: str,
    params: dict[str, Any],
    *,
    class_weight: str | None,
    seed: int,
    n_jobs: int,
    native_categories: bool = False,
) -> BaseEstimator:
    """Create the unfitted estimator of a family.

    Args:
        family: Model family name.
        task: ``binary``, ``multiclass`` or ``regression``.
        params: Hyper-parameters for the underlying estimator.
        class_weight: ``"balanced"`` or None (ignored for regression).
        seed: Random state.
        n_jobs: Threads the estimator may use.
        native_categories: Boosted trees get pandas categorical columns and split on
            them natively.

    Returns:
        The estimator.

    Raises:
        ValueError: Unknown family.
    """
    classify = task != "regression"
    weight = class_weight if classify else None
    params = dict(params)
    log_target = params.pop("target_transform", "none") == "log" and not classify
    if family == "baseline":
        return DummyClassifier(strategy="prior") if classify else DummyRegressor()
    if family == "linear":
        if classify:
            return LogisticRegression(max_iter=3000, class_weight=weight, **params)
        if log_target:
            return TransformedTargetRegressor(
                Ridge(**params), func=np.log1p, inverse_func=expm1_capped, check_inverse=False
            )
        return Ridge(**params)
    if family in ("random_forest", "extra_trees"):
        forest: dict[tuple[str, bool], Any] = {
            ("random_forest", True): RandomForestClassifier,
            ("random_forest", False): RandomForestRegressor,
            ("extra_trees", True): ExtraTreesClassifier,
            ("extra_trees", False): ExtraTreesRegressor,
        }
        extra = {"class_weight": weight} if classify else {}
        return forest[family, classify](random_state=seed, n_jobs=n_jobs, **extra, **params)  # type: ignore[no-any-return]
    if family == "hist_gradient_boosting":
        categorical = "from_dtype" if native_categories else None
        settings = {"early_stopping": True, **params}
        if classify:
            return HistGradientBoostingClassifier(
                random_state=seed,
                class_weight=weight,
                categorical_features=categorical,
                **settings,
            )
        return HistGradientBoostingRegressor(
            random_state=seed, categorical_features=categorical, **settings
        )
    if family in ("lightgbm", "xgboost"):
        return _make_booster(
            family,
            classify,
            params,
            weight=weight,
            seed=seed,
            n_jobs=n_jobs,
            native_categories=native_categories,
            log_target=log_target,
        )
    raise ValueError(f"unknown model family {family!r}")


def _make_booster(
    family: str,
    classify: bool,
    params: dict[str, Any],
    *,
    weight: str | None,
    seed: int,
    n_jobs: int,
    native_categories: bool,
    log_target: bool = False,
) -> BaseEstimator:
    # ``early_stopping: False`` (set once the search fixed the tree count) is the wrapper's.
    params = dict(params)
    rounds = {} if params.pop("early_stopping", True) else {"early_stopping_rounds": 0}
    if family == "lightgbm":
        import lightgbm as lgb

        cls: Any = lgb.LGBMClassifier if classify else lgb.LGBMRegressor
        inner = cls(random_state=seed, n_jobs=n_jobs, verbose=-1, subsample_freq=1, **params)
    else:
        import xgboost as xgb

        cls = xgb.XGBClassifier if classify else xgb.XGBRegressor
        inner = cls(
            random_state=seed,
            n_jobs=n_jobs,
            tree_method="hist",
            enable_categorical=native_categories,
            **params,
        )
    if classify:
        return BoostedClassifier(inner, class_weight=weight, random_state=seed, **rounds)
    transform = "log" if log_target else "none"
    return BoostedRegressor(inner, random_state=seed, target_transform=transform, **rounds)


def _recipe_step(preprocessor: Any) -> Any:
    """Freeze an already-fitted recipe transformer so CV clones keep it fitted as is."""
    try:
        check_is_fitted(preprocessor)
    except NotFittedError:
        return preprocessor
    return FrozenEstimator(preprocessor)


def build_pipeline(
    spec: CandidateSpec,
    task: str,
    *,
    seed: int,
    n_jobs: int = 1,
    min_class_rows: int = 6,
    preprocessor: Any = None,
) -> Pipeline:
    """Build the unfitted pipeline of a candidate, from raw columns to predictions.

    Args:
        spec: The candidate.
        task: ``binary``, ``multiclass`` or ``regression``.
        seed: Random state for every random step.
        n_jobs: Threads for the estimator.
        min_class_rows: Smallest class size in a training fold (caps SMOTE neighbours).
        preprocessor: Optional recipe transformer placed first (kept fitted if it is).

    Returns:
        A scikit-learn pipeline, or an ``imblearn`` one when it resamples (resamplers run
        only when fitting).
    """
    steps: list[tuple[str, Any]] = []
    if preprocessor is not None:
        steps.append(("recipe", _recipe_step(preprocessor)))
    steps.append(("drop", DropColumns(spec.drop_columns)))
    if spec.selection != "none":
        steps.append(
            (
                "select",
                FeatureSelector(spec.selection, k=spec.selection_k, task=task, random_state=seed),
            )
        )
    # Resamplers interpolate numbers, so a resampled GBDT sees ordinal codes instead.
    resampled = spec.imbalance in RESAMPLERS and spec.family != "baseline"
    native = spec.family in _GBDT and not resampled
    steps.append(
        ("columns", _columns_for(spec.family, native_categories=native, resampled=resampled))
    )
    if resampled:
        steps.append(
            ("resample", make_resampler(spec.imbalance, seed=seed, min_class_rows=min_class_rows))
        )
    weight = "balanced" if spec.imbalance == "class_weight" else None
    estimator = make_estimator(
        spec.family,
        task,
        spec.params,
        class_weight=weight,
        seed=seed,
        n_jobs=n_jobs,
        native_categories=native,
    )
    steps.append(("model", estimator))
    if any(name == "resample" for name, _ in steps):
        # imbalanced-learn's Pipeline runs samplers on fit only; loading a model that holds
        # one imports the whole of imbalanced-learn, so other pipelines use scikit-learn's.
        from imblearn.pipeline import Pipeline as SamplingPipeline

        return SamplingPipeline(steps)
    return Pipeline(steps)
