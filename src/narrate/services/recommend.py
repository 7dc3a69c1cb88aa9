"""The assistant's recommendations for a dataset version and for a trained model.

Rules live in :mod:`narrate.core.recommend`; this module finds what they read (the
stored profile, the holdout evaluation, the training summary, stored importances) for a
caller who may see the record.
"""

from __future__ import annotations

import json
from typing import Any

from narrate.bootstrap import Container
from narrate.core.recommend import recommend_for_dataset, recommend_for_model
from narrate.errors import InvalidInput, NotFound
from narrate.services.datasets import Owner, cached_frame, get_version, profile_bytes
from narrate.services.models import get_current_evaluation
from narrate.services.profiles import build_profile
from narrate.storage.sql.visibility import visible_dataset, visible_model_version

__all__ = ["dataset_recommendations", "model_recommendations"]


def dataset_recommendations(
    container: Container,
    owner: Owner,
    dataset_id: str,
    *,
    version_id: str | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """Recommendations for a dataset version (default: the current one).

    The stored profile is used as it is when it was built for the same target (the
    dataset's); another target needs the target summary and correlations for that column,
    so the version is profiled again for it (nothing is stored).

    Args:
        container: The services.
        owner: The caller.
        dataset_id: The dataset.
        version_id: One of its versions; the current one when None.
        target: The column to predict; the dataset's target when None.

    Returns:
        ``{"dataset_id", "version_id", "target", "items"}``.

    Raises:
        NotFound: No such dataset or version for this caller, or the version belongs to
            another dataset.
        InvalidInput: ``target`` is not a column of the version (``unknown_column``).
    """
    with container.db.session() as s:
        dataset = visible_dataset(s, owner, dataset_id)
        name, chosen, current = dataset.name, target or dataset.target, dataset.current_version_id
    version = get_version(container, owner, version_id or current or "")
    if version.dataset_id != dataset_id:
        raise NotFound(
            f"Version '{version.id}' does not belong to dataset '{dataset_id}'.",
            details={"parameter": "version_id", "version_id": version.id},
        )
    columns = [str(c["name"]) for c in version.columns]
    if target is not None and target not in columns:
        raise InvalidInput(
            f"There is no column named '{target}' in version {version.number} to use as "
            "the target.",
            code="unknown_column",
            hint="Pick one of: " + ", ".join(columns[:30]),
            details={"parameter": "target", "column": target},
        )
    if chosen not in columns:
        chosen = None
    profile: dict[str, Any] = json.loads(profile_bytes(container, version))
    if (profile.get("target") or {}).get("column") != chosen:
        kinds = {str(c["name"]): c["kind"] for c in version.columns}
        profile = build_profile(cached_frame(container, version), kinds, name=name, target=chosen)
    return {
        "dataset_id": dataset_id,
        "version_id": version.id,
        "target": chosen,
        "items": recommend_for_dataset(profile),
    }


def model_recommendations(container: Container, owner: Owner, model_id: str) -> dict[str, Any]:
    """Recommendations for a model's current version, from its holdout evaluation.

    Importances are used when they were computed (GET .../importances stores them); the
    target's distribution comes from the training version's profile while the caller may
    still see that version.

    Returns:
        ``{"model_id", "model_version_id", "items"}``.

    Raises:
        NotFound: No such model for this caller, or it has no evaluated version yet.
    """
    evaluation = get_current_evaluation(container, owner, model_id)
    mv_id = str(evaluation["model_version_id"])
    with container.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        details, dataset_version_id = dict(mv.details or {}), mv.dataset_version_id
        summary = {**details, "config": dict(mv.config or {})}
    return {
        "model_id": model_id,
        "model_version_id": mv_id,
        "items": recommend_for_model(
            summary,
            evaluation,
            importances=details.get("importances"),
            target_profile=_target_profile(container, owner, dataset_version_id, evaluation),
        ),
    }


def _target_profile(
    container: Container, owner: Owner, dataset_version_id: str, evaluation: dict[str, Any]
) -> dict[str, Any] | None:
    """The target column's profile in the training version, if the caller still sees it."""
    try:
        version = get_version(container, owner, dataset_version_id)
        profile = json.loads(profile_bytes(container, version))
    except NotFound:
        return None
    column = profile.get("columns", {}).get(str(evaluation.get("target")))
    return dict(column) if column else None
