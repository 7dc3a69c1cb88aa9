"""Reasons for single predictions: signed contributions per raw input column.

:class:`Explainer` wraps a fitted model (a pipeline from raw columns, possibly behind a
threshold wrapper or recipe steps) and answers, per row, ``output``, ``base_value`` and
``contributions`` such that ``base_value + sum(contributions) == output``:

* LightGBM and XGBoost: the boosters' own exact tree contributions, on the margin
  (log-odds for binary, the softmax logit of the explained class for multiclass; the
  learned log(1 + y) for a log-target regressor).
* Random forests, extra trees and (numeric-only) HistGradientBoosting: shap's exact
  TreeExplainer (probability for forests' classifiers, margin for HistGradientBoosting).
* Linear and logistic models: coefficient x (x - background mean), on the link scale.
* Soft-voting ensembles: each member's contributions, on the probability (or value) scale,
  weighted by the member's weight. A member explained on its margin is converted first:
  the gap between its base probability and its output probability is shared between the
  columns in proportion to their margin contributions.
* Anything else (stacking, blending, native categorical HistGradientBoosting ...): a
  permutation sampling explainer over the raw columns, on the probability (or value)
  scale: ``2 x n_columns x n_background`` model rows per explained row (about 1,300 for
  13 columns and 50 background rows). It is exactly additive by construction.

Classifiers explain the predicted class. Every row also carries the same reasons on the
natural scale (probability points, or the target's units) for narratives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from narrate.core.explain.attribution import Attribution, NotNative, attribute
from narrate.core.explain.lineage import Chain, FeatureMap, flatten, prepared_lineage
from narrate.core.explain.lineage import transform_chain as _transform

__all__ = ["Explainer", "RowExplanation"]

#: Background rows the sampling explainer averages over.
SAMPLING_BACKGROUND = 50
_TINY = 1e-12


@dataclass
class RowExplanation:
    """One row's reasons.

    Attributes:
        prediction: The model's answer (class label or value).
        explained_class: The class whose score is explained (None for regression).
        output: The explained value on ``scale``.
        base_value: The model's value on ``scale`` before any column is known.
        contributions: Raw column -> signed contribution; they sum to output - base.
        parts: Raw column -> prepared feature -> contribution (one-hot dummies, date
            parts, missing indicators, recipe-derived columns).
        natural: The same on the probability (classifiers) or value scale:
            ``{"scale", "output", "base_value", "contributions"}``.
    """

    prediction: Any
    explained_class: str | None
    output: float
    base_value: float
    contributions: dict[str, float]
    parts: dict[str, dict[str, float]]
    natural: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Member:
    chain: Chain
    features: FeatureMap
    background: Any
    weight: float
    cache: dict[str, Any]


def _inverse_link(att: Attribution, row: int, k: int) -> float:
    base = att.base[row]
    if att.scale == "log_odds":
        return float(1.0 / (1.0 + np.exp(-base[k])))
    if att.scale == "margin":
        shifted = np.exp(base - base.max())
        return float(shifted[k] / shifted.sum())
    if att.scale == "log1p_value":
        return float(np.expm1(base[k]))
    return float(base[k])


def _scores(att: Attribution) -> np.ndarray:
    """The estimator's probabilities ``(rows, classes)`` or values ``(rows,)`` from its
    attribution (exact: the output is the sum of its parts)."""
    from narrate.core.serving import expm1_capped

    out = att.base + att.values.sum(axis=2)
    if att.scale == "log_odds":
        positive = 1.0 / (1.0 + np.exp(-out[:, 1]))
        return np.column_stack([1.0 - positive, positive])
    if att.scale == "margin":
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
    if att.scale == "log1p_value":
        return np.asarray(expm1_capped(out[:, 0]), dtype=float)
    if att.scale == "value":
        return np.asarray(out[:, 0])
    return np.asarray(out)


def _threshold(model: Any, labels: list[Any]) -> tuple[float, int] | None:
    """The tuned threshold of a binary classifier and its positive class's index."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    while model is not None:
        if isinstance(model, FixedThresholdClassifier):
            threshold = 0.5 if model.threshold == "auto" else float(model.threshold)
            positive = model.pos_label if model.pos_label is not None else labels[-1]
            return threshold, [str(v) for v in labels].index(str(positive))
        if isinstance(model, FrozenEstimator):
            model = model.estimator
        elif isinstance(getattr(model, "steps", None), list):
            model = model.steps[-1][1]
        else:
            return None
    return None


def _to_natural(values: np.ndarray, scale_base: float, natural_out: float) -> np.ndarray:
    """Share the natural-scale gap in proportion to margin contributions."""
    total = float(values.sum())
    if abs(total) < _TINY:
        return np.zeros_like(values)
    return values * ((natural_out - scale_base) / total)


def _parts(values: np.ndarray, fmap: FeatureMap) -> dict[str, dict[str, float]]:
    parts: dict[str, dict[str, float]] = {}
    rows, cols = np.nonzero(fmap.weights)
    for f, r in zip(rows, cols, strict=True):
        share = float(values[f] * fmap.weights[f, r])
        parts.setdefault(fmap.raw_columns[r], {})[fmap.features[f]] = share
    return parts


