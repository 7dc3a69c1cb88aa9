"""Deployments: named endpoints serving a model version, their revisions, rollback,
model-version stages, shadow and canary versions, and deployment keys.

What a deployment serves is its *state*: the primary model version plus an optional
shadow (gets a copy of the traffic, answer logged, not returned) or canary (gets a share
of the traffic, answer returned and labelled). Every change of state is a numbered
:class:`DeploymentRevision` with who, when and why, written in the same transaction as
the change, so rollback is one transaction that copies the previous revision's state.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrate.bootstrap import Container
from narrate.core.text import check_plain_text
from narrate.errors import Conflict, InvalidInput, InvalidState, NotFound
from narrate.storage.sql.tables import (
    Deployment,
    DeploymentKey,
    DeploymentRevision,
    Model,
    ModelVersion,
    StageChange,
    utcnow,
)
from narrate.storage.sql.visibility import (
    Owner,
    visible_deployment,
    visible_filter,
    visible_model_version,
)

__all__ = [
    "DEPLOYMENT_KEY_PREFIX",
    "STAGES",
    "DeploymentState",
    "KeyGrant",
    "create_deployment",
    "create_key",
    "delete_deployment",
    "deployment_to_dict",
    "get_deployment",
    "list_deployments",
    "list_keys",
    "list_revisions",
    "resolve_key",
    "restore_deployment",
    "revoke_key",
    "rollback",
    "set_stage",
    "stage_history",
    "update_deployment",
]

STAGES = ("none", "staging", "production", "archived")
#: Stages a deployment can follow ("always serve the production version of model X").
FOLLOWABLE = ("staging", "production")
DEPLOYMENT_KEY_PREFIX = "ndk_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_REASON_MAX = 500


@dataclass(frozen=True)
class DeploymentState:
    """What a deployment serves: the primary version and an optional challenger."""

    model_version_id: str
    shadow_model_version_id: str | None = None
    canary_model_version_id: str | None = None
    canary_fraction: float = 0.0


@dataclass(frozen=True)
class KeyGrant:
    """A resolved deployment key: which deployment it may call."""

    key_id: str
    deployment_id: str
    prefix: str


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"'{str(name)[:80]}' is not a usable deployment name: use 1-63 lower-case letters, "
            "digits and dashes, starting with a letter or digit (it becomes part of the URL).",
            code="invalid_name",
            details={"parameter": "name"},
        )
    return name


def _check_reason(reason: str | None) -> str:
    text = check_plain_text(reason or "", parameter="reason")
    if len(text) > _REASON_MAX:
        raise InvalidInput(
            f"The reason is {len(text)} characters long; the limit is {_REASON_MAX}.",
            details={"parameter": "reason", "limit": _REASON_MAX},
        )
    return text


def _version_of(s: Session, owner: Owner, mv_id: str, parameter: str) -> ModelVersion:
    try:
        return visible_model_version(s, owner, mv_id)
    except NotFound as exc:
        exc.details = {**(exc.details or {}), "parameter": parameter}
        raise


def _check_state(s: Session, owner: Owner, deployment: Deployment, state: DeploymentState) -> None:
    """Every version in the state exists for the caller, belongs to the deployment's model
    (the challengers may come from another model of the same task) and is consistent."""
    primary = _version_of(s, owner, state.model_version_id, "model_version_id")
    if primary.model_id != deployment.model_id:
        raise InvalidInput(
            f"Model version '{primary.id}' belongs to another model than this deployment "
            f"serves ('{deployment.model_id}'); create a new deployment for it.",
            code="other_model",
            details={"parameter": "model_version_id", "model_id": primary.model_id},
        )
    model = s.get(Model, deployment.model_id)
    task = model.task if model else ""
    if state.shadow_model_version_id and state.canary_model_version_id:
        raise InvalidInput(
            "A deployment has either a shadow or a canary version, not both.",
            code="shadow_and_canary",
            details={"parameter": "canary_model_version_id"},
        )
    for key in ("shadow_model_version_id", "canary_model_version_id"):
        other_id = getattr(state, key)
        if not other_id:
            continue
        other = _version_of(s, owner, other_id, key)
        other_model = s.get(Model, other.model_id)
        if other_model is None or other_model.task != task:
            raise InvalidInput(
                f"Model version '{other_id}' solves a different task than the deployed model.",
                code="other_task",
                details={"parameter": key},
            )
        if other_id == state.model_version_id:
            raise InvalidInput(
                "The challenger is the version already served.",
                code="same_version",
                details={"parameter": key},
            )
    if state.canary_model_version_id and not 0 < state.canary_fraction < 1:
        raise InvalidInput(
            "Give canary_fraction between 0 and 1 (e.g. 0.1 for a tenth of the traffic).",
            details={"parameter": "canary_fraction"},
        )


def _state(d: Deployment) -> DeploymentState:
    return DeploymentState(
        d.model_version_id,
        d.shadow_model_version_id,
        d.canary_model_version_id,
        d.canary_fraction if d.canary_model_version_id else 0.0,
    )


def _apply(
    s: Session,
    d: Deployment,
    state: DeploymentState,
    *,
    action: str,
    actor_id: str,
    reason: str,
) -> DeploymentRevision:
    """Make ``state`` current and record it as the next revision (same transaction)."""
    previous = d.model_version_id if action != "create" else None
    if action != "create" and state.model_version_id != d.model_version_id:
        d.previous_model_version_id = d.model_version_id
    d.model_version_id = state.model_version_id
    d.shadow_model_version_id = state.shadow_model_version_id
    d.canary_model_version_id = state.canary_model_version_id
    d.canary_fraction = state.canary_fraction
    number = (
        s.scalar(
            select(func.max(DeploymentRevision.number)).where(
                DeploymentRevision.deployment_id == d.id
            )
        )
        or 0
    ) + 1
    d.revision = number
    d.updated_at = utcnow()
    revision = DeploymentRevision(
        deployment_id=d.id,
        number=number,
        action=action,
        model_version_id=state.model_version_id,
        previous_model_version_id=previous,
        shadow_model_version_id=state.shadow_model_version_id,
        canary_model_version_id=state.canary_model_version_id,
        canary_fraction=state.canary_fraction,
        actor_id=actor_id,
        reason=reason,
    )
    s.add(revision)
    return revision


def _locked(s: Session, owner: Owner, name: str) -> Deployment:
    """The deployment, locked for update (PostgreSQL) so concurrent changes serialise."""
    d = visible_deployment(s, owner, name)
    s.refresh(d, with_for_update=True)
    return d


def create_deployment(
    container: Container,
    owner: Owner,
    *,
    name: str,
    model_version_id: str | None,
    model_id: str | None = None,
    follow_stage: str | None = None,
    description: str = "",
    reason: str = "",
    shadow_model_version_id: str | None = None,
    canary_model_version_id: str | None = None,
    canary_fraction: float = 0.0,
) -> dict[str, Any]:
    """Deploy a model version under a name (revision 1).

    With ``follow_stage`` (and ``model_id``) instead of a version, the deployment serves
    the model's version in that stage and moves with it.

    Raises:
        InvalidInput: a bad name, stage or challenger.
        NotFound: a model or version the caller cannot see.
        Conflict: the name is taken (also by an undeployed deployment, until restored).
    """
    name = _check_name(name)
    description = check_plain_text(description, parameter="description")
    reason = _check_reason(reason)
    with container.db.session() as s:
        if follow_stage is not None:
            mv_id = _stage_holder(s, owner, model_id, follow_stage)
            model_version_id = model_version_id or mv_id
            if model_version_id != mv_id:
                raise InvalidInput(
                    f"Version '{model_version_id}' is not the {follow_stage} version of the "
                    "model; give one or the other.",
                    details={"parameter": "model_version_id"},
                )
        if not model_version_id:
            raise InvalidInput(
                "Give the model_version_id to deploy (or model_id and follow_stage).",
                details={"parameter": "model_version_id"},
            )
        mv = _version_of(s, owner, model_version_id, "model_version_id")
        taken = s.scalar(select(Deployment).where(Deployment.name == name))
        if taken is not None:
            visible = owner.is_admin or taken.owner_id == owner.user_id
            hint = (
                f"Restore it (POST /api/v1/deployments/{name}/restore) or pick another name."
                if taken.deleted_at is not None and visible
                else "Pick another name."
            )
            raise Conflict(
                f"The deployment name '{name}' is taken.",
                code="name_taken",
                hint=hint,
                details={"parameter": "name"},
            )
        d = Deployment(
            owner_id=mv.owner_id if owner.is_admin else owner.user_id,
            name=name,
            description=description,
            model_id=mv.model_id,
            model_version_id=mv.id,
            follow_stage=follow_stage,
        )
        state = DeploymentState(
            mv.id,
            shadow_model_version_id or None,
            canary_model_version_id or None,
            canary_fraction if canary_model_version_id else 0.0,
        )
        _check_state(s, owner, d, state)
        s.add(d)
        s.flush()
        _apply(s, d, state, action="create", actor_id=owner.user_id, reason=reason)
        s.flush()
        return deployment_to_dict(s, d)


def _stage_holder(s: Session, owner: Owner, model_id: str | None, stage: str) -> str:
    if stage not in FOLLOWABLE:
        raise InvalidInput(
            f"A deployment can follow the staging or production stage, not '{stage}'.",
            details={"parameter": "follow_stage"},
        )
    if not model_id:
        raise InvalidInput(
            "Give the model_id whose stage the deployment follows.",
            details={"parameter": "model_id"},
        )
    holder = s.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id, ModelVersion.stage == stage)
        .order_by(ModelVersion.number.desc())
    )
    if holder is None:
        raise InvalidState(
            f"Model '{model_id}' has no version in {stage} to deploy.",
            hint="Move a version there first: POST /api/v1/model-versions/{id}/stage.",
            details={"parameter": "follow_stage", "model_id": model_id},
        )
    return visible_model_version(s, owner, holder.id).id


def deployment_to_dict(s: Session, d: Deployment) -> dict[str, Any]:
    """The API view of a deployment (without its revisions and keys)."""
    mv = s.get(ModelVersion, d.model_version_id)
    model = s.get(Model, d.model_id)
    serving = ((mv.details or {}).get("serving") or {}) if mv else {}
    return {
        "deployment_id": d.id,
        "name": d.name,
        "description": d.description,
        "model_id": d.model_id,
        "model_name": model.name if model else None,
        "task": model.task if model else None,
        "model_version_id": d.model_version_id,
        "model_version_number": mv.number if mv else None,
        "previous_model_version_id": d.previous_model_version_id,
        "follow_stage": d.follow_stage,
        "revision": d.revision,
        "shadow_model_version_id": d.shadow_model_version_id,
        "canary_model_version_id": d.canary_model_version_id,
        "canary_fraction": d.canary_fraction,
        "status": "deleted" if d.deleted_at is not None else "active",
        "engine": "serving" if serving.get("available") else "joblib",
        "engine_note": None
        if serving.get("available")
        else (
            "No serving copy ("
            + str(serving.get("reason") or "trained before the serving format existed")
            + "): predictions use the scikit-learn pipeline, which loads and answers slower."
        ),
        "owner_id": d.owner_id,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "url": f"/api/v1/deployments/{d.name}/predict",
        "drift_thresholds": _effective_thresholds(d.drift_thresholds),
    }


def _checked_thresholds(given: dict[str, Any] | None) -> dict[str, list[float]] | None:
    """What a deployment stores: only the signals given, checked (None: the defaults)."""
    from narrate.core.monitor.drift import thresholds_from_dict

    if given is None:
        return None
    try:
        thresholds_from_dict(given)
    except InvalidInput as exc:  # name the field as the caller sent it
        parameter = str(exc.details.get("parameter") or "thresholds")
        exc.details["parameter"] = "drift_" + parameter
        raise
    return {signal: [float(v) for v in given[signal]] for signal in given}


def _effective_thresholds(stored: dict[str, list[float]] | None) -> dict[str, list[float]]:
    """The levels a drift report on this deployment uses when it sets none."""
    from narrate.core.monitor.drift import thresholds_from_dict

    return thresholds_from_dict(stored).to_dict()


def list_deployments(
    container: Container, owner: Owner, *, offset: int = 0, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """The caller's deployments (everyone's for admins), newest first, and the total."""
    with container.db.session() as s:
        q = select(Deployment).where(visible_filter(Deployment, owner))
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(Deployment.created_at.desc()).offset(offset).limit(limit))
        return [deployment_to_dict(s, d) for d in rows], int(total)


def get_deployment(container: Container, owner: Owner, name: str) -> dict[str, Any]:
    """One deployment with its latest revisions.

    Raises:
        NotFound: no such deployment for this caller, or it is undeployed.
    """
    with container.db.session() as s:
        d = visible_deployment(s, owner, name)
        out = deployment_to_dict(s, d)
        out["revisions"] = _revisions(s, d.id, limit=20)
        return out


def _revisions(s: Session, deployment_id: str, *, limit: int, offset: int = 0) -> list[Any]:
    rows = s.scalars(
        select(DeploymentRevision)
        .where(DeploymentRevision.deployment_id == deployment_id)
        .order_by(DeploymentRevision.number.desc())
        .offset(offset)
        .limit(limit)
    )
    return [
        {
            "number": r.number,
            "action": r.action,
            "model_version_id": r.model_version_id,
            "previous_model_version_id": r.previous_model_version_id,
            "shadow_model_version_id": r.shadow_model_version_id,
            "canary_model_version_id": r.canary_model_version_id,
            "canary_fraction": r.canary_fraction,
            "actor_id": r.actor_id,
            "reason": r.reason,
            "at": r.at.isoformat(),
        }
        for r in rows
    ]


def list_revisions(
    container: Container, owner: Owner, name: str, *, offset: int = 0, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """A deployment's revisions, newest first, and how many there are."""
    with container.db.session() as s:
        d = visible_deployment(s, owner, name)
        total = s.scalar(select(func.count()).where(DeploymentRevision.deployment_id == d.id))
        return _revisions(s, d.id, limit=limit, offset=offset), int(total or 0)


