"""Explaining model versions and deployments: reasons per prediction and importances.

An :class:`~narrate.core.explain.Explainer` needs the version's fitted pipeline and a
background sample of the raw rows it was trained on; both are loaded once per process and
kept for the ``_KEPT`` most recently used versions. Importances are computed on first
request from at most ``IMPORTANCE_ROWS`` labelled rows of the dataset version the model
was trained on (sampled with the version's seed; a few seconds for LightGBM, see
bench/results/explain.json) and stored in the version's ``details["importances"]``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from narrate.bootstrap import Container
from narrate.core.explain import Explainer
from narrate.core.explain.importance import permutation_importances
from narrate.core.explain.narrative import describe_prediction
from narrate.errors import InvalidInput, InvalidState, NotFound
from narrate.services.datasets import load_frame
from narrate.services.predict import DeploymentRuntime, model_signature
from narrate.storage.sql.tables import DatasetVersion, Model, ModelVersion
from narrate.storage.sql.visibility import Owner, visible_model_version

__all__ = [
    "EXPLAIN_ROWS",
    "IMPORTANCE_ROWS",
    "explain_deployment",
    "explain_version",
    "version_importances",
]

#: Most rows one explain request takes.
EXPLAIN_ROWS = 100
#: Most labelled rows permutation importances are computed on.
IMPORTANCE_ROWS = 5_000
#: Permutations of each column for importances.
IMPORTANCE_REPEATS = 3
#: Raw training rows a contribution is measured against.
BACKGROUND_ROWS = 200
_KEPT = 4


@dataclass
class _Loaded:
    explainer: Explainer
    signature: dict[str, Any]
    task: str
    target: str


_lock = threading.Lock()


def _cache(container: Container) -> OrderedDict[str, _Loaded]:
    found = container.extras.get("explainers")
    if found is None:
        found = container.extras["explainers"] = OrderedDict()
    return found  # type: ignore[no-any-return]


def _root_frame(container: Container, dataset_version_id: str) -> pd.DataFrame:
    """The raw rows (the root upload's, before any recipe) a model version trained on."""
    with container.db.session() as s:
        version = s.get(DatasetVersion, dataset_version_id)
        while version is not None and version.parent_version_id:
            parent = s.get(DatasetVersion, version.parent_version_id)
            if parent is None:
                break
            version = parent
        if version is None:
            raise InvalidState(
                "The rows this model was trained on are gone, so it can't be explained "
                "against them.",
                code="training_rows_gone",
                details={"dataset_version_id": dataset_version_id},
            )
        s.expunge(version)
    return load_frame(container, version).to_pandas()


def _loaded(container: Container, mv_id: str) -> _Loaded:
    with _lock:
        cache = _cache(container)
        if mv_id in cache:
            cache.move_to_end(mv_id)
            return cache[mv_id]
    from narrate.services.training import load_pipeline

    with container.db.session() as s:
        mv = s.get(ModelVersion, mv_id)
        model = s.get(Model, mv.model_id) if mv else None
        if mv is None or model is None:
            raise NotFound(f"No model version '{mv_id}'.", details={"model_version_id": mv_id})
        s.expunge(mv)
        task, target = model.task, model.target
    signature = model_signature(container, mv)
    columns = [str(c["name"]) for c in signature["columns"]]
    frame = _root_frame(container, mv.dataset_version_id)
    background = frame[columns].sample(
        n=min(BACKGROUND_ROWS, len(frame)), random_state=mv.seed or 0
    )
    explainer = Explainer(load_pipeline(container, mv), background, seed=mv.seed or 0)
    loaded = _Loaded(explainer, signature, task, target)
    with _lock:
        cache = _cache(container)
        cache[mv_id] = loaded
        while len(cache) > _KEPT:
            cache.popitem(last=False)
    return loaded


def _check_count(rows: Any) -> None:
    if not isinstance(rows, list) or not 1 <= len(rows) <= EXPLAIN_ROWS:
        n = len(rows) if isinstance(rows, list) else None
        raise InvalidInput(
            f"Send 'rows' as a list of 1 to {EXPLAIN_ROWS} objects"
            + (f" (got {n:,})." if n is not None else "."),
            code="invalid_rows",
            hint="Explain more rows in several requests.",
            details={"parameter": "rows", "limit": EXPLAIN_ROWS},
        )


def _explain(container: Container, mv_id: str, rows: Any) -> dict[str, Any]:
    from narrate.core.signature import check_rows

    _check_count(rows)
    loaded = _loaded(container, mv_id)
    checked = check_rows(loaded.signature, rows)
    scale, explained = loaded.explainer.explain(checked.frame)
    target = loaded.target if loaded.task == "regression" else None
    out = []
    for row, e in zip(rows, explained, strict=True):
        out.append(
            {
                "prediction": e.prediction,
                "explained_class": e.explained_class,
                "output": e.output,
                "base_value": e.base_value,
                "contributions": e.contributions,
                "parts": e.parts,
                "natural": e.natural,
                "narrative": describe_prediction(e, row, target=target),
            }
        )
    return {
        "model_version_id": mv_id,
        "scale": scale,
        "method": loaded.explainer.method,
        "explanations": out,
    }


def explain_version(container: Container, owner: Owner, mv_id: str, rows: Any) -> dict[str, Any]:
    """Explain raw rows with a model version.

    Args:
        container: The services.
        owner: The caller.
        mv_id: The model version.
        rows: 1 to ``EXPLAIN_ROWS`` objects of raw column values.

    Returns:
        ``{"model_version_id", "scale", "method", "explanations": [...]}``.

    Raises:
        NotFound: No such model version for this caller.
        InvalidInput: Too few or too many rows, or a row breaks the input signature (the
            row index and column are named).
        InvalidState: The rows the version was trained on are gone.
    """
    with container.db.session() as s:
        visible_model_version(s, owner, mv_id)
    return _explain(container, mv_id, rows)


def explain_deployment(
    container: Container, runtime: DeploymentRuntime, rows: Any
) -> dict[str, Any]:
    """Explain raw rows with the version a deployment serves (its primary arm).

    Args:
        container: The services.
        runtime: The deployment, as predict resolved it for the caller.
        rows: 1 to ``EXPLAIN_ROWS`` objects of raw column values.

    Returns:
        As :func:`explain_version`, plus ``deployment`` and ``revision``.

    Raises:
        InvalidInput: As :func:`explain_version`.
    """
    body = _explain(container, runtime.primary.model_version_id, rows)
    return {"deployment": runtime.name, "revision": runtime.revision, **body}


def version_importances(container: Container, owner: Owner, mv_id: str) -> dict[str, Any]:
    """Permutation importances of a model version in raw columns, computed once and stored.

    Args:
        container: The services.
        owner: The caller.
        mv_id: The model version.

    Returns:
        ``{"columns": [{"column", "importance", "std", "mean_abs_contribution", "parts"}],
        "method", "score", "baseline_score", "n_rows", "repeats", "contribution_scale",
        "rows"}``.

    Raises:
        NotFound: No such model version for this caller.
        InvalidState: The rows the version was trained on are gone or hold no target.
    """
    with container.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        stored = (mv.details or {}).get("importances")
        dataset_version_id, seed = mv.dataset_version_id, mv.seed or 0
    if stored:
        return dict(stored)
    loaded = _loaded(container, mv_id)
    frame = _root_frame(container, dataset_version_id)
    if loaded.target not in frame.columns or frame[loaded.target].notna().sum() < 10:
        raise InvalidState(
            f"The rows this model was trained on have no values of '{loaded.target}' left.",
            code="training_rows_gone",
            details={"dataset_version_id": dataset_version_id},
        )
    labelled = frame[frame[loaded.target].notna()]
    sample = labelled.sample(n=min(IMPORTANCE_ROWS, len(labelled)), random_state=seed)
    result = permutation_importances(
        loaded.explainer.model,
        loaded.explainer.conform(sample[loaded.explainer.columns]),
        sample[loaded.target].reset_index(drop=True),
        loaded.task,
        repeats=IMPORTANCE_REPEATS,
        seed=seed,
        explainer=loaded.explainer,
    )
    body = {
        **result.to_dict(),
        "rows": f"up to {IMPORTANCE_ROWS:,} labelled rows sampled from the dataset version "
        "the model was trained on (training rows may be among them)",
    }
    with container.db.session() as s:
        row = s.get(ModelVersion, mv_id)
        if row is not None:
            row.details = {**(row.details or {}), "importances": body}
    return body
