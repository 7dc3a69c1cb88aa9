"""Alert rules: what to watch on a deployment, where it fires, and where to send it.

Rules follow the one visibility rule: the owner (and admins) see them, and neither the rule
nor its deployment may be deleted (a rule of an undeployed deployment answers 404 until the
deployment is restored). Channel secrets are sealed before they are stored
(:mod:`narrate.services.secret_box`) and never returned: a channel answers
``"secret_set": true`` instead.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from narrate.bootstrap import Container
from narrate.core.monitor.drift import LEVELS
from narrate.errors import InvalidInput, NotFound
from narrate.services.secret_box import secret_box
from narrate.services.url_guard import pin_url
from narrate.storage.sql.tables import Alert, AlertRule, Deployment, utcnow
from narrate.storage.sql.visibility import Owner, visible_deployment

__all__ = [
    "KINDS",
    "SEVERITIES",
    "create_rule",
    "delete_rule",
    "get_rule",
    "kinds_available",
    "list_rules",
    "rule_dict",
    "update_rule",
    "visible_rule",
]

KINDS = ("drift", "error_rate", "latency_p95", "job_failures", "performance")
SEVERITIES = ("info", "warning", "critical")
MAX_CHANNELS = 10
MAX_COOLDOWN_S = 7 * 24 * 3600
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def kinds_available() -> tuple[str, ...]:
    """The kinds this installation evaluates: ``performance`` needs the live performance
    service (``narrate.services.performance``)."""
    has_performance = importlib.util.find_spec("narrate.services.performance") is not None
    return tuple(k for k in KINDS if k != "performance" or has_performance)


def _bad(message: str, parameter: str, code: str = "invalid_input", **details: Any) -> InvalidInput:
    return InvalidInput(message, code=code, details={"parameter": parameter, **details})


def _check_condition(kind: str, level: str | None, threshold: float | None) -> dict[str, Any]:
    """The rule's ``level`` and ``threshold`` for its kind, defaults filled in."""
    if kind not in kinds_available():
        raise _bad(
            f"kind '{kind}' is not one Narrate evaluates here; use one of "
            f"{', '.join(kinds_available())}.",
            "kind",
            "invalid_kind",
        )
    if kind == "drift":
        if threshold is not None:
            raise _bad("A drift rule fires at a level, not a threshold: send 'level'.", "threshold")
        chosen = level or "medium"
        if chosen not in LEVELS[1:]:
            raise _bad(
                f"level '{chosen}' is not a drift level; use low, medium or high.",
                "level",
                "invalid_level",
            )
        return {"level": chosen, "threshold": None}
    if level is not None:
        raise _bad(f"A {kind} rule fires at a 'threshold', not a level.", "level")
    limits = {
        "error_rate": (0.0, 1.0, "a share of rows between 0 and 1, e.g. 0.05"),
        "latency_p95": (0.0, 3_600_000.0, "milliseconds, e.g. 250"),
        "job_failures": (1.0, 1_000_000.0, "a number of failed jobs, e.g. 1"),
        "performance": (0.0, 1.0, "a relative drop between 0 and 1, e.g. 0.1"),
    }
    low, high, what = limits[kind]
    value = 1.0 if threshold is None and kind == "job_failures" else threshold
    if value is None or not (low < value <= high or (kind == "job_failures" and value == low)):
        raise _bad(
            f"threshold {threshold} is not valid for a {kind} rule: it is {what}.",
            "threshold",
            "invalid_threshold",
            kind=kind,
        )
    return {"level": None, "threshold": float(value)}


