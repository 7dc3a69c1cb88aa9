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
"""

from __future__ import annotations

import io
import json
import zipfile
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


def as_text(frame: pd.DataFrame) -> np.ndarray:
    """Turn categorical columns into strings, missing values into ``"__missing__"``."""
    values = frame.astype(object).where(frame.notna(), MISSING_TEXT)
    return np.asarray(values.astype(str), dtype=object)


def expm1_capped(values: np.ndarray) -> np.ndarray:
    """Back from log(1 + y) to y, capped so a wild prediction can't overflow."""
    return np.asarray(np.expm1(np.minimum(values, 700.0)))


def datetime_parts(frame: pd.DataFrame) -> np.ndarray:
    """One float column per (date column, part); missing or unreadable dates become NaN."""
    blocks = []
    for column in frame.columns:
        values = pd.to_datetime(frame[column], errors="coerce")
        for part in DATETIME_PARTS:
            blocks.append(getattr(values.dt, part).to_numpy(dtype=float, na_value=np.nan))
    if not blocks:
        return np.empty((len(frame), 0))
    return np.column_stack(blocks)


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

    def output(self, frame: pd.DataFrame) -> np.ndarray:
        if self.spec.get("recipes"):
            frame = _apply_recipes(frame, self.spec["recipes"])
        kept = frame.drop(columns=[c for c in self.spec["drop"] if c in frame.columns])
        if self.spec.get("select") is not None:
            kept = kept[self.spec["select"]]
        return np.asarray(self.estimator(self.features(kept)))


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
        import treelite

        model = treelite.Model.deserialize_bytes(arrays.get(spec["model"]).tobytes())
        classify, log_target = spec["classify"], spec.get("log_target", False)
        dtype = np.float32 if spec.get("float32") else np.float64

        def trees(X: np.ndarray) -> np.ndarray:
            raw = np.asarray(treelite.gtil.predict(model, np.ascontiguousarray(X, dtype=dtype)))
            out = raw.reshape(len(X), -1).astype(float)
            if classify:
                return np.column_stack([1.0 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out
            value = out[:, 0]
            return expm1_capped(value) if log_target else value

        return trees
    raise ValueError(f"unknown estimator kind {kind!r}")  # pragma: no cover


class _Node:
    """A pipeline, an ensemble of nodes or a linear meta-learner over them."""

    def __init__(self, spec: dict[str, Any], arrays: _Arrays) -> None:
        self.kind = spec["kind"]
        self.spec = spec
        if self.kind == "pipeline":
            self.pipeline = _Pipeline(spec, arrays)
        else:
            self.members = [_Node(m, arrays) for m in spec["members"]]
            if self.kind == "stacking":
                self.meta = _estimator(spec["meta"], arrays)

    def output(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind == "pipeline":
            return self.pipeline.output(frame)
        outputs = [m.output(frame) for m in self.members]
        if self.kind == "voting":
            return np.asarray(np.average(np.stack(outputs), axis=0, weights=self.spec["weights"]))
        if self.spec["binary"]:
            features = np.column_stack([o[:, 1] for o in outputs])
        else:
            features = np.column_stack([o.reshape(len(frame), -1) for o in outputs])
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

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"The rows lack the column(s) the model was trained on: {', '.join(missing)}.",
                code="invalid_input",
                details={"missing_columns": missing},
            )
        if not self.manifest.get("recipes"):
            return frame
        return _apply_recipes(frame, self.manifest["recipes"])

    def _output(self, frame: pd.DataFrame) -> np.ndarray:
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(
                "Give the rows to predict as a pandas DataFrame.", code="invalid_input"
            )
        return self._root.output(self._prepare(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class in the order of ``classes_``."""
        if self.task == "regression":
            raise InvalidInput(
                "A regression model has no class probabilities.", code="invalid_input"
            )
        return self._output(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels (after the tuned threshold, if any) or values."""
        out = self._output(frame)
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
