"""Monitor: alert rules on deployments, the alerts they raise, acknowledge and resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from narrate.services import alert_history as history
from narrate.services import alert_rules as rules_svc
from narrate.services import alerts as svc
from narrate.storage.sql.visibility import Owner
from narrate.web.api.contract import Page, errors, next_url
from narrate.web.deps import AnalystUser, CurrentUser, Offset, Services

__all__ = ["router"]

router = APIRouter(tags=["monitor"])

Kind = Literal["drift", "error_rate", "latency_p95", "job_failures", "performance"]
Severity = Literal["info", "warning", "critical"]
Status = Literal["open", "acknowledged", "resolved"]
DriftLevel = Literal["low", "medium", "high"]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1 to 500).")]
Cooldown = Annotated[int, Field(ge=0, le=rules_svc.MAX_COOLDOWN_S)]
Window = Annotated[int, Field(ge=1, le=1440)]


class WebhookIn(BaseModel):
    """A JSON POST to ``url``, signed with ``secret`` when given."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    url: str = Field(max_length=2048, description="http(s) URL of a public receiver.")
    secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=256,
        description="HMAC-SHA256 key of X-Narrate-Signature; stored encrypted, never shown. "
        "Left out on PATCH: the same URL keeps its secret.",
    )


class EmailIn(BaseModel):
    """An e-mail over the server's SMTP settings."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["email"]
    to: str = Field(max_length=254, description="One address.")


class InAppIn(BaseModel):
    """The alert list of the app (``GET /api/v1/alerts``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["in_app"]


Channel = Annotated[WebhookIn | EmailIn | InAppIn, Field(discriminator="type")]


class RuleIn(BaseModel):
    """A new alert rule."""

    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(min_length=1, max_length=64, description="The deployment's name.")
    kind: Kind
    level: DriftLevel | None = Field(
        default=None, description="drift: fire at this level or above (default medium)."
    )
    threshold: float | None = Field(
        default=None,
        description="error_rate: share 0-1; latency_p95: ms; job_failures: count (default "
        "1); performance: relative drop 0-1.",
    )
    severity: Severity = "warning"
    cooldown_s: Cooldown = Field(default=3600, description="No new delivery within this.")
    window_minutes: Window = Field(
        default=15, description="error_rate and latency_p95: how far back to look."
    )
    enabled: bool = True
    channels: list[Channel] = Field(min_length=1, max_length=rules_svc.MAX_CHANNELS)


class RulePatch(BaseModel):
    """Changes to a rule; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    level: DriftLevel | None = None
    threshold: float | None = None
    severity: Severity | None = None
    cooldown_s: Cooldown | None = None
    window_minutes: Window | None = None
    enabled: bool | None = None
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=10)


class ChannelOut(BaseModel):
    """A channel as stored, its secret replaced by ``secret_set``."""

    type: Literal["webhook", "email", "in_app"]
    url: str | None = None
    secret_set: bool | None = None
    to: str | None = None


class RuleOut(BaseModel):
    """An alert rule."""

    rule_id: str
    deployment: str
    kind: Kind
    level: DriftLevel | None
    threshold: float | None
    window_minutes: int
    severity: Severity
    cooldown_s: int
    enabled: bool
    channels: list[ChannelOut]
    owner_id: str
    created_at: datetime
    last_checked_at: datetime | None
    last_delivered_at: datetime | None


class CheckOut(BaseModel):
    """What one evaluation of a rule found and did."""

    firing: bool
    message: str
    facts: dict[str, Any]
    action: str = Field(description="opened, grouped, resolved or none (+ held by cool-down).")
    alert_id: str | None
    delivering: bool = Field(description="Whether the alert is being sent over its channels.")


class AlertOut(BaseModel):
    """An alert in the history."""

    alert_id: str
    rule_id: str
    deployment: str
    kind: Kind
    severity: Severity
    status: Status
    first_at: datetime
    last_at: datetime
    count: int = Field(description="Occurrences grouped into this alert.")
    message: str
    facts: dict[str, Any]
    notified_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None = Field(
        description="A user id, 'auto' when the condition cleared, or 'rule_deleted'."
    )


class DeliveryOut(BaseModel):
    """One channel's delivery of an alert."""

    delivery_id: str
    channel: Literal["webhook", "email", "in_app"]
    target: str
    attempts: int
    status: Literal["pending", "delivered", "failed"]
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AlertDetailOut(AlertOut):
    """An alert with its deliveries."""

    deliveries: list[DeliveryOut]


def _channels(items: list[Any] | None) -> list[dict[str, Any]] | None:
    return None if items is None else [c.model_dump() for c in items]


@router.post(
    "/alert-rules",
    status_code=201,
    summary="Create an alert rule on a deployment",
    response_model=RuleOut,
    responses=errors(401, 403, 422),
)
async def create(body: RuleIn, principal: AnalystUser, services: Services) -> Any:
    """Unknown deployment, bad threshold or level, bad URL (or one reaching a private
    address) and bad e-mail answer 422 naming the field."""
    spec = {**body.model_dump(), "channels": _channels(body.channels)}
    return await run_in_threadpool(rules_svc.create_rule, services, Owner.of(principal), spec)


@router.get(
    "/alert-rules",
    summary="Alert rules",
    response_model=Page[RuleOut],
    responses=errors(401, 422),
)
async def list_rules(
    principal: CurrentUser,
    services: Services,
    deployment: Annotated[str | None, Query(max_length=64)] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> Any:
    """The caller's rules (an admin's: everyone's), newest first."""
    items, total = await run_in_threadpool(
        lambda: rules_svc.list_rules(
            services, Owner.of(principal), deployment=deployment, offset=offset, limit=limit
        )
    )
    nxt = next_url("/api/v1/alert-rules", offset, limit, total, deployment=deployment)
    return {"items": items, "total": total, "next": nxt}


@router.get(
    "/alert-rules/{rule_id}",
    summary="An alert rule",
    response_model=RuleOut,
    responses=errors(401, 404),
)
async def get_rule(rule_id: str, principal: CurrentUser, services: Services) -> Any:
    """Secrets are never shown: a webhook answers ``secret_set``."""
    return await run_in_threadpool(rules_svc.get_rule, services, Owner.of(principal), rule_id)


@router.patch(
    "/alert-rules/{rule_id}",
    summary="Change an alert rule",
    response_model=RuleOut,
    responses=errors(401, 403, 404, 422),
)
async def update(rule_id: str, body: RulePatch, principal: AnalystUser, services: Services) -> Any:
    """Fields left out stay; ``channels`` replaces the whole list."""
    changes = body.model_dump(exclude_unset=True)
    if "channels" in changes:
        changes["channels"] = _channels(body.channels)
    return await run_in_threadpool(
        rules_svc.update_rule, services, Owner.of(principal), rule_id, changes
    )


@router.delete(
    "/alert-rules/{rule_id}",
    status_code=204,
    summary="Delete an alert rule",
    responses=errors(401, 403, 404),
)
async def delete(rule_id: str, principal: AnalystUser, services: Services) -> Response:
    """Its alerts stay in the history."""
    await run_in_threadpool(rules_svc.delete_rule, services, Owner.of(principal), rule_id)
    return Response(status_code=204)


@router.post(
    "/alert-rules/{rule_id}/check",
    summary="Evaluate an alert rule now",
    response_model=CheckOut,
    responses=errors(401, 403, 404),
)
async def check(rule_id: str, principal: AnalystUser, services: Services) -> Any:
    """Opens, groups or resolves the rule's alert like the periodic check does; a new
    alert is sent in the background (see its ``deliveries``)."""
    return await run_in_threadpool(svc.check_rule, services, Owner.of(principal), rule_id)


@router.get(
    "/alerts",
    summary="Alert history",
    response_model=Page[AlertOut],
    responses=errors(401, 422),
)
async def list_alerts(
    principal: CurrentUser,
    services: Services,
    deployment: Annotated[str | None, Query(max_length=64)] = None,
    status: Status | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> Any:
    """The caller's alerts (an admin's: everyone's), most recently seen first."""
    items, total = await run_in_threadpool(
        lambda: history.list_alerts(
            services,
            Owner.of(principal),
            deployment=deployment,
            status=status,
            offset=offset,
            limit=limit,
        )
    )
    nxt = next_url("/api/v1/alerts", offset, limit, total, deployment=deployment, status=status)
    return {"items": items, "total": total, "next": nxt}


@router.get(
    "/alerts/{alert_id}",
    summary="An alert with its deliveries",
    response_model=AlertDetailOut,
    responses=errors(401, 404),
)
async def get_alert(alert_id: str, principal: CurrentUser, services: Services) -> Any:
    """Each channel's delivery: attempts, status and last error."""
    return await run_in_threadpool(history.get_alert, services, Owner.of(principal), alert_id)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert",
    response_model=AlertOut,
    responses=errors(401, 403, 404, 409),
)
async def acknowledge(alert_id: str, principal: AnalystUser, services: Services) -> Any:
    """It stays open until resolved (by hand, or when the condition clears)."""
    return await run_in_threadpool(history.acknowledge, services, Owner.of(principal), alert_id)


@router.post(
    "/alerts/{alert_id}/resolve",
    summary="Resolve an alert",
    response_model=AlertOut,
    responses=errors(401, 403, 404, 409),
)
async def resolve(alert_id: str, principal: AnalystUser, services: Services) -> Any:
    """If the condition still holds, the next check opens a new alert."""
    return await run_in_threadpool(history.resolve, services, Owner.of(principal), alert_id)