class Explainer:
    """Explain a fitted model's predictions in raw input columns.

    Args:
        model: The fitted model taking raw rows (``predict``; ``predict_proba`` and
            ``classes_`` for classifiers).
        background: Raw rows with every input column (a few hundred are plenty): the
            reference a contribution is measured against and the sample a recipe's
            lineage is measured on.
        seed: Random state of the background sample and the sampling explainer.
    """

    def __init__(self, model: Any, background: pd.DataFrame, *, seed: int = 0) -> None:
        self.model = model
        self.columns = [str(c) for c in background.columns]
        self.background = background.reset_index(drop=True)
        self.seed = seed
        labels = list(getattr(model, "classes_", []))
        self.labels = [v.item() if isinstance(v, np.generic) else v for v in labels]
        self.classes = [str(c) for c in labels] or None
        self.threshold = _threshold(model, labels) if self.classes else None
        self.members, self.method = self._plan()

    def _plan(self) -> tuple[list[_Member], str]:
        from sklearn.ensemble import VotingClassifier, VotingRegressor

        chain = flatten(self.model)
        estimator = chain.estimator
        pairs: list[tuple[Chain, float]] = []
        if isinstance(estimator, VotingClassifier | VotingRegressor):
            if isinstance(estimator, VotingClassifier) and estimator.voting != "soft":
                return [], "sampling"
            weights = estimator.weights or [1.0] * len(estimator.estimators_)
            total = float(sum(weights))
            for member, weight in zip(estimator.estimators_, weights, strict=True):
                inner = flatten(member)
                pairs.append((Chain(chain.steps + inner.steps, inner.estimator), weight / total))
        else:
            pairs.append((chain, 1.0))
        members: list[_Member] = []
        probe = self.background.head(2)
        for member_chain, weight in pairs:
            fmap, prepared = prepared_lineage(member_chain, self.background)
            member = _Member(member_chain, fmap, prepared, weight, {})
            try:
                attribute(
                    member_chain.estimator,
                    _transform(member_chain.steps, probe),
                    prepared,
                    member.cache,
                )
            except NotNative:
                return [], "sampling"
            members.append(member)
        return members, ("weighted_members" if len(members) > 1 else "native")

    def conform(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows in the background's column order and dtypes (where they hold no value the
        dtype can't: a missing value stays missing).

        Args:
            rows: Raw rows with every input column.

        Returns:
            A new frame with a fresh 0..n-1 index.
        """
        out = {}
        rows = rows.reset_index(drop=True)
        for column in self.columns:
            values, dtype = rows[column], self.background[column].dtype
            # A missing value would become False or 0 in a bool or int column; keep it.
            holds_missing = bool(values.isna().any()) and dtype.kind in "biu"
            if values.dtype == dtype or holds_missing:
                out[column] = values
                continue
            try:
                out[column] = values.astype(dtype)
            except (TypeError, ValueError):
                out[column] = values
        return pd.DataFrame(out, index=pd.RangeIndex(len(rows)))

    def _targets(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[int]]:
        """The model's predictions and the explained class index per row."""
        predictions = np.asarray(self.model.predict(frame))
        if self.classes is None:
            return predictions, [0] * len(frame)
        return predictions, [self.classes.index(str(p)) for p in predictions]

    def explain(self, rows: pd.DataFrame) -> tuple[str, list[RowExplanation]]:
        """Explain each row.

        Args:
            rows: Raw rows with every input column.

        Returns:
            The scale of ``output``/``base_value`` and one explanation per row.
        """
        frame = self.conform(rows)
        if self.method == "sampling":
            predictions, ks = self._targets(frame)
            return self._sampled(frame, predictions, ks)
        if self.method == "native":
            return self._single(frame)
        return self._weighted(frame)

    def _attribution(self, member: _Member, frame: pd.DataFrame) -> Attribution:
        prepared = _transform(member.chain.steps, frame)
        return attribute(member.chain.estimator, prepared, member.background, member.cache)

    def _decide(self, scores: np.ndarray) -> tuple[list[Any], list[int]]:
        """Predictions and explained class indices from probabilities (or values), as the
        model decides: its tuned threshold for binary classifiers, else the likeliest."""
        if self.classes is None:
            return [float(v) for v in scores], [0] * len(scores)
        if self.threshold is not None and len(self.classes) == 2:
            threshold, positive = self.threshold
            chosen = scores[:, positive] >= threshold
            ks = [positive if c else 1 - positive for c in chosen]
        else:
            ks = [int(k) for k in np.argmax(scores, axis=1)]
        return [self.labels[k] for k in ks], ks

    def _single(self, frame: pd.DataFrame) -> tuple[str, list[RowExplanation]]:
        member = self.members[0]
        att = self._attribution(member, frame)
        scores = _scores(att)
        predictions, ks = self._decide(scores)
        natural_scale = "value" if self.classes is None else "probability"
        out = []
        for i, k in enumerate(ks):
            k_att = k if att.values.shape[1] > 1 else 0
            values = att.values[i, k_att]
            base = float(att.base[i, k_att])
            natural_base = _inverse_link(att, i, k_att)
            natural_out = float(scores[i] if scores.ndim == 1 else scores[i, k])
            natural_values = (
                values
                if att.scale in ("probability", "value")
                else _to_natural(values, natural_base, natural_out)
            )
            out.append(
                self._row(
                    predictions[i],
                    k,
                    values,
                    base,
                    member.features,
                    natural_values,
                    natural_base,
                    natural_scale,
                )
            )
        return att.scale, out

    def _row(
        self,
        prediction: Any,
        k: int,
        values: np.ndarray,
        base: float,
        fmap: FeatureMap,
        natural_values: np.ndarray,
        natural_base: float,
        natural_scale: str,
    ) -> RowExplanation:
        raw = fmap.to_raw(values)
        natural_raw = fmap.to_raw(natural_values)
        return RowExplanation(
            prediction=prediction.item() if isinstance(prediction, np.generic) else prediction,
            explained_class=None if self.classes is None else self.classes[k],
            output=base + float(values.sum()),
            base_value=base,
            contributions={c: float(v) for c, v in zip(fmap.raw_columns, raw, strict=True)},
            parts=_parts(values, fmap),
            natural={
                "scale": natural_scale,
                "output": natural_base + float(natural_values.sum()),
                "base_value": natural_base,
                "contributions": {
                    c: float(v) for c, v in zip(fmap.raw_columns, natural_raw, strict=True)
                },
            },
        )

    def _weighted(self, frame: pd.DataFrame) -> tuple[str, list[RowExplanation]]:
        scale = "value" if self.classes is None else "probability"
        n = len(frame)
        attributions = [self._attribution(member, frame) for member in self.members]
        member_scores = [_scores(att) for att in attributions]
        scores = sum(m.weight * s for m, s in zip(self.members, member_scores, strict=True))
        predictions, ks = self._decide(np.asarray(scores))
        bases = np.zeros(n)
        raws: list[dict[str, float]] = [{} for _ in range(n)]
        parts: list[dict[str, dict[str, float]]] = [{} for _ in range(n)]
        for member, att, own in zip(self.members, attributions, member_scores, strict=True):
            fmap = member.features
            for i, k in enumerate(ks):
                k_att = k if att.values.shape[1] > 1 else 0
                member_base = _inverse_link(att, i, k_att)
                row = att.values[i, k_att]
                natural_out = float(own[i] if own.ndim == 1 else own[i, k])
                if att.scale not in ("probability", "value"):
                    row = _to_natural(row, member_base, natural_out)
                bases[i] += member.weight * member_base
                weighted = row * member.weight
                for column, v in zip(fmap.raw_columns, fmap.to_raw(weighted), strict=True):
                    raws[i][column] = raws[i].get(column, 0.0) + float(v)
                for column, found in _parts(weighted, fmap).items():
                    into = parts[i].setdefault(column, {})
                    for feature, v in found.items():
                        into[feature] = into.get(feature, 0.0) + v
        out = []
        for i, k in enumerate(ks):
            output = float(bases[i] + sum(raws[i].values()))
            out.append(
                RowExplanation(
                    prediction=predictions[i],
                    explained_class=None if self.classes is None else self.classes[k],
                    output=output,
                    base_value=float(bases[i]),
                    contributions=dict(raws[i]),
                    parts=parts[i],
                    natural={
                        "scale": scale,
                        "output": output,
                        "base_value": float(bases[i]),
                        "contributions": dict(raws[i]),
                    },
                )
            )
        return scale, out

    def _sampled(
        self, frame: pd.DataFrame, predictions: np.ndarray, ks: list[int]
    ) -> tuple[str, list[RowExplanation]]:
        from narrate.core.explain.sampling import permutation_contributions

        scale = "value" if self.classes is None else "probability"
        background = self.background.sample(
            n=min(SAMPLING_BACKGROUND, len(self.background)), random_state=self.seed
        )
        background = self.conform(background)
        out = []
        for i, k in enumerate(ks):
            values, base = permutation_contributions(
                self._score_fn(k), frame.iloc[[i]], background, seed=self.seed
            )
            contributions = {c: float(v) for c, v in zip(self.columns, values, strict=True)}
            natural = {
                "scale": scale,
                "output": base + float(values.sum()),
                "base_value": base,
                "contributions": dict(contributions),
            }
            prediction = predictions[i]
            out.append(
                RowExplanation(
                    prediction=prediction.item()
                    if isinstance(prediction, np.generic)
                    else prediction,
                    explained_class=None if self.classes is None else self.classes[k],
                    output=base + float(values.sum()),
                    base_value=base,
                    contributions=contributions,
                    parts={c: {c: v} for c, v in contributions.items()},
                    natural=natural,
                )
            )
        return scale, out

    def _score_fn(self, k: int) -> Any:
        def score(frame: pd.DataFrame) -> np.ndarray:
            if self.classes is None:
                return np.asarray(self.model.predict(frame), dtype=float)
            return np.asarray(self.model.predict_proba(frame), dtype=float)[:, k]

        return score