_UNSET: Any = object()


def update_deployment(
    container: Container,
    owner: Owner,
    name: str,
    *,
    model_version_id: str | None = None,
    follow_stage: Any = _UNSET,
    shadow_model_version_id: Any = _UNSET,
    canary_model_version_id: Any = _UNSET,
    canary_fraction: float | None = None,
    description: str | None = None,
    drift_thresholds: Any = _UNSET,
    reason: str = "",
) -> dict[str, Any]:
    """Change what a deployment serves (a new revision), its description or its drift
    thresholds (used by its drift reports that set none; ``None`` goes back to the
    defaults).

    Fields left out keep their value; ``None`` for a challenger removes it.

    Raises:
        InvalidInput: an inconsistent state (see :func:`create_deployment`).
        NotFound: the deployment or a version is not visible.
    """
    reason = _check_reason(reason)
    with container.db.session() as s:
        d = _locked(s, owner, name)
        if description is not None:
            d.description = check_plain_text(description, parameter="description")
        if drift_thresholds is not _UNSET:
            d.drift_thresholds = _checked_thresholds(drift_thresholds)
        if follow_stage is not _UNSET:
            if follow_stage is not None:
                holder = _stage_holder(s, owner, d.model_id, follow_stage)
                model_version_id = model_version_id or holder
            d.follow_stage = follow_stage
        current = _state(d)
        shadow = (
            current.shadow_model_version_id
            if shadow_model_version_id is _UNSET
            else shadow_model_version_id
        )
        canary = (
            current.canary_model_version_id
            if canary_model_version_id is _UNSET
            else canary_model_version_id
        )
        fraction = current.canary_fraction if canary_fraction is None else canary_fraction
        state = DeploymentState(
            model_version_id or current.model_version_id,
            shadow or None,
            canary or None,
            fraction if canary else 0.0,
        )
        if state != current:
            _check_state(s, owner, d, state)
            _apply(s, d, state, action="update", actor_id=owner.user_id, reason=reason)
        s.flush()
        out = deployment_to_dict(s, d)
        out["revisions"] = _revisions(s, d.id, limit=20)
        return out


