"""Checking a schedule's action against what its owner may use.

An action is ``{"kind": "batch"|"drift"|"retrain", "deployment": name, ...}`` (see
:mod:`narrate.services.schedules`); every problem is a 422 naming the field
(``action.kind``, ``action.deployment``, ``action.version_id`` ...).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from narrate.errors import InvalidInput, NotFound
from narrate.storage.sql.tables import Deployment
from narrate.storage.sql.visibility import Owner, visible_dataset_version, visible_deployment

__all__ = ["ACTION_KINDS", "check_action"]

ACTION_KINDS = ("batch", "drift", "retrain")


def _field(action: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = action.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"action.{name} is required for a '{action.get('kind')}' action.",
            code="invalid_action",
            details={"parameter": f"action.{name}"},
        )
    return value.strip()


def _deployment(s: Session, owner: Owner, name: str) -> Deployment:
    try:
        return visible_deployment(s, owner, name)
    except NotFound as exc:
        raise InvalidInput(
            f"action.deployment '{name}' is not a deployment you can use.",
            code="unknown_deployment",
            hint="List yours with GET /api/v1/deployments.",
            details={"parameter": "action.deployment", "value": name},
        ) from exc


def _version(s: Session, owner: Owner, version_id: str) -> None:
    try:
        visible_dataset_version(s, owner, version_id)
    except NotFound as exc:
        raise InvalidInput(
            f"action.version_id '{version_id}' is not a dataset version you can use.",
            code="unknown_version",
            details={"parameter": "action.version_id", "value": version_id},
        ) from exc


def _batch_input(s: Session, owner: Owner, action: dict[str, Any], clean: dict[str, Any]) -> None:
    """A batch scores a dataset version (``version_id``) or an S3 object (``path``)."""
    from narrate.services.schedule_inputs import check_s3_path

    if action.get("path") is not None and action.get("version_id") is not None:
        raise InvalidInput(
            "Give action.version_id or action.path, not both.",
            code="invalid_action",
            details={"parameter": "action.path"},
        )
    if action.get("path") is not None:
        clean["path"] = check_s3_path(str(action["path"]))
        return
    if action.get("version_id") is None:
        raise InvalidInput(
            "action.version_id (a dataset version) or action.path (s3://bucket/key) is "
            "required for a 'batch' action.",
            code="invalid_action",
            details={"parameter": "action.version_id"},
        )
    version_id = _field(action, "version_id")
    assert version_id is not None  # noqa: S101 - present above
    _version(s, owner, version_id)
    clean["version_id"] = version_id


def _retrain_options(action: dict[str, Any]) -> dict[str, Any]:
    """The retrain run's options a ``retrain`` action sets (the rest: the loop's defaults)."""
    from narrate.services.retrain import MAX_BUDGET_S, MAX_MARGIN, POLICIES

    for name in ("version_id", "path", "window"):
        if action.get(name) is not None:
            raise InvalidInput(
                f"action.{name} is not used by a 'retrain' action (it retrains on the "
                "deployment's newest labelled traffic).",
                code="invalid_action",
                details={"parameter": f"action.{name}"},
            )
    out: dict[str, Any] = {}
    policy = action.get("policy")
    if policy is not None and policy not in POLICIES:
        raise InvalidInput(
            f"action.policy must be one of {', '.join(POLICIES)}; got '{policy}'.",
            code="invalid_action",
            details={"parameter": "action.policy"},
        )
    limits = {"margin": (0.0, MAX_MARGIN), "budget_s": (1.0, float(MAX_BUDGET_S))}
    for name, (low, high) in limits.items():
        value = action.get(name)
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
        ):
            raise InvalidInput(
                f"action.{name} must be a number from {low:g} to {high:g}; got {value!r}.",
                code="invalid_action",
                details={"parameter": f"action.{name}"},
            )
    if action.get("auto_promote") is not None and not isinstance(action["auto_promote"], bool):
        raise InvalidInput(
            "action.auto_promote must be true or false.",
            code="invalid_action",
            details={"parameter": "action.auto_promote"},
        )
    for name in ("policy", "auto_promote", "margin", "budget_s"):
        if action.get(name) is not None:
            out[name] = action[name]
    return out


def check_action(s: Session, owner: Owner, action: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Validate an action against what the owner may use; return it cleaned and the
    deployment's id.

    Raises:
        InvalidInput: naming ``action.kind``, ``action.deployment``, ``action.version_id``
            or ``action.window``.
    """
    from narrate.services.drift import parse_window

    kind = action.get("kind")
    if kind not in ACTION_KINDS:
        raise InvalidInput(
            f"action.kind '{kind}' is not an action Narrate schedules; use one of "
            f"{', '.join(ACTION_KINDS)}.",
            code="invalid_action",
            details={"parameter": "action.kind", "value": kind},
        )
    name = _field(action, "deployment")
    assert name is not None  # noqa: S101 - required above
    deployment = _deployment(s, owner, name)
    clean: dict[str, Any] = {"kind": kind, "deployment": deployment.name}
    if kind == "batch":
        _batch_input(s, owner, action, clean)
    elif kind == "drift":
        window = _field(action, "window", required=False) or "7d"
        try:
            parse_window(window)
        except InvalidInput as exc:
            exc.details["parameter"] = "action.window"
            raise
        clean["window"] = window
    else:
        clean.update(_retrain_options(action))
    return clean, deployment.id
