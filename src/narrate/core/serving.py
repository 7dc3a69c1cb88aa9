"""The serving format: a trained model that predicts without scikit-learn.

A model saved with joblib needs scikit-learn (and through it SciPy) to load, which costs
about a second in a fresh process before the first prediction. At training time
:mod:`narrate.core.automl.export` translates the fitted pipeline into this format: the
recipe steps as their fitted JSON (run with Polars), the column preparation as lookup
tables and numbers (imputation values, scaling, category codes), tree models as Treelite
models and linear models as coefficients. Loading it imports only NumPy, pandas and,
when the model has trees, Treelite.

The file is a zip of ``manifest.json`` and ``.npy`` arrays: nothing in it is pickled, so
unlike a joblib file it cannot run code when it is loaded.

Scoring a few rows is dominated by pandas, not by the model: selecting, casting and
masking DataFrame columns costs milliseconds where the trees take microseconds. So a
model without recipe steps reads its input column by column as NumPy arrays, looks
categories up in dicts built when it loads, and runs Treelite on one thread for small
batches (starting its thread pool costs more than a few rows take). Dates given as text
are still parsed by pandas, column by column; whatever that path cannot read exactly as
pandas would (extension dtypes other than strings, values pandas refuses, duplicate
column names) goes through the pandas path, so both give the same numbers.
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narrate.errors import InvalidInput

__all__ = [
    "DATETIME_PARTS",
    "FORMAT",
    "MISSING_TEXT",
    "ServingModel",
    "as_text",
    "datetime_parts",
    "expm1_capped",
    "load_serving",
    "save_serving",
]

FORMAT = "narrate-serving"
VERSION = 1

#: What a missing categorical value becomes before it is encoded.
MISSING_TEXT = "__missing__"

DATETIME_PARTS = ("year", "month", "day", "day_of_week", "hour")

#: Below this many rows Treelite predicts on one thread: waking its pool costs more.
_SMALL_BATCH = 1_000


def as_text(frame: pd.DataFrame) -> np.ndarray:
    """Turn categorical columns into strings, missing values into ``"__missing__"``."""
    values = frame.astype(object).where(frame.notna(), MISSING_TEXT)
    return np.asarray(values.astype(str), dtype=object)


def expm1_capped(values: np.ndarray) -> np.ndarray:
    """Back from log(1 + y) to y, capped so a wild prediction can't overflow."""
    return np.asarray(np.expm1(np.minimum(values, 700.0)))


def datetime_parts(frame: pd.DataFrame) -> np.ndarray:
    """One float column per (date column, part); missing or unreadable dates become NaN."""
    blocks = [_series_date_parts(frame[column]) for column in frame.columns]
    if not blocks:
        return np.empty((len(frame), 0))
    return np.column_stack(blocks)


def _series_date_parts(column: pd.Series) -> np.ndarray:
    values = pd.to_datetime(column, errors="coerce")
    return np.column_stack(
        [getattr(values.dt, part).to_numpy(dtype=float, na_value=np.nan) for part in DATETIME_PARTS]
    )


