"""Translate a fitted model pipeline into the serving format (:mod:`narrate.core.serving`).

Every step Narrate's candidate pipelines use has a translation: recipe steps keep their
fitted JSON, column preparation becomes numbers and lookup tables (each categorical
encoder is run once over every category it knows plus one unseen value, so the table
reproduces it exactly, infrequent groups included), tree models become Treelite models
and linear models their coefficients. Ensembles (soft voting, stacking, blending) and a
tuned threshold keep their structure.

The translation is checked before it is kept: both models predict sample rows (plus the
same rows with unseen categories and missing values) and must agree. Anything that
cannot be translated, or does not agree, raises :class:`NotExportable` with the reason;
the joblib model stays the reference either way.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from narrate.core import serving
from narrate.core.serving import FORMAT, VERSION, ServingModel

__all__ = ["NotExportable", "export_serving"]

_UNSEEN = "\x00unseen category\x00"


class NotExportable(Exception):
    """The model holds a step the serving format cannot express, or the copy disagrees."""


def _flatten(step: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    if isinstance(step, Pipeline):
        return [s for _, inner in step.steps for s in _flatten(inner)]
    return [step]


class _Builder:
    def __init__(self, task: str, classes: list[Any] | None) -> None:
        self.task = task
        self.classes = classes
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, values: Any, dtype: Any = float) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(values, dtype=dtype)
        return "@" + name

    # --- the model tree -------------------------------------------------------------------
    def node(self, est: Any) -> dict[str, Any]:
        from sklearn.ensemble import (
            StackingClassifier,
            StackingRegressor,
            VotingClassifier,
            VotingRegressor,
        )
        from sklearn.pipeline import Pipeline

        from narrate.core.automl.ensembles import BlendingEnsemble

        if isinstance(est, Pipeline):
            return self.pipeline(est)
        if isinstance(est, VotingClassifier | VotingRegressor):
            if getattr(est, "voting", "soft") != "soft":
                raise NotExportable("hard voting")
            members = [self.node(m) for m in est.estimators_]
            weights = est._weights_not_none or [1.0] * len(members)
            return {"kind": "voting", "members": members, "weights": [float(w) for w in weights]}
        if isinstance(est, StackingClassifier | StackingRegressor):
            if est.passthrough:
                raise NotExportable("stacking with passthrough")
            if isinstance(est, StackingClassifier) and set(est.stack_method_) != {"predict_proba"}:
                raise NotExportable("stacking on scores other than probabilities")
            members = [self.node(m) for m in est.estimators_ if m != "drop"]
            return self._stacked(members, est.final_estimator_)
        if isinstance(est, BlendingEnsemble):
            members = [self.node(m) for m in est.estimators_]
            return self._stacked(members, est.meta_)
        raise NotExportable(f"a model of type {type(est).__name__} outside a pipeline")

    def _stacked(self, members: list[dict[str, Any]], meta: Any) -> dict[str, Any]:
        return {
            "kind": "stacking",
            "members": members,
            "meta": self.estimator(meta, check_classes=False),
            "binary": self.task == "binary",
        }

    def pipeline(self, pipe: Any) -> dict[str, Any]:
        from sklearn.compose import ColumnTransformer
        from sklearn.frozen import FrozenEstimator

        from narrate.core.automl.selection import FeatureSelector
        from narrate.core.automl.transformers import DropColumns
        from narrate.core.recipes.sklearn import RecipeTransformer

        spec: dict[str, Any] = {"kind": "pipeline", "recipes": [], "drop": [], "select": None}
        steps = list(pipe.steps)
        for name, step in steps[:-1]:
            inner = step.estimator if isinstance(step, FrozenEstimator) else step
            if isinstance(inner, RecipeTransformer):
                if "blocks" in spec:
                    raise NotExportable(f"recipe step {name!r} after the column preparation")
                spec["recipes"].append(inner.fitted_.to_json())
            elif isinstance(inner, DropColumns):
                spec["drop"] = [str(c) for c in inner.columns]
            elif isinstance(inner, FeatureSelector):
                spec["select"] = [str(c) for c in inner.selected_]
            elif isinstance(inner, ColumnTransformer):
                spec["blocks"] = self.columns(inner)
            elif hasattr(inner, "fit_resample") or inner in (None, "passthrough"):
                continue  # resamplers only act while fitting
            else:
                raise NotExportable(f"pipeline step {name!r} ({type(inner).__name__})")
        if "blocks" not in spec:
            raise NotExportable("a pipeline without the column preparation step")
        spec["estimator"] = self.estimator(steps[-1][1])
        return spec

    # --- column preparation ---------------------------------------------------------------
    def columns(self, ct: Any) -> list[dict[str, Any]]:
        blocks = []
        for name, transformer, columns in ct.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            if not isinstance(columns, list | tuple | np.ndarray) or not all(
                isinstance(c, str) for c in columns
            ):
                raise NotExportable(f"column block {name!r} selects columns by position")
            if len(columns) == 0:
                continue
            blocks.append(self.block(transformer, [str(c) for c in columns]))
        return blocks

    def block(self, transformer: Any, columns: list[str]) -> dict[str, Any]:
        from sklearn.pipeline import FeatureUnion
        from sklearn.preprocessing import FunctionTransformer

        from narrate.core.automl.transformers import DatetimeParts

        steps = [] if transformer == "passthrough" else _flatten(transformer)
        first = steps[0] if steps else None
        if isinstance(first, FunctionTransformer) and first.func is serving.as_text:
            return self.categorical(steps[1:], columns)
        if isinstance(first, DatetimeParts):
            return {"kind": "datetime", "columns": columns, "ops": self.numeric_ops(steps[1:])}
        if len(steps) == 1 and isinstance(first, FeatureUnion):
            return self.union(first, columns)
        return {"kind": "numeric", "columns": columns, "ops": self.numeric_ops(steps)}

    def numeric_ops(self, steps: list[Any]) -> list[dict[str, Any]]:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        ops: list[dict[str, Any]] = []
        for step in steps:
            if isinstance(step, SimpleImputer) and not step.add_indicator:
                values = np.asarray(step.statistics_, dtype=float)
                ops.append({"op": "impute", "values": self.array(np.nan_to_num(values, nan=0.0))})
            elif isinstance(step, StandardScaler):
                width = step.n_features_in_
                mean = step.mean_ if step.mean_ is not None else np.zeros(width)
                scale = step.scale_ if step.scale_ is not None else np.ones(width)
                ops.append({"op": "scale", "mean": self.array(mean), "scale": self.array(scale)})
            elif step == "passthrough" or (
                isinstance(step, FunctionTransformer) and step.func is None
            ):
                continue  # "passthrough", as scikit-learn fits it for pandas output
            else:
                raise NotExportable(f"numeric step {type(step).__name__}")
        return ops

    def union(self, union: Any, columns: list[str]) -> dict[str, Any]:
        from sklearn.impute import MissingIndicator

        parts = [t for _, t in union.transformer_list if t != "drop"]
        if len(parts) != 2 or not isinstance(parts[1], MissingIndicator):
            raise NotExportable("a feature union other than values + missing indicators")
        return {
            "kind": "numeric",
            "columns": columns,
            "ops": self.numeric_ops(_flatten(parts[0])),
            "indicator": [int(i) for i in parts[1].features_],
        }

    def categorical(self, steps: list[Any], columns: list[str]) -> dict[str, Any]:
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

        from narrate.core.automl.transformers import CategoryCodes

        if not steps or not isinstance(steps[0], OneHotEncoder | OrdinalEncoder):
            raise NotExportable("a categorical block without a category encoder")
        encoder, rest = steps[0], steps[1:]
        if any(not isinstance(s, CategoryCodes) for s in rest):
            raise NotExportable("a categorical step after the encoder")
        if isinstance(encoder, OneHotEncoder) and encoder.drop is not None:
            raise NotExportable("one-hot encoding that drops a category")
        known = [[str(v) for v in cats] for cats in encoder.categories_]
        rows = max(len(k) for k in known) + 1
        probe = np.empty((rows, len(known)), dtype=object)
        for j, values in enumerate(known):
            column = [*values, _UNSEEN]
            probe[:, j] = column + [column[0]] * (rows - len(column))
        names = getattr(encoder, "feature_names_in_", None)
        out: Any = encoder.transform(
            probe if names is None else pd.DataFrame(probe, columns=list(names))
        )
        for step in rest:
            codes = step.transform(np.asarray(out, dtype=float))
            out = np.column_stack([codes[c].cat.codes.to_numpy(dtype=float) for c in codes.columns])
            out[out < 0] = np.nan  # an unknown or missing code is a missing category
        out = np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=float)
        widths = (
            list(encoder._n_features_outs)
            if isinstance(encoder, OneHotEncoder)
            else [1] * len(known)
        )
        tables, start = [], 0
        for j, width in enumerate(widths):
            tables.append(self.array(out[: len(known[j]) + 1, start : start + width]))
            start += width
        return {"kind": "categorical", "columns": columns, "categories": known, "tables": tables}

    # --- estimators -----------------------------------------------------------------------
    def estimator(self, est: Any, *, check_classes: bool = True) -> dict[str, Any]:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from sklearn.ensemble import (
            ExtraTreesClassifier,
            ExtraTreesRegressor,
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
        )
        from sklearn.linear_model import LogisticRegression, Ridge

        from narrate.core.automl.boosting import BoostedClassifier, BoostedRegressor

        classify = self.task != "regression"
        if classify and check_classes:
            self._check_classes(est)
        if isinstance(est, BoostedClassifier | BoostedRegressor):
            log = isinstance(est, BoostedRegressor) and est.target_transform == "log"
            xgboost = type(est.estimator_).__module__.startswith("xgboost")
            booster = self._booster(est.estimator_)
            lgbm = type(est.estimator_).__module__.startswith("lightgbm")
            # XGBoost compares float32 values; so must the copy.
            return self.trees(
                booster,
                classify,
                log_target=log,
                float32=xgboost,
                native=est.estimator_.booster_ if lgbm else None,
            )
        if isinstance(
            est,
            HistGradientBoostingClassifier
            | HistGradientBoostingRegressor
            | RandomForestClassifier
            | RandomForestRegressor
            | ExtraTreesClassifier
            | ExtraTreesRegressor,
        ):
            import treelite

            # Random forests and extra trees compare float32 values, as scikit-learn does.
            hgb = HistGradientBoostingClassifier | HistGradientBoostingRegressor
            float32 = not isinstance(est, hgb)
            return self.trees(treelite.sklearn.import_model(est), classify, float32=float32)
        if isinstance(est, LogisticRegression):
            coef = np.asarray(est.coef_, dtype=float)
            link = "logistic" if coef.shape[0] == 1 else "softmax"
            return self.linear(coef, est.intercept_, link)
        if isinstance(est, Ridge):
            return self.linear(np.reshape(est.coef_, (1, -1)), np.ravel(est.intercept_), "identity")
        if isinstance(est, TransformedTargetRegressor):
            if est.func is not np.log1p or est.inverse_func is not serving.expm1_capped:
                raise NotExportable("a target transform other than log(1 + y)")
            inner = self.estimator(est.regressor_, check_classes=False)
            if inner["kind"] != "linear":
                raise NotExportable("a log-target model that is not linear")
            return {**inner, "log_target": True}
        if isinstance(est, DummyClassifier) and est.strategy == "prior":
            return {"kind": "constant", "values": [float(v) for v in est.class_prior_]}
        if isinstance(est, DummyRegressor):
            return {"kind": "constant", "values": [float(np.ravel(est.constant_)[0])]}
        raise NotExportable(f"model {type(est).__name__}")

    def _check_classes(self, est: Any) -> None:
        classes = getattr(est, "classes_", None)
        # Voting and stacking members learn label-encoded classes, 0..k-1 in the same order.
        encoded = list(range(len(self.classes or [])))
        if classes is None or [_plain(c) for c in classes] not in (self.classes, encoded):
            raise NotExportable("a member whose classes differ from the model's")

    def linear(self, coef: Any, intercept: Any, link: str) -> dict[str, Any]:
        return {
            "kind": "linear",
            "coef": self.array(coef),
            "intercept": self.array(np.ravel(intercept)),
            "link": link,
        }

    def trees(
        self,
        model: Any,
        classify: bool,
        *,
        log_target: bool = False,
        float32: bool = False,
        native: Any = None,
    ) -> dict[str, Any]:
        data = np.frombuffer(model.serialize_bytes(), dtype=np.uint8)
        spec: dict[str, Any] = {
            "kind": "trees",
            "model": self.array(data, dtype=np.uint8),
            "classify": classify,
            "log_target": log_target,
            "float32": float32,
        }
        if native is not None:  # a LightGBM booster: its own predictor for large batches
            text = np.frombuffer(native.model_to_string().encode(), dtype=np.uint8)
            spec["native"] = {"library": "lightgbm", "model": self.array(text, dtype=np.uint8)}
        return spec

    def _booster(self, est: Any) -> Any:
        import treelite

        module = type(est).__module__
        if module.startswith("lightgbm"):
            for categories in est.booster_.pandas_categorical or []:
                if list(categories) != list(range(len(categories))):
                    raise NotExportable("LightGBM categories that are not category codes")
            return treelite.frontend.from_lightgbm(est.booster_)
        if module.startswith("xgboost"):
            booster = est.get_booster()
            best = booster.attr("best_iteration")
            if best is not None:  # early stopping: XGBoost predicts with the best rounds only
                booster = booster[: int(best) + 1]
            document = json.loads(booster.save_raw("json"))
            model = document["learner"]["gradient_booster"]["model"]
            for entry in (model.pop("cats", None) or {}).get("enc", []):
                values = entry.get("values", [])
                if "type" in entry and list(values) != list(range(len(values))):
                    raise NotExportable("XGBoost categories that are not category codes")
            return treelite.frontend.from_xgboost_json(json.dumps(document))
        raise NotExportable(f"booster {type(est).__name__}")


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a class label."""
    return value.item() if isinstance(value, np.generic) else value