def _check_channels(container: Container, channels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated channels, each webhook's URL checked and its secret sealed."""
    if not 1 <= len(channels) <= MAX_CHANNELS:
        raise _bad(f"Send 1 to {MAX_CHANNELS} channels.", "channels")
    box = None
    out: list[dict[str, Any]] = []
    for i, channel in enumerate(channels):
        where = f"channels[{i}]"
        kind = channel.get("type")
        if kind == "webhook":
            url = str(channel.get("url") or "")
            pin_url(
                url,
                allow_private=container.settings.webhook_allow_private,
                allow_networks=container.settings.webhook_allow_networks,
                parameter=f"{where}.url",
            )
            stored: dict[str, Any] = {"type": "webhook", "url": url}
            secret = channel.get("secret")
            if secret is not None:
                box = box or secret_box(container.settings)
                stored["secret_sealed"] = box.seal(str(secret))
            elif channel.get("secret_sealed"):  # unchanged on PATCH
                stored["secret_sealed"] = channel["secret_sealed"]
            out.append(stored)
        elif kind == "email":
            to = str(channel.get("to") or "")
            if len(to) > 254 or not _EMAIL.match(to):
                raise _bad(
                    f"'{to[:100]}' is not an e-mail address.", f"{where}.to", "invalid_email"
                )
            out.append({"type": "email", "to": to})
        elif kind == "in_app":
            out.append({"type": "in_app"})
        else:
            raise _bad(
                f"Channel type '{kind}' is unknown: use webhook, email or in_app.", f"{where}.type"
            )
    return out


def _public_channel(channel: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in channel.items() if k != "secret_sealed"}
    if channel["type"] == "webhook":
        out["secret_set"] = bool(channel.get("secret_sealed"))
    return out


def rule_dict(rule: AlertRule, deployment: str) -> dict[str, Any]:
    """A rule as the API shows it (secrets left out)."""
    return {
        "rule_id": rule.id,
        "deployment": deployment,
        "kind": rule.kind,
        "level": rule.level,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "severity": rule.severity,
        "cooldown_s": rule.cooldown_s,
        "enabled": rule.enabled,
        "channels": [_public_channel(c) for c in rule.channels or []],
        "owner_id": rule.owner_id,
        "created_at": rule.created_at,
        "last_checked_at": rule.last_checked_at,
        "last_delivered_at": rule.last_delivered_at,
    }


def visible_rule(s: Session, owner: Owner, rule_id: str) -> tuple[AlertRule, Deployment]:
    """A rule the caller may see, with its deployment (see the module docstring).

    Raises:
        NotFound: no such rule for the caller, it is deleted, or its deployment is.
    """
    rule = s.get(AlertRule, rule_id) if rule_id else None
    if rule is None or not (owner.is_admin or rule.owner_id == owner.user_id):
        raise NotFound(f"No alert rule with id '{rule_id}'.", details={"rule_id": rule_id})
    if rule.deleted_at is not None:
        raise NotFound(f"Alert rule '{rule_id}' is deleted.", details={"rule_id": rule_id})
    deployment = s.get(Deployment, rule.deployment_id)
    if deployment is None or deployment.deleted_at is not None:
        name = deployment.name if deployment is not None else rule.deployment_id
        raise NotFound(
            f"Alert rule '{rule_id}' belongs to deployment '{name}', which is undeployed.",
            hint=f"Restore it first: POST /api/v1/deployments/{name}/restore.",
            details={"rule_id": rule_id, "deployment": name},
        )
    return rule, deployment


def create_rule(container: Container, owner: Owner, spec: dict[str, Any]) -> dict[str, Any]:
    """Store a rule on a deployment the caller may see.

    Args:
        container: Services.
        owner: The caller.
        spec: ``deployment``, ``kind``, ``level``/``threshold``, ``severity``,
            ``cooldown_s``, ``window_minutes``, ``enabled`` and ``channels``.

    Raises:
        InvalidInput: ``unknown_deployment``, ``invalid_kind``, ``invalid_threshold``,
            ``invalid_level``, ``invalid_url``, ``url_refused``, ``unresolvable_host``,
            ``invalid_email``, each naming the field.
    """
    condition = _check_condition(spec["kind"], spec.get("level"), spec.get("threshold"))
    with container.db.session() as s:
        try:
            deployment = visible_deployment(s, owner, spec["deployment"])
        except NotFound as exc:
            raise _bad(
                f"No deployment named '{spec['deployment']}' that you may see.",
                "deployment",
                "unknown_deployment",
            ) from exc
        deployment_id, name = deployment.id, deployment.name
    channels = _check_channels(container, spec["channels"])
    rule = AlertRule(
        owner_id=owner.user_id,
        deployment_id=deployment_id,
        kind=spec["kind"],
        severity=spec.get("severity") or "warning",
        cooldown_s=int(spec.get("cooldown_s", 3600)),
        window_minutes=int(spec.get("window_minutes", 15)),
        enabled=bool(spec.get("enabled", True)),
        channels=channels,
        **condition,
    )
    with container.db.session() as s:
        s.add(rule)
        s.flush()
        return rule_dict(rule, name)


def get_rule(container: Container, owner: Owner, rule_id: str) -> dict[str, Any]:
    """One rule the caller may see.

    Raises:
        NotFound: see :func:`visible_rule`.
    """
    with container.db.session() as s:
        rule, deployment = visible_rule(s, owner, rule_id)
        return rule_dict(rule, deployment.name)


def list_rules(
    container: Container, owner: Owner, *, deployment: str | None, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The caller's rules (an admin's: everyone's) on live deployments, newest first."""
    where: list[ColumnElement[bool]] = [
        AlertRule.deleted_at.is_(None),
        Deployment.deleted_at.is_(None),
    ]
    if not owner.is_admin:
        where.append(AlertRule.owner_id == owner.user_id)
    if deployment is not None:
        where.append(Deployment.name == deployment)
    joined = select(AlertRule, Deployment.name).join(
        Deployment, Deployment.id == AlertRule.deployment_id
    )
    with container.db.session() as s:
        total = s.scalar(select(func.count()).select_from(joined.where(*where).subquery())) or 0
        rows = s.execute(
            joined.where(*where)
            .order_by(AlertRule.created_at.desc(), AlertRule.id)
            .offset(offset)
            .limit(limit)
        ).all()
        return [rule_dict(rule, name) for rule, name in rows], int(total)


def update_rule(
    container: Container, owner: Owner, rule_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a rule's condition, severity, cool-down, window, channels or ``enabled``.

    A webhook channel sent without ``secret`` keeps the secret of the same URL, if any.

    Raises:
        NotFound: see :func:`visible_rule`.
        InvalidInput: as for :func:`create_rule`.
    """
    with container.db.session() as s:
        rule, _ = visible_rule(s, owner, rule_id)
        kind, level, threshold = rule.kind, rule.level, rule.threshold
        old_secrets = {
            c["url"]: c["secret_sealed"] for c in rule.channels or [] if c.get("secret_sealed")
        }
    if "level" in changes or "threshold" in changes:
        level, threshold = changes.get("level"), changes.get("threshold")
    condition = _check_condition(kind, level, threshold)
    channels = None
    if changes.get("channels") is not None:
        sent = [
            {**c, "secret_sealed": old_secrets.get(str(c.get("url")))}
            if c.get("type") == "webhook" and c.get("secret") is None
            else c
            for c in changes["channels"]
        ]
        channels = _check_channels(container, sent)
    with container.db.session() as s:
        rule, deployment = visible_rule(s, owner, rule_id)
        rule.level, rule.threshold = condition["level"], condition["threshold"]
        for key in ("severity", "cooldown_s", "window_minutes", "enabled"):
            if changes.get(key) is not None:
                setattr(rule, key, changes[key])
        if channels is not None:
            rule.channels = channels
        s.flush()
        return rule_dict(rule, deployment.name)


def delete_rule(container: Container, owner: Owner, rule_id: str) -> None:
    """Soft-delete a rule; its alerts stay in the history, and one still open is resolved
    (``resolved_by: "rule_deleted"``), since nothing will check it any more.

    Raises:
        NotFound: see :func:`visible_rule`.
    """
    now = utcnow()
    with container.db.session() as s:
        rule, _ = visible_rule(s, owner, rule_id)
        rule.deleted_at = now
        for alert in s.scalars(
            select(Alert).where(Alert.rule_id == rule_id, Alert.status != "resolved")
        ):
            alert.status, alert.resolved_at, alert.resolved_by = "resolved", now, "rule_deleted"