def _numpy_date_parts(values: np.ndarray) -> np.ndarray:
    """What :func:`datetime_parts` gives for a naive ``datetime64`` array, without pandas."""
    days = values.astype("datetime64[D]")
    months = values.astype("datetime64[M]")
    parts = np.column_stack(
        [
            values.astype("datetime64[Y]").astype(np.int64) + 1970,
            months.astype(np.int64) % 12 + 1,
            (days - months.astype("datetime64[D]")).astype(np.int64) + 1,
            (days.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
            (values - days).astype("timedelta64[h]").astype(np.int64),
        ]
    ).astype(float)
    parts[np.isnat(values)] = np.nan
    return parts


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


class _Arrays:
    """Arrays referenced from the manifest as ``"@name"``."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def get(self, ref: str) -> np.ndarray:
        return self.arrays[ref.removeprefix("@")]


def _numeric_ops(matrix: np.ndarray, ops: list[dict[str, Any]], arrays: _Arrays) -> np.ndarray:
    for op in ops:
        if op["op"] == "impute":
            fill = arrays.get(op["values"])
            matrix = np.where(np.isnan(matrix), fill, matrix)
        elif op["op"] == "scale":
            matrix = (matrix - arrays.get(op["mean"])) / arrays.get(op["scale"])
        else:  # pragma: no cover - written by export.py only
            raise ValueError(f"unknown numeric step {op['op']!r}")
    return matrix


def _as_numbers(frame: pd.DataFrame) -> np.ndarray:
    try:
        return np.asarray(frame.astype(float).to_numpy(dtype=float, na_value=np.nan))
    except (TypeError, ValueError):
        for column in frame.columns:
            try:
                frame[column].astype(float)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"Column {column!r} must hold numbers: {exc}.",
                    code="invalid_input",
                    details={"column": str(column)},
                ) from exc
        raise


class _NotFast(Exception):
    """Input the NumPy path can't read exactly as pandas would: use the pandas path."""


def _numbers_of(values: Any) -> np.ndarray:
    """A column as floats, as ``astype(float)`` on the pandas column gives them."""
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "biufO":
        raise _NotFast
    try:
        return values.astype(float, copy=False)
    except (TypeError, ValueError) as exc:
        raise _NotFast from exc  # the pandas path says which column and why


def _texts_of(values: Any) -> np.ndarray:
    """A column as :func:`as_text` turns it into strings, without pandas' frame machinery."""
    if isinstance(values, pd.api.extensions.ExtensionArray):
        if isinstance(values.dtype, pd.StringDtype):
            return np.asarray(values.to_numpy(dtype=object, na_value=MISSING_TEXT))
        raise _NotFast
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "biufO":
        raise _NotFast
    items = values.tolist()
    kinds = set(map(type, items))
    if kinds <= _PLAIN_KINDS:  # text, booleans and gaps: what check_rows gives
        words = _PLAIN_WORDS
        texts = [item if type(item) is str else words[item] for item in items]
    else:
        texts = [item if type(item) is str else _text(item) for item in items]
    return np.asarray(texts, dtype=object)


_PLAIN_KINDS = {str, bool, type(None)}
_PLAIN_WORDS = {None: MISSING_TEXT, True: "True", False: "False"}


def _text(value: Any) -> str:
    """One value as ``as_text`` writes it: pandas' missing test, then ``astype(str)``."""
    if value is None:
        return MISSING_TEXT
    if isinstance(value, float):
        return MISSING_TEXT if value != value else str(value)
    if isinstance(value, bytes):
        return value.decode()
    missing = pd.isna(value)  # NaT, pd.NA, NumPy scalars; an array for a list value
    if isinstance(missing, bool | np.bool_) and missing:
        return MISSING_TEXT
    return str(value)


def _date_parts_of(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return _numpy_date_parts(values)
    return _series_date_parts(pd.Series(values))  # text, time zones: pandas parses them


class _Categories:
    """One column's encoding: its known categories and the lookup table, whose last row
    is what an unseen category gets."""

    def __init__(self, known: list[str], table: np.ndarray) -> None:
        self.codes = {text: i for i, text in enumerate(known)}
        self.table = table

    def encode(self, texts: np.ndarray) -> np.ndarray:
        # A dict beats pandas' get_indexer at every size here (11 ms vs 34 ms a 100k rows).
        unseen = itertools.repeat(len(self.codes))
        codes = np.fromiter(map(self.codes.get, texts.tolist(), unseen), np.intp, len(texts))
        return np.asarray(self.table[codes])


class _Columns:
    """The rows as one array per column, each converted once however many blocks and
    ensemble members read it."""

    def __init__(self, arrays: Mapping[str, Any], n: int) -> None:
        self.arrays, self.n = arrays, n
        self.converted: dict[tuple[str, str], np.ndarray] = {}

    def get(self, kind: str, column: str) -> np.ndarray:
        key = (kind, column)
        found = self.converted.get(key)
        if found is None:
            found = self.converted[key] = _CONVERTERS[kind](self.arrays[column])
        return found


_CONVERTERS = {"numbers": _numbers_of, "texts": _texts_of, "dates": _date_parts_of}


_RECIPES: dict[str, Any] = {}


def _load_recipes(recipes: list[str]) -> None:
    """Parse fitted recipes (their JSON) once, when the model loads."""
    if not recipes:
        return  # nothing to parse: don't import Polars and the recipe steps
    from narrate.core.recipes.fit import FittedRecipe

    for text in recipes:
        if text not in _RECIPES:
            _RECIPES[text] = FittedRecipe.from_json(text)


def _apply_recipes(frame: pd.DataFrame, recipes: list[str]) -> pd.DataFrame:
    """Run fitted recipes on the rows with Polars, skipping training-only steps."""
    import polars as pl

    _load_recipes(recipes)
    out = pl.from_pandas(frame.reset_index(drop=True))
    for text in recipes:
        out = _RECIPES[text].apply(out, for_prediction=True)
    result = out.to_pandas()
    if len(result) == len(frame):
        result.index = frame.index
    return result


class _Pipeline:
    """Column preparation of one candidate, then its estimator."""

    def __init__(self, spec: dict[str, Any], arrays: _Arrays) -> None:
        self.spec = spec
        self.arrays = arrays
        self.estimator = _estimator(spec["estimator"], arrays)
        _load_recipes(spec.get("recipes") or [])
        self.categories = [
            [
                _Categories(known, arrays.get(ref))
                for known, ref in zip(
                    block.get("categories", []), block.get("tables", []), strict=True
                )
            ]
            for block in spec["blocks"]
        ]

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        parts: list[np.ndarray] = []
        for block in self.spec["blocks"]:
            columns = block["columns"]
            if block["kind"] == "numeric":
                values = _numeric_ops(_as_numbers(frame[columns]), block["ops"], self.arrays)
                parts.append(values)
                if block.get("indicator"):
                    raw = _as_numbers(frame[[columns[i] for i in block["indicator"]]])
                    parts.append(np.isnan(raw).astype(float))
            elif block["kind"] == "categorical":
                texts = as_text(frame[columns])
                for j, ref in enumerate(block["tables"]):
                    known = pd.Index(block["categories"][j])
                    codes = known.get_indexer(texts[:, j])  # -1 = unseen: the table's last row
                    parts.append(self.arrays.get(ref)[codes])
            else:
                parts.append(
                    _numeric_ops(datetime_parts(frame[columns]), block["ops"], self.arrays)
                )
        if not parts:
            return np.empty((len(frame), 0))
        return np.column_stack(parts)

    def fast_features(self, rows: _Columns) -> np.ndarray:
        """What :meth:`features` computes, from NumPy columns (no recipes: see _Node)."""
        parts: list[np.ndarray] = []
        for block, categories in zip(self.spec["blocks"], self.categories, strict=True):
            columns = block["columns"]
            if block["kind"] == "numeric":
                raw = np.column_stack([rows.get("numbers", c) for c in columns])
                parts.append(_numeric_ops(raw, block["ops"], self.arrays))
                if block.get("indicator"):
                    parts.append(np.isnan(raw[:, block["indicator"]]).astype(float))
            elif block["kind"] == "categorical":
                for column, encoding in zip(columns, categories, strict=True):
                    parts.append(encoding.encode(rows.get("texts", column)))
            else:
                raw = np.column_stack([rows.get("dates", c) for c in columns])
                parts.append(_numeric_ops(raw, block["ops"], self.arrays))
        if not parts:
            return np.empty((rows.n, 0))
        return np.column_stack(parts)

    def output(self, frame: pd.DataFrame) -> np.ndarray:
        if self.spec.get("recipes"):
            frame = _apply_recipes(frame, self.spec["recipes"])
        kept = frame.drop(columns=[c for c in self.spec["drop"] if c in frame.columns])
        if self.spec.get("select") is not None:
            kept = kept[self.spec["select"]]
        return np.asarray(self.estimator(self.features(kept)))


def _gtil_predict() -> Any:
    """``treelite.gtil.predict(model, X, nthread=...)``, minus half its cost on one row.

    The public function parses a new JSON configuration on every call (about 50 µs, as
    long as a small model takes to score a row); Treelite 4's own implementation takes
    a parsed one, so one is kept per thread count. Any other version uses the public
    function.
    """
    import treelite

    try:
        from treelite.gtil.gtil import GTILConfig, _predict_impl
    except ImportError:  # pragma: no cover - another Treelite layout
        return lambda model, X, threads: treelite.gtil.predict(model, X, nthread=threads)
    configs = {n: GTILConfig(predict_type="default", nthread=n) for n in (1, -1)}
    return lambda model, X, threads: _predict_impl(model, X, config=configs[threads])


#: From this many rows a booster's own library predicts, when the copy carries its model
#: and the library imports: LightGBM's compiled predictor scores about ten times as many
#: rows a second as Treelite's interpreter (GTIL), which stays for small inputs and for
#: processes without the library.
_NATIVE_ROWS = 2048


def _native_booster(native: dict[str, Any] | None, arrays: _Arrays) -> Any:
    """``X -> raw output`` with the booster's own library, or None (not stored, or the
    library is not installed). LightGBM's output is Treelite's: probabilities of the
    positive class (binary), of each class (multiclass), or values."""
    if not native or native.get("library") != "lightgbm":
        return None
    import importlib.util

    if importlib.util.find_spec("lightgbm") is None:
        return None
    text = arrays.get(native["model"]).tobytes().decode()
    loaded: list[Any] = []

    def predict(X: np.ndarray) -> np.ndarray:
        # Imported on the first large batch, not when the model loads: LightGBM imports
        # scikit-learn, which a fresh process loading a serving copy must not pay for.
        if not loaded:
            import lightgbm

            loaded.append(lightgbm.Booster(model_str=text))
        return np.asarray(loaded[0].predict(X, num_threads=0))

    return predict


def _estimator(spec: dict[str, Any], arrays: _Arrays) -> Any:
    kind = spec["kind"]
    if kind == "constant":
        values = np.asarray(spec["values"], dtype=float)
        if values.size > 1:
            return lambda X: np.tile(values, (len(X), 1))
        return lambda X: np.full(len(X), values[0])
    if kind == "linear":
        coef, intercept = arrays.get(spec["coef"]), arrays.get(spec["intercept"])
        link, log_target = spec["link"], spec.get("log_target", False)

        def linear(X: np.ndarray) -> np.ndarray:
            z = X @ coef.T + intercept
            if link == "logistic":
                p = _sigmoid(z.reshape(-1))
                return np.column_stack([1.0 - p, p])
            if link == "softmax":
                return _softmax(z)
            value = z.reshape(-1)
            return expm1_capped(value) if log_target else value

        return linear
    if kind == "trees":
        return _Trees(spec, arrays)
    raise ValueError(f"unknown estimator kind {kind!r}")  # pragma: no cover


class _Trees:
    """A tree ensemble: Treelite's interpreter, the booster's own library for large
    batches, or native code compiled from the model (:mod:`narrate.core.compiled_trees`)
    once :meth:`ServingModel.use_compiled_trees` attached it."""

    def __init__(self, spec: dict[str, Any], arrays: _Arrays) -> None:
        import treelite

        self.model_bytes = arrays.get(spec["model"]).tobytes()
        self.model = treelite.Model.deserialize_bytes(self.model_bytes)
        self.classify, self.log_target = spec["classify"], spec.get("log_target", False)
        self.dtype: type[np.floating] = np.float32 if spec.get("float32") else np.float64
        self.predict = _gtil_predict()
        self.native = _native_booster(spec.get("native"), arrays)
        self.compiled: Any = None  # X -> raw output, from a compiled library

    def __call__(self, X: np.ndarray) -> np.ndarray:
        compiled = self.compiled
        if compiled is not None:
            raw = np.asarray(compiled(X))
        elif self.native is not None and len(X) >= _NATIVE_ROWS:
            raw = np.asarray(self.native(np.ascontiguousarray(X, dtype=np.float64)))
        else:
            threads = 1 if len(X) < _SMALL_BATCH else -1  # -1: every core
            X = np.ascontiguousarray(X, dtype=self.dtype)
            raw = np.asarray(self.predict(self.model, X, threads))
        out = raw.reshape(len(X), -1).astype(float)
        if self.classify:
            return np.column_stack([1.0 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out
        value = out[:, 0]
        return expm1_capped(value) if self.log_target else value


class _Node:
    """A pipeline, an ensemble of nodes or a linear meta-learner over them."""

    def __init__(self, spec: dict[str, Any], arrays: _Arrays) -> None:
        self.kind = spec["kind"]
        self.spec = spec
        if self.kind == "pipeline":
            self.pipeline = _Pipeline(spec, arrays)
            self.has_recipes = bool(spec.get("recipes"))
        else:
            self.members = [_Node(m, arrays) for m in spec["members"]]
            self.has_recipes = any(m.has_recipes for m in self.members)
            if self.kind == "stacking":
                self.meta = _estimator(spec["meta"], arrays)

    def output(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind == "pipeline":
            return self.pipeline.output(frame)
        return self._combine([m.output(frame) for m in self.members], len(frame))

    def fast_output(self, rows: _Columns) -> np.ndarray:
        if self.kind == "pipeline":
            return np.asarray(self.pipeline.estimator(self.pipeline.fast_features(rows)))
        return self._combine([m.fast_output(rows) for m in self.members], rows.n)

    def _combine(self, outputs: list[np.ndarray], n: int) -> np.ndarray:
        if self.kind == "voting":
            return np.asarray(np.average(np.stack(outputs), axis=0, weights=self.spec["weights"]))
        if self.spec["binary"]:
            features = np.column_stack([o[:, 1] for o in outputs])
        else:
            features = np.column_stack([o.reshape(n, -1) for o in outputs])
        return np.asarray(self.meta(features))


class ServingModel:
    """A trained model in the serving format: ``predict`` and ``predict_proba`` on raw rows.

    Args:
        manifest: The model's description (see :mod:`narrate.core.automl.export`).
        arrays: The arrays the manifest refers to.
    """

    def __init__(self, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise InvalidInput(
                "This file is not a Narrate serving model (or it is from a newer version).",
                code="invalid_input",
            )
        self.manifest = manifest
        self.arrays = arrays
        self.task: str = manifest["task"]
        self.classes_ = np.asarray(manifest["classes"]) if manifest["classes"] else None
        self.columns: list[str] = list(manifest["columns"])
        self.threshold: dict[str, Any] | None = manifest.get("threshold")
        self._root = _Node(manifest["model"], _Arrays(arrays))
        _load_recipes(manifest.get("recipes") or [])
        # Recipes run in Polars on a DataFrame, so their models stay on the pandas path.
        self._is_fast = not manifest.get("recipes") and not self._root.has_recipes

    @property
    def tree_models(self) -> list[_Trees]:
        """The tree ensembles inside the model (members of ensembles included)."""
        found: list[_Trees] = []
        pending = [self._root]
        while pending:
            node = pending.pop()
            if node.kind == "pipeline":
                if isinstance(node.pipeline.estimator, _Trees):
                    found.append(node.pipeline.estimator)
            else:
                pending.extend(node.members)
        return found

    def use_compiled_trees(self, folder: Path, *, compile_missing: bool) -> int:
        """Score with native code compiled from the trees (same outputs, faster).

        Args:
            folder: Where compiled libraries are kept (shared by processes).
            compile_missing: Compile a tree model whose library is not there yet
                (seconds per model; needs a C compiler) instead of skipping it.

        Returns:
            How many tree models now use compiled code.
        """
        from narrate.core import compiled_trees

        if compiled_trees.compiler() is None:
            return 0
        used = 0
        for trees in self.tree_models:
            if trees.compiled is None:
                path = compiled_trees.library_path(folder, trees.model_bytes)
                if not path.exists() and compile_missing:
                    path = compiled_trees.compile_library(trees.model_bytes, folder) or path
                if path.exists():
                    trees.compiled = compiled_trees.load_library(path, trees.dtype)
            used += trees.compiled is not None
        return used

    @property
    def has_trees(self) -> bool:
        """Whether any part of the model is a tree ensemble."""
        return bool(self.tree_models)

    def _check_columns(self, given: Any) -> None:
        missing = [c for c in self.columns if c not in given]
        if missing:
            raise InvalidInput(
                f"The rows lack the column(s) the model was trained on: {', '.join(missing)}.",
                code="invalid_input",
                details={"missing_columns": missing},
            )

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._check_columns(frame.columns)
        if not self.manifest.get("recipes"):
            return frame
        return _apply_recipes(frame, self.manifest["recipes"])

    def _pandas_output(self, frame: pd.DataFrame) -> np.ndarray:
        """The reference path: every step on the DataFrame (recipes need it)."""
        return self._root.output(self._prepare(frame))

    def _output(self, frame: pd.DataFrame) -> np.ndarray:
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(
                "Give the rows to predict as a pandas DataFrame.", code="invalid_input"
            )
        if self._is_fast:
            self._check_columns(frame.columns)
            names = frame.columns.tolist()
            positions = {name: i for i, name in enumerate(names)}
            if len(positions) == len(names):  # duplicate names: let pandas decide
                arrays = {c: _frame_column(frame, positions[c]) for c in self.columns}
                try:
                    return self._root.fast_output(_Columns(arrays, len(frame)))
                except _NotFast:
                    pass
        return self._pandas_output(frame)

    def predict_output(self, rows: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """The model's output in one pass: class probabilities or predicted values.

        Pair it with :meth:`labels_from_output` to get labels and probabilities without
        scoring twice.

        Args:
            rows: A DataFrame, or one array per column (``{"Age": np.array([...]), ...}``;
                e.g. :attr:`narrate.core.signature.CheckedRows.columns`), which skips
                building a DataFrame (about 1 ms in pandas 3) when no recipe needs one.

        Returns:
            For a classifier, one row of probabilities per input row in the order of
            ``classes_``; for a regressor, one value per row.

        Raises:
            InvalidInput: The rows lack a column the model needs, the columns differ in
                length, or a numeric column holds something that is not a number.
        """
        if isinstance(rows, pd.DataFrame):
            return self._output(rows)
        if not isinstance(rows, Mapping):
            raise InvalidInput(
                "Give the rows to predict as a DataFrame or one array per column.",
                code="invalid_input",
            )
        self._check_columns(rows)
        arrays = {c: _as_array(rows[c]) for c in self.columns}
        lengths = {c: len(a) for c, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInput(
                "Every column must hold one value per row; the lengths differ.",
                code="invalid_input",
                details={"lengths": lengths},
            )
        n = next(iter(lengths.values()), 0)
        if self._is_fast:
            try:
                return self._root.fast_output(_Columns(arrays, n))
            except _NotFast:
                pass
        return self._pandas_output(pd.DataFrame(arrays, index=pd.RangeIndex(n)))

    def labels_from_output(self, out: np.ndarray) -> np.ndarray:
        """Labels from :meth:`predict_output`, after the tuned threshold as :meth:`predict`.

        Args:
            out: What :meth:`predict_output` returned.

        Returns:
            One label per row (a regressor's values are returned as they are).
        """
        if self.task == "regression":
            return out
        assert self.classes_ is not None  # noqa: S101 - classification always has classes
        if self.threshold is not None:
            classes = list(self.classes_)
            positive = classes.index(self.threshold["pos_label"])
            negative = self.classes_[1 - positive]
            chosen = out[:, positive] >= self.threshold["threshold"]
            return np.asarray(np.where(chosen, self.classes_[positive], negative))
        return np.asarray(self.classes_[np.argmax(out, axis=1)])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class in the order of ``classes_``."""
        if self.task == "regression":
            raise InvalidInput(
                "A regression model has no class probabilities.", code="invalid_input"
            )
        return self._output(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels (after the tuned threshold, if any) or values."""
        return self.labels_from_output(self._output(frame))


def _frame_column(frame: pd.DataFrame, position: int) -> Any:
    """A DataFrame column's array (NumPy or pandas extension array), without a Series.

    pandas 3 takes about 25 µs to make each column's Series, more than scoring a row;
    ``_get_column_array`` hands over the block's array as it is.
    """
    get = getattr(frame, "_get_column_array", None)
    if get is not None:
        return get(position)
    return frame.iloc[:, position].array  # pragma: no cover - a pandas without it


def _as_array(values: Any) -> Any:
    if isinstance(values, pd.Series | pd.Index):
        values = values.array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = values.to_numpy()
    if isinstance(values, np.ndarray | pd.api.extensions.ExtensionArray):
        return values
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind in "US" else array


def save_serving(manifest: dict[str, Any], arrays: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write a serving model (manifest + arrays) to ``path`` via a temporary file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, allow_nan=False))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(f"arrays/{name}.npy", buffer.getvalue())
    temporary.replace(target)
    return target


def load_serving(path: str | Path) -> ServingModel:
    """Load a serving model written by :func:`save_serving`.

    Raises:
        InvalidInput: The file is not a serving model.
    """
    try:
        with zipfile.ZipFile(Path(path)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            arrays = {
                name[len("arrays/") : -len(".npy")]: np.load(
                    io.BytesIO(archive.read(name)), allow_pickle=False
                )
                for name in archive.namelist()
                if name.startswith("arrays/")
            }
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidInput(
            f"{Path(path).name} is not a Narrate serving model: {exc}.", code="invalid_input"
        ) from exc
    return ServingModel(manifest, arrays)
