"""From a fitted pipeline's prepared columns back to the user's raw input columns.

A pipeline is a chain of steps ending in an estimator. Walking the chain, each step's
output columns get a *lineage*: the raw input columns they come from, with a share each.
Column selection steps (drop, feature selection) keep names; the ColumnTransformer is read
from its ``transformers_`` (each block's input columns) and ``output_indices_`` (each
block's output columns): a block over one column sends all its outputs (one-hot dummies,
date parts, a missing-value indicator) to that column; a block over several columns
matches each output to the input whose name it carries (``Home_rent`` to ``Home``,
``missingindicator_Income`` to ``Income``), or by position when it is one-to-one (imputers,
ordinal codes). A recipe step has no names to go by (``ratio = Debt / Income``), so its
lineage is measured: each input column is shifted by one row on a small background
sample and the outputs that change depend on it. An output that depends on several raw
columns is shared between them equally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Chain", "FeatureMap", "flatten", "prepared_lineage", "transform_chain"]

#: A lineage: raw column -> share (shares of one feature sum to 1).
Lineage = dict[str, float]


@dataclass
class Chain:
    """A pipeline flattened to its transforming steps and its final estimator."""

    steps: list[Any]
    estimator: Any


@dataclass
class FeatureMap:
    """Prepared feature names and the share of each that goes to each raw column.

    Attributes:
        features: Prepared column names, in the estimator's column order.
        raw_columns: The raw input columns, in input order.
        weights: ``(len(features), len(raw_columns))``; each row sums to 1.
    """

    features: list[str]
    raw_columns: list[str]
    weights: np.ndarray

    def to_raw(self, values: np.ndarray) -> np.ndarray:
        """Sum per-feature values (``(..., n_features)``) into raw columns."""
        return np.asarray(values @ self.weights)


def unwrap(model: Any) -> Any:
    """The model inside a threshold wrapper or a frozen estimator."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    while True:
        if isinstance(model, FixedThresholdClassifier):
            model = model.estimator_
        elif isinstance(model, FrozenEstimator):
            model = model.estimator
        else:
            return model


def flatten(model: Any) -> Chain:
    """Flatten nested pipelines (and threshold/frozen wrappers) into one chain.

    Steps that only act while fitting (resamplers, which have no ``transform``) and
    ``passthrough`` steps are left out, as a pipeline's ``predict`` leaves them out.

    Args:
        model: A fitted estimator or pipeline.

    Returns:
        The transforming steps in order and the final estimator.
    """
    model = unwrap(model)
    steps_attr = getattr(model, "steps", None)
    if not isinstance(steps_attr, list):
        return Chain([], model)
    steps: list[Any] = []
    for _, step in steps_attr[:-1]:
        step = unwrap(step)
        if step is None or step == "passthrough" or not hasattr(step, "transform"):
            continue
        steps.append(step)
    inner = flatten(steps_attr[-1][1])
    return Chain(steps + inner.steps, inner.estimator)


def transform_chain(steps: list[Any], frame: pd.DataFrame) -> Any:
    """Run rows through the steps (the estimator's input comes out)."""
    data: Any = frame
    for step in steps:
        data = step.transform(data)
    return data


def _names(step: Any, data: Any) -> list[str]:
    if hasattr(step, "get_feature_names_out"):
        try:
            return [str(n) for n in step.get_feature_names_out()]
        except (AttributeError, TypeError, ValueError):
            pass
    if isinstance(data, pd.DataFrame):
        return [str(c) for c in data.columns]
    return [f"x{i}" for i in range(np.shape(data)[1])]


def _is_column_transformer(step: Any) -> bool:
    return hasattr(step, "transformers_") and hasattr(step, "output_indices_")


def _block_lineage(outputs: list[str], inputs: list[str]) -> list[str]:
    """The input column each output of one ColumnTransformer block comes from."""
    if len(inputs) == 1:
        return [inputs[0]] * len(outputs)
    if len(outputs) == len(inputs) and all(
        o.endswith(i) for o, i in zip(outputs, inputs, strict=True)
    ):
        return list(inputs)
    by_length = sorted(inputs, key=len, reverse=True)
    found = []
    for position, output in enumerate(outputs):
        match = next((i for i in by_length if output.startswith(i)), None)
        match = match or next((i for i in by_length if i in output), None)
        found.append(match or inputs[position % len(inputs)])
    return found


