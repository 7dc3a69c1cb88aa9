"""The alert history: list, read (with deliveries), acknowledge and resolve.

An alert is visible to its rule's owner and admins while its deployment is not
undeployed (the same rule as :func:`narrate.services.alert_rules.visible_rule`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from narrate.bootstrap import Container
from narrate.errors import InvalidState, NotFound
from narrate.storage.sql.tables import Alert, AlertDelivery, Deployment, utcnow
from narrate.storage.sql.visibility import Owner

__all__ = ["acknowledge", "get_alert", "list_alerts", "resolve"]


def _alert_dict(alert: Alert, deployment: str) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "rule_id": alert.rule_id,
        "deployment": deployment,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "first_at": alert.first_at,
        "last_at": alert.last_at,
        "count": alert.count,
        "message": alert.message,
        "facts": alert.facts or {},
        "notified_at": alert.notified_at,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_at": alert.resolved_at,
        "resolved_by": alert.resolved_by,
    }


def _visible_alert(s: Any, owner: Owner, alert_id: str) -> tuple[Alert, Deployment]:
    alert = s.get(Alert, alert_id) if alert_id else None
    if alert is None or not (owner.is_admin or alert.owner_id == owner.user_id):
        raise NotFound(f"No alert with id '{alert_id}'.", details={"alert_id": alert_id})
    deployment = s.get(Deployment, alert.deployment_id)
    if alert.deleted_at is not None or deployment is None or deployment.deleted_at is not None:
        raise NotFound(
            f"Alert '{alert_id}' belongs to an undeployed deployment.",
            details={"alert_id": alert_id},
        )
    return alert, deployment


def get_alert(container: Container, owner: Owner, alert_id: str) -> dict[str, Any]:
    """One alert with its deliveries (channel, target, attempts, status, last error).

    Raises:
        NotFound: no such alert for the caller, or its deployment is undeployed.
    """
    with container.db.session() as s:
        alert, deployment = _visible_alert(s, owner, alert_id)
        out = _alert_dict(alert, deployment.name)
        rows = s.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id == alert_id)
            .order_by(AlertDelivery.created_at)
        ).all()
        out["deliveries"] = [
            {
                "delivery_id": d.id,
                "channel": d.channel,
                "target": d.target,
                "attempts": d.attempts,
                "status": d.status,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "delivered_at": d.delivered_at,
            }
            for d in rows
        ]
    return out


def list_alerts(
    container: Container,
    owner: Owner,
    *,
    deployment: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """The caller's alerts (an admin's: everyone's) on live deployments, newest first."""
    where: list[ColumnElement[bool]] = [
        Alert.deleted_at.is_(None),
        Deployment.deleted_at.is_(None),
    ]
    if not owner.is_admin:
        where.append(Alert.owner_id == owner.user_id)
    if deployment is not None:
        where.append(Deployment.name == deployment)
    if status is not None:
        where.append(Alert.status == status)
    joined = select(Alert, Deployment.name).join(Deployment, Deployment.id == Alert.deployment_id)
    with container.db.session() as s:
        total = s.scalar(select(func.count()).select_from(joined.where(*where).subquery())) or 0
        rows = s.execute(
            joined.where(*where)
            .order_by(Alert.last_at.desc(), Alert.id)
            .offset(offset)
            .limit(limit)
        ).all()
        return [_alert_dict(a, name) for a, name in rows], int(total)


def acknowledge(container: Container, owner: Owner, alert_id: str) -> dict[str, Any]:
    """Mark an open alert as seen by the caller; it stays until resolved.

    Raises:
        NotFound: as :func:`get_alert`.
        InvalidState: ``alert_resolved`` when it is already resolved.
    """
    with container.db.session() as s:
        alert, deployment = _visible_alert(s, owner, alert_id)
        if alert.status == "resolved":
            raise InvalidState(
                f"Alert '{alert_id}' is already resolved.",
                code="alert_resolved",
                details={"alert_id": alert_id},
            )
        alert.status, alert.acknowledged_by, alert.acknowledged_at = (
            "acknowledged",
            owner.user_id,
            utcnow(),
        )
        return _alert_dict(alert, deployment.name)


def resolve(container: Container, owner: Owner, alert_id: str) -> dict[str, Any]:
    """Close an alert by hand; if the condition still holds, the next check opens a new one.

    Raises:
        NotFound: as :func:`get_alert`.
        InvalidState: ``alert_resolved`` when it is already resolved.
    """
    with container.db.session() as s:
        alert, deployment = _visible_alert(s, owner, alert_id)
        if alert.status == "resolved":
            raise InvalidState(
                f"Alert '{alert_id}' is already resolved.",
                code="alert_resolved",
                details={"alert_id": alert_id},
            )
        alert.status, alert.resolved_at, alert.resolved_by = "resolved", utcnow(), owner.user_id
        return _alert_dict(alert, deployment.name)
