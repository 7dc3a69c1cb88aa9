"""What-if and dependence: how a model version's answer moves when inputs change.

Both score with the version's serving predictor (the same one that answers predict, kept
warm by :func:`~narrate.services.predict.runtime_cache`) and read input through the same
contract as predict (:func:`~narrate.core.signature.check_rows`).

* What-if: one row and up to ``MAX_VARIANTS`` variants of it (each a few changed
  values), scored in one call; each variant's change of the explained output against the
  row as sent.
* Dependence: partial dependence and ICE curves of one column
  (:mod:`narrate.core.explain.dependence`) on a sample of the raw rows the version was
  trained on (the root upload's, before any recipe), drawn with the version's seed.

The explained output is the probability of the positive class (binary), of a chosen
class (multiclass; what-if explains the class predicted for the row as sent) or the
predicted value (regression).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from narrate.bootstrap import Container
from narrate.core.explain.dependence import dependence
from narrate.core.signature import CheckedRows, check_rows
from narrate.errors import InvalidInput
from narrate.services.explain import _root_frame
from narrate.services.predict import DeploymentRuntime, Predictor, runtime_cache
from narrate.storage.sql.visibility import Owner, visible_model_version

__all__ = [
    "DEPENDENCE_GRID",
    "DEPENDENCE_ICE",
    "DEPENDENCE_ROWS",
    "MAX_VARIANTS",
    "sample_dependence",
    "score_variants",
    "version_dependence",
    "what_if_deployment",
    "what_if_version",
]

#: Most variants of a row one what-if request scores.
MAX_VARIANTS = 100
#: (default, least, most) grid values of a dependence curve.
DEPENDENCE_GRID = (20, 2, 100)
#: (default, most) rows a dependence curve is averaged over.
DEPENDENCE_ROWS = (500, 5_000)
#: (default, most) ICE curves returned.
DEPENDENCE_ICE = (20, 200)
_KINDS = {
    "number": "numeric",
    "integer": "numeric",
    "category": "categorical",
    "boolean": "categorical",
    "text": "categorical",
}


# --- what the output is ------------------------------------------------------------------


def _class_index(predictor: Predictor, wanted: str | None) -> int | None:
    """The explained class's index in the predictor's probabilities (None: regression)."""
    if predictor.task == "regression":
        if wanted is not None:
            raise InvalidInput(
                "'class' is for classifiers; this model predicts a value.",
                code="invalid_class",
                details={"parameter": "class", "class": wanted},
            )
        return None
    classes = [str(c) for c in predictor.classes or []]
    if wanted is None:
        if predictor.task == "binary":
            return classes.index(str(predictor.positive_class or classes[1]))
        return 0
    if str(wanted) not in classes:
        raise InvalidInput(
            f"The model has no class {str(wanted)!r}; it predicts {', '.join(map(repr, classes))}.",
            code="invalid_class",
            details={"parameter": "class", "class": wanted, "allowed": classes},
        )
    return classes.index(str(wanted))


def _target(predictor: Predictor, k: int | None) -> str:
    if k is None:
        return "predicted value"
    return f"probability of class '{(predictor.classes or [])[k]}'"


def _signature_names(predictor: Predictor) -> list[str]:
    return [str(c["name"]) for c in predictor.signature["columns"]]


# --- what-if -----------------------------------------------------------------------------


def _check_variants(predictor: Predictor, row: Any, variants: Any) -> None:
    if not isinstance(row, dict):
        raise InvalidInput(
            "Send 'row' as an object of column values: {\"column\": value, ...}.",
            code="wrong_type",
            details={"parameter": "row"},
        )
    if not isinstance(variants, list) or not 1 <= len(variants) <= MAX_VARIANTS:
        n = len(variants) if isinstance(variants, list) else None
        raise InvalidInput(
            f"Send 'variants' as a list of 1 to {MAX_VARIANTS} objects"
            + (f" (got {n:,})." if n is not None else "."),
            code="invalid_variants",
            details={"parameter": "variants", "limit": MAX_VARIANTS},
        )
    names = set(_signature_names(predictor))
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict) or not variant:
            raise InvalidInput(
                f"variants[{i}] must be an object of the values to change, "
                '{"column": value, ...}, with at least one.',
                code="invalid_variants",
                details={"parameter": "variants", "variant": i},
            )
        unknown = sorted(str(k) for k in variant if k not in names)
        if unknown:
            raise InvalidInput(
                f"variants[{i}] changes {unknown[0]!r}, which the model does not take.",
                code="unknown_column",
                hint="Change only the model's input columns (see the version's signature).",
                details={"variant": i, "column": unknown[0]},
            )


def _checked(predictor: Predictor, rows: list[dict[str, Any]]) -> CheckedRows:
    """Check the row and its variants, naming ``row`` or ``variants[i]`` on a refusal."""
    try:
        return check_rows(predictor.signature, rows)
    except InvalidInput as exc:
        at = exc.details.get("row")
        if not isinstance(at, int):
            raise
        where = "row" if at == 0 else f"variants[{at - 1}]"
        details = {k: v for k, v in exc.details.items() if k != "row"}
        details["variant" if at else "parameter"] = at - 1 if at else "row"
        raise InvalidInput(
            exc.message.replace(f"rows[{at}]", where),
            code=exc.code,
            hint=exc.hint,
            details=details,
        ) from exc


def score_variants(predictor: Predictor, row: Any, variants: Any) -> dict[str, Any]:
    """Score a row and its variants in one pass with a loaded predictor.

    Returns and raises as :func:`what_if_version` (without the visibility check).
    """
    _check_variants(predictor, row, variants)
    rows = [row, *({**row, **v} for v in variants)]
    checked = _checked(predictor, rows)
    labels, proba = predictor.score(checked.columns)
    if proba is None:
        k, outputs = None, np.asarray(labels, dtype=float)
    else:
        classes = [str(c) for c in predictor.classes or []]
        k = (
            _class_index(predictor, None)
            if predictor.task == "binary"
            else classes.index(str(labels[0]))
        )
        outputs = proba[:, k]
    names = [str(c) for c in predictor.classes or []]

    def answer(i: int) -> dict[str, Any]:
        out: dict[str, Any] = {"prediction": _plain(labels[i]), "output": float(outputs[i])}
        if proba is not None:
            out["probabilities"] = dict(zip(names, np.round(proba[i], 6).tolist(), strict=True))
        out["flags"] = checked.flags[i]
        return out

    base = answer(0)
    return {
        "model_version_id": predictor.model_version_id,
        "explained_class": None if k is None else names[k],
        "target": _target(predictor, k),
        "base": base,
        "variants": [
            {"changes": v, **answer(i), "delta": float(outputs[i] - outputs[0])}
            for i, v in enumerate(variants, start=1)
        ],
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def what_if_version(
    container: Container, owner: Owner, mv_id: str, row: Any, variants: Any
) -> dict[str, Any]:
    """Score a row and variants of it with a model version.

    Args:
        container: The services.
        owner: The caller.
        mv_id: The model version.
        row: One object of raw column values, as predict takes it.
        variants: 1 to ``MAX_VARIANTS`` objects of values to change in ``row``.

    Returns:
        ``{"model_version_id", "explained_class", "target", "base": {"prediction",
        "probabilities"?, "output", "flags"}, "variants": [{"changes", "prediction",
        "probabilities"?, "output", "flags", "delta"}]}``; ``delta`` is the variant's
        output minus the base's.

    Raises:
        NotFound: No such model version for this caller.
        InvalidInput: Too few or too many variants, a variant changes a column the model
            does not take, or the row or a variant breaks the input contract (``row`` or
            ``variants[i]`` and the column are named).
    """
    with container.db.session() as s:
        visible_model_version(s, owner, mv_id)
    return score_variants(runtime_cache(container).predictor(mv_id), row, variants)


def what_if_deployment(
    container: Container, runtime: DeploymentRuntime, row: Any, variants: Any
) -> dict[str, Any]:
    """As :func:`what_if_version`, with the version a deployment serves (its primary arm);
    the answer adds ``deployment`` and ``revision``. Nothing is written to the prediction
    log: a what-if is a question about the model, not a prediction."""
    del container  # the runtime carries the loaded predictor
    body = score_variants(runtime.primary, row, variants)
    return {"deployment": runtime.name, "revision": runtime.revision, **body}


# --- dependence --------------------------------------------------------------------------


def _kind(predictor: Predictor, column: str, data_columns: list[str]) -> str:
    spec = next((c for c in predictor.signature["columns"] if c["name"] == column), None)
    if spec is None:
        why = (
            "is in the data but the model does not take it"
            if column in data_columns
            else "is not a column of this model"
        )
        raise InvalidInput(
            f"{column!r} {why}.",
            code="unknown_column",
            hint=f"Pick one of: {', '.join(_signature_names(predictor))}.",
            details={"parameter": "column", "column": column},
        )
    kind = _KINDS.get(str(spec["type"]))
    if kind is None:
        raise InvalidInput(
            f"{column!r} is a {spec['type']} column; dependence curves are drawn for numbers "
            "and categories.",
            code="unsupported_column",
            details={"parameter": "column", "column": column, "type": spec["type"]},
        )
    return kind


def _bounded(name: str, value: Any, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"'{name}' must be a whole number from {low:,} to {high:,} (got {value!r}).",
            code="invalid_parameter",
            details={"parameter": name, "min": low, "max": high},
        )
    return value


def _sample_rows(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """Raw rows as JSON would carry them (None for missing, ISO text for dates)."""
    part = frame[names]
    out = part.astype(object).where(part.notna(), None)
    for name in names:
        if pd.api.types.is_datetime64_any_dtype(part[name].dtype):
            out[name] = [None if pd.isna(t) else t.isoformat() for t in part[name]]
    records: list[dict[str, Any]] = out.to_dict(orient="records")
    return records


def version_dependence(
    container: Container,
    owner: Owner,
    mv_id: str,
    column: str,
    *,
    grid_points: int | None = None,
    rows: int | None = None,
    ice_rows: int | None = None,
    explained_class: str | None = None,
) -> dict[str, Any]:
    """Partial dependence and ICE curves of one column of a model version.

    Args:
        container: The services.
        owner: The caller.
        mv_id: The model version.
        column: A raw input column the model takes (a number or a category).
        grid_points: Most grid values (default 20, 2 to 100).
        rows: Sample size (default 500, at most 5,000).
        ice_rows: ICE curves returned (default 20, at most 200; at most ``rows``).
        explained_class: For classifiers, whose probability (default the positive class
            of a binary model, the first class of a multiclass one).

    Returns:
        ``{"model_version_id", "column", "kind", "target", "explained_class", "grid",
        "average", "ice": [{"row", "values"}], "distribution", "n_rows", "rows"}``.

    Raises:
        NotFound: No such model version for this caller.
        InvalidInput: An unknown column, one the model does not take, a date or a column
            without values, a parameter out of range or an unknown class.
        InvalidState: The rows the version was trained on are gone.
    """
    grid_n = _bounded("grid_points", grid_points, *DEPENDENCE_GRID)
    n_rows = _bounded("rows", rows, DEPENDENCE_ROWS[0], 1, DEPENDENCE_ROWS[1])
    n_ice = _bounded("ice_rows", ice_rows, DEPENDENCE_ICE[0], 0, DEPENDENCE_ICE[1])
    with container.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        dataset_version_id, seed = mv.dataset_version_id, mv.seed or 0
    predictor = runtime_cache(container).predictor(mv_id)
    frame = _root_frame(container, dataset_version_id)
    _kind(predictor, column, [str(c) for c in frame.columns])  # before any sampling
    sample = frame.sample(n=min(n_rows, len(frame)), random_state=seed)
    body = sample_dependence(
        predictor,
        sample,
        column,
        grid_points=grid_n,
        ice_rows=n_ice,
        explained_class=explained_class,
    )
    return {
        "model_version_id": mv_id,
        **body,
        "rows": f"{len(sample):,} rows sampled (seed {seed}) from the raw rows the model "
        "was trained on (the upload before any recipe); ICE 'row' is the row's position "
        "there",
    }


def sample_dependence(
    predictor: Predictor,
    sample: pd.DataFrame,
    column: str,
    *,
    grid_points: int,
    ice_rows: int,
    explained_class: str | None = None,
) -> dict[str, Any]:
    """Partial dependence and ICE curves of one column on given raw rows, in one pass.

    Args:
        predictor: The loaded model version.
        sample: Raw rows with the model's columns (their index names the ICE rows).
        column: The column to vary.
        grid_points: Most grid values.
        ice_rows: ICE curves returned.
        explained_class: As :func:`version_dependence`.

    Returns:
        ``{"column", "kind", "target", "explained_class", "grid", "average", "ice",
        "distribution", "n_rows"}``.

    Raises:
        InvalidInput: As :func:`version_dependence`.
    """
    k = _class_index(predictor, explained_class)
    kind = _kind(predictor, column, [str(c) for c in sample.columns])
    checked = check_rows(predictor.signature, _sample_rows(sample, _signature_names(predictor)))

    def score(columns: dict[str, np.ndarray]) -> np.ndarray:
        labels, proba = predictor.score(columns)
        return np.asarray(labels, dtype=float) if k is None or proba is None else proba[:, k]

    found = dependence(
        checked.columns,
        column,
        kind,
        score,
        grid_points=grid_points,
        ice_rows=ice_rows,
        row_ids=[int(i) for i in sample.index],
    )
    return {
        "column": found.column,
        "kind": found.kind,
        "target": _target(predictor, k),
        "explained_class": None if k is None else str((predictor.classes or [])[k]),
        "grid": found.grid,
        "average": found.average,
        "ice": found.ice,
        "distribution": found.distribution,
        "n_rows": len(sample),
    }