def _column_transformer_lineage(ct: Any, upstream: dict[str, Lineage]) -> dict[str, Lineage]:
    names = [str(n) for n in ct.get_feature_names_out()]
    out: dict[str, Lineage] = {}
    for block, transformer, columns in ct.transformers_:
        if transformer == "drop" or block not in ct.output_indices_:
            continue
        indices = ct.output_indices_[block]
        outputs = names[indices.start : indices.stop]
        if not outputs:
            continue
        inputs = [str(c) for c in (columns if isinstance(columns, list | tuple) else [])]
        if not inputs or isinstance(columns, slice | np.ndarray):
            inputs = [str(c) for c in np.asarray(ct.feature_names_in_)[columns]]
        for output, source in zip(outputs, _block_lineage(outputs, inputs), strict=True):
            out[output] = upstream.get(source, {source: 1.0})
    return out


def _changed(before: pd.DataFrame, after: pd.DataFrame, column: str) -> bool:
    a, b = before[column], after[column]
    try:
        same = (a == b) | (a.isna() & b.isna())
        return not bool(np.all(same.to_numpy(dtype=bool, na_value=False)))
    except (TypeError, ValueError):
        return not a.astype(str).equals(b.astype(str))


def _measured_lineage(
    step: Any, frame: pd.DataFrame, upstream: dict[str, Lineage]
) -> dict[str, Lineage]:
    """Lineage of a step with no usable names: shift each input and see what moves."""
    base = step.transform(frame)
    if not isinstance(base, pd.DataFrame):
        base = pd.DataFrame(np.asarray(base), columns=_names(step, base), index=frame.index)
    sources: dict[str, list[str]] = {str(c): [] for c in base.columns}
    for column in frame.columns:
        shifted = frame.copy()
        shifted[column] = np.roll(frame[column].to_numpy(), 1)
        moved = step.transform(shifted)
        if not isinstance(moved, pd.DataFrame):
            moved = pd.DataFrame(np.asarray(moved), columns=base.columns, index=frame.index)
        for output in base.columns:
            if output in moved.columns and _changed(base, moved, output):
                sources[str(output)].append(str(column))
    out: dict[str, Lineage] = {}
    inputs = [str(c) for c in frame.columns]
    for output, found in sources.items():
        if not found:
            by_length = sorted(inputs, key=len, reverse=True)
            named = (
                output if output in inputs else next((i for i in by_length if i in output), None)
            )
            found = [named] if named else []
        if not found:
            out[output] = {output: 1.0}
            continue
        merged: Lineage = {}
        for source in found:
            for raw, share in upstream.get(source, {source: 1.0}).items():
                merged[raw] = merged.get(raw, 0.0) + share / len(found)
        out[output] = merged
    return out


def prepared_lineage(chain: Chain, background: pd.DataFrame) -> tuple[FeatureMap, Any]:
    """Map the estimator's input columns back to the raw columns of ``background``.

    Args:
        chain: The flattened pipeline.
        background: A few raw rows (tens to hundreds) with every raw input column; the
            more varied, the better a recipe step's lineage is measured.

    Returns:
        The feature map, and ``background`` as the estimator receives it.
    """
    raw_columns = [str(c) for c in background.columns]
    lineage: dict[str, Lineage] = {c: {c: 1.0} for c in raw_columns}
    data: Any = background
    for step in chain.steps:
        if _is_column_transformer(step):
            lineage = _column_transformer_lineage(step, lineage)
            data = step.transform(data)
            continue
        names_before = list(lineage)
        out = step.transform(data)
        names = _names(step, out)
        if set(names) <= set(names_before):
            lineage = {n: lineage[n] for n in names}
        elif isinstance(data, pd.DataFrame):
            lineage = _measured_lineage(step, data, lineage)
        else:
            lineage = {n: {n: 1.0} for n in names}
        data = out
    features = _names(chain.steps[-1], data) if chain.steps else raw_columns
    extra = [r for f in features for r in lineage.get(f, {f: 1.0}) if r not in raw_columns]
    columns = raw_columns + list(dict.fromkeys(extra))
    weights = np.zeros((len(features), len(columns)))
    index = {c: j for j, c in enumerate(columns)}
    for i, feature in enumerate(features):
        for raw, share in lineage.get(feature, {feature: 1.0}).items():
            weights[i, index[raw]] += share
    return FeatureMap(features, columns, weights), data