def rollback(container: Container, owner: Owner, name: str, *, reason: str = "") -> dict[str, Any]:
    """Go back to the state of the revision before the current one, as a new revision.

    Raises:
        InvalidState: the deployment has only one revision.
        NotFound: the deployment, or the version it would go back to, is not visible.
    """
    reason = _check_reason(reason)
    with container.db.session() as s:
        d = _locked(s, owner, name)
        previous = s.scalar(
            select(DeploymentRevision).where(
                DeploymentRevision.deployment_id == d.id,
                DeploymentRevision.number == d.revision - 1,
            )
        )
        if previous is None:
            raise InvalidState(
                f"Deployment '{name}' has no earlier revision to roll back to.",
                code="nothing_to_roll_back",
                details={"deployment": name},
            )
        state = DeploymentState(
            previous.model_version_id,
            previous.shadow_model_version_id,
            previous.canary_model_version_id,
            previous.canary_fraction,
        )
        _check_state(s, owner, d, state)
        _apply(
            s,
            d,
            state,
            action="rollback",
            actor_id=owner.user_id,
            reason=reason or f"rolled back to revision {previous.number}",
        )
        # Rolling back pins the version: a followed stage would move it again.
        d.follow_stage = None
        s.flush()
        out = deployment_to_dict(s, d)
        out["revisions"] = _revisions(s, d.id, limit=20)
        return out