def _with_awkward_rows(sample: pd.DataFrame) -> list[pd.DataFrame]:
    """The sample, plus its first rows with unseen categories and with missing values, and
    the sample repeated past the size where a booster's own library takes over from
    Treelite (``serving._NATIVE_ROWS``), so that path is checked too."""
    head = sample.head(20).copy()
    unseen, missing = head.copy(), head.copy()
    for column in sample.columns:
        if pd.api.types.is_numeric_dtype(sample[column]) and not pd.api.types.is_bool_dtype(
            sample[column]
        ):
            missing[column] = np.nan
        elif pd.api.types.is_datetime64_any_dtype(sample[column]):
            missing[column] = pd.NaT
        else:
            unseen[column] = _UNSEEN
            missing[column] = None
    repeats = -(-serving._NATIVE_ROWS // max(len(sample), 1))
    large = pd.concat([sample, unseen, missing] * repeats, ignore_index=True)
    return [sample, unseen, missing, large]


def _agree(model: Any, copy: ServingModel, rows: pd.DataFrame, task: str) -> str | None:
    """None when the two models predict ``rows`` alike, else what differs."""
    if task == "regression":
        expected = np.asarray(model.predict(rows), dtype=float)
        got = copy.predict(rows)
        scale = max(1.0, float(np.nanmax(np.abs(expected))) if expected.size else 1.0)
        if not np.allclose(got, expected, rtol=1e-4, atol=1e-6 * scale, equal_nan=True):
            worst = int(np.nanargmax(np.abs(got - expected)))
            return f"prediction {got[worst]!r} instead of {expected[worst]!r}"
        return None
    expected = np.asarray(model.predict_proba(rows), dtype=float)
    got = copy.predict_proba(rows)
    if expected.shape != got.shape or not np.allclose(got, expected, atol=1e-5):
        return "class probabilities differ"
    labels, copied = np.asarray(model.predict(rows)), copy.predict(rows)
    # Only rows whose decision is not a near tie must get the same label.
    if copy.threshold is not None and copy.classes_ is not None:
        positive = list(copy.classes_).index(copy.threshold["pos_label"])
        margin = np.abs(expected[:, positive] - copy.threshold["threshold"])
    else:
        ordered = np.sort(expected, axis=1)
        margin = ordered[:, -1] - ordered[:, -2]
    clear = margin > 1e-5
    if not np.array_equal(labels[clear].astype(str), copied[clear].astype(str)):
        return "predicted labels differ"
    return None


def export_serving(
    model: Any, sample: pd.DataFrame, *, task: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Translate ``model`` into the serving format and check the copy predicts alike.

    Args:
        model: The fitted model as saved: a candidate pipeline, an ensemble, a
            threshold-tuned classifier, optionally after recipe steps.
        sample: Input rows (the model's raw columns) to compare both models on.
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        The manifest and arrays for :func:`narrate.core.serving.save_serving`.

    Raises:
        NotExportable: A step has no translation, or the copy predicts differently.
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier
    from sklearn.pipeline import Pipeline

    from narrate.core.recipes.sklearn import RecipeTransformer

    classes = None if task == "regression" else [_plain(c) for c in model.classes_]
    builder = _Builder(task, classes)
    threshold = None
    inner, recipes = model, []
    # The recipes of the dataset version, in front of the trained model (see
    # ``narrate.services.training.raw_input_pipeline``).
    if isinstance(inner, Pipeline) and all(
        isinstance(step, RecipeTransformer) for _, step in inner.steps[:-1]
    ):
        recipes = [step.fitted_.to_json() for _, step in inner.steps[:-1]]
        inner = inner.steps[-1][1]
    if isinstance(inner, FixedThresholdClassifier):
        threshold = {"threshold": float(inner.threshold), "pos_label": _plain(inner.pos_label)}
        inner = inner.estimator
    if isinstance(inner, FrozenEstimator):
        inner = inner.estimator
    node = builder.node(inner)
    # The columns the model was fitted with and predicts from (a recipe fitted on rows
    # that held the target lists it too, but never needs it at prediction time).
    given = {str(c) for c in sample.columns}
    columns = [
        str(c) for c in getattr(model, "feature_names_in_", sample.columns) if str(c) in given
    ]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "task": task,
        "classes": classes,
        "columns": columns,
        "threshold": threshold,
        "recipes": recipes,
        "model": node,
    }
    try:
        copy = ServingModel(manifest, builder.arrays)
    except Exception as exc:
        raise NotExportable(f"the copy does not load: {exc}") from exc
    for rows in _with_awkward_rows(sample):
        try:
            model.predict(rows)
        except Exception:  # noqa: S112 - rows the model itself refuses prove nothing
            continue
        try:
            problem = _agree(model, copy, rows, task)
        except Exception as exc:
            problem = f"the copy fails: {exc}"
        if problem:
            raise NotExportable(f"the copy disagrees with the model: {problem}")
    return manifest, builder.arrays