def delete_deployment(container: Container, owner: Owner, name: str) -> None:
    """Undeploy (restorable): predict answers 404, keys stop working, the log is kept."""
    with container.db.session() as s:
        _locked(s, owner, name).deleted_at = utcnow()


def restore_deployment(container: Container, owner: Owner, name: str) -> dict[str, Any]:
    """Undo an undeploy: the deployment serves its last state again.

    Raises:
        NotFound: no such deployment, or it is not undeployed.
        InvalidState: the version it served was deleted in the meantime.
    """
    with container.db.session() as s:
        d = visible_deployment(s, owner, name, deleted=True)
        try:
            visible_model_version(s, owner, d.model_version_id)
        except NotFound as exc:
            raise InvalidState(
                f"Deployment '{name}' served model version '{d.model_version_id}', which is "
                "no longer available; deploy another version under a new name.",
                details={"deployment": name},
            ) from exc
        d.deleted_at = None
        s.flush()
        return deployment_to_dict(s, d)


# --- stages -----------------------------------------------------------------------------


def set_stage(
    container: Container,
    owner: Owner,
    mv_id: str,
    stage: str,
    *,
    reason: str = "",
    archive_others: bool = True,
    on_change: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Move a model version to a stage, recording the change.

    Moving a version into staging or production moves the model's other version in that
    stage to archived (unless ``archive_others`` is false). Deployments that follow the
    stage switch to the version as a new revision.

    Args:
        container: Services.
        owner: The caller.
        mv_id: The model version.
        stage: none, staging, production or archived.
        reason: Why (kept in the history).
        archive_others: Archive the version that held the stage before.
        on_change: Called with the name of each deployment that switched.

    Returns:
        The version's id, stage and stage history.

    Raises:
        InvalidInput: an unknown stage.
        NotFound: the version is not visible.
    """
    if stage not in STAGES:
        raise InvalidInput(
            f"Unknown stage '{stage}'; use one of {', '.join(STAGES)}.",
            details={"parameter": "stage"},
        )
    reason = _check_reason(reason)
    switched: list[str] = []
    with container.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        s.refresh(mv, with_for_update=True)
        changes: list[tuple[ModelVersion, str]] = []
        if stage in FOLLOWABLE and archive_others:
            holders = s.scalars(
                select(ModelVersion).where(
                    ModelVersion.model_id == mv.model_id,
                    ModelVersion.stage == stage,
                    ModelVersion.id != mv.id,
                )
            )
            changes += [(other, "archived") for other in holders]
        if mv.stage != stage:
            changes.append((mv, stage))
        for version, to_stage in changes:
            s.add(
                StageChange(
                    model_version_id=version.id,
                    from_stage=version.stage,
                    to_stage=to_stage,
                    actor_id=owner.user_id,
                    reason=reason if version is mv else f"replaced by version {mv.number}",
                )
            )
            version.stage = to_stage
        if stage in FOLLOWABLE:
            followers = s.scalars(
                select(Deployment).where(
                    Deployment.model_id == mv.model_id,
                    Deployment.follow_stage == stage,
                    Deployment.deleted_at.is_(None),
                )
            )
            for d in followers:
                if d.model_version_id == mv.id:
                    continue
                state = DeploymentState(
                    mv.id,
                    d.shadow_model_version_id if d.shadow_model_version_id != mv.id else None,
                    d.canary_model_version_id if d.canary_model_version_id != mv.id else None,
                    d.canary_fraction if d.canary_model_version_id not in (None, mv.id) else 0.0,
                )
                _apply(
                    s,
                    d,
                    state,
                    action="stage",
                    actor_id=owner.user_id,
                    reason=f"follows {stage}: version {mv.number}"
                    + (f" ({reason})" if reason else ""),
                )
                switched.append(d.name)
        s.flush()
        history = _stage_history(s, mv.id)
        out = {
            "model_version_id": mv.id,
            "stage": mv.stage,
            "history": history,
            "switched_deployments": switched,
        }
    if on_change is not None:
        for name in switched:
            on_change(name)
    return out


def _stage_history(s: Session, mv_id: str) -> list[dict[str, Any]]:
    rows = s.scalars(
        select(StageChange)
        .where(StageChange.model_version_id == mv_id)
        .order_by(StageChange.at.desc(), StageChange.id)
    )
    return [
        {
            "from_stage": r.from_stage,
            "to_stage": r.to_stage,
            "actor_id": r.actor_id,
            "reason": r.reason,
            "at": r.at.isoformat(),
        }
        for r in rows
    ]


def stage_history(container: Container, owner: Owner, mv_id: str) -> dict[str, Any]:
    """A model version's stage and every change of it, newest first."""
    with container.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        return {"model_version_id": mv.id, "stage": mv.stage, "history": _stage_history(s, mv.id)}


def deployments_serving(s: Session, model_id: str) -> list[str]:
    """Names of active deployments that serve any version of a model."""
    rows = s.scalars(
        select(Deployment.name).where(
            Deployment.model_id == model_id, Deployment.deleted_at.is_(None)
        )
    )
    return list(rows)


# --- keys ---------------------------------------------------------------------------------


def _key_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(container: Container, owner: Owner, name: str, key_name: str) -> dict[str, Any]:
    """A new key that can only call this deployment's predict and batch routes.

    The key itself is returned once; only its SHA-256 hash is stored.
    """
    key_name = check_plain_text(key_name, parameter="name")
    if not key_name or len(key_name) > 100:
        raise InvalidInput(
            "Give the key a name of 1 to 100 characters (what uses it).",
            details={"parameter": "name"},
        )
    token = DEPLOYMENT_KEY_PREFIX + secrets.token_urlsafe(32)
    with container.db.session() as s:
        d = visible_deployment(s, owner, name)
        row = DeploymentKey(
            deployment_id=d.id,
            name=key_name,
            key_hash=_key_hash(token),
            prefix=token[: len(DEPLOYMENT_KEY_PREFIX) + 6],
            created_by=owner.user_id,
        )
        s.add(row)
        s.flush()
        return {**_key_to_dict(row), "key": token}


def _key_to_dict(k: DeploymentKey) -> dict[str, Any]:
    return {
        "key_id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
    }


def list_keys(container: Container, owner: Owner, name: str) -> list[dict[str, Any]]:
    """A deployment's keys (never the secret), newest first."""
    with container.db.session() as s:
        d = visible_deployment(s, owner, name)
        rows = s.scalars(
            select(DeploymentKey)
            .where(DeploymentKey.deployment_id == d.id)
            .order_by(DeploymentKey.created_at.desc())
        )
        return [_key_to_dict(k) for k in rows]


def revoke_key(container: Container, owner: Owner, name: str, key_id: str) -> None:
    """Revoke a key: it stops working at once in this process, within a second elsewhere.

    Raises:
        NotFound: no such key on this deployment.
    """
    with container.db.session() as s:
        d = visible_deployment(s, owner, name)
        row = s.get(DeploymentKey, key_id)
        if row is None or row.deployment_id != d.id:
            raise NotFound(
                f"Deployment '{name}' has no key '{key_id}'.", details={"key_id": key_id}
            )
        if row.revoked_at is None:
            row.revoked_at = utcnow()


def resolve_key(container: Container, token: str) -> KeyGrant | None:
    """The deployment a key may call, or None when it is unknown or revoked."""
    with container.db.session() as s:
        row = s.scalar(select(DeploymentKey).where(DeploymentKey.key_hash == _key_hash(token)))
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = utcnow()
        return KeyGrant(row.id, row.deployment_id, row.prefix)
