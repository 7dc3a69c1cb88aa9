"""The Monitor stage page: every deployment's health at a glance (the operations view),
and for one deployment its drift, live performance, actuals and alerts.

The page renders the deployments once; ``static/monitor.js`` reads the rest through the
JSON API (stats, drift reports and checks, performance, actuals upload, alert rules and
alerts) and refreshes the overview every 15 seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from narrate.services import deployments as deploy_svc
from narrate.services.auth import Principal
from narrate.services.datasets import Owner
from narrate.web.deps import Services, get_principal
from narrate.web.pages.routes import render
from narrate.web.pages.stages import stage_by_slug

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PageUser = Annotated[Principal, Depends(get_principal)]

#: Deployments on the overview (newest first); more are reachable through the API.
_MAX_DEPLOYMENTS = 100
_WRITE_ROLES = frozenset({"admin", "analyst"})


@router.get("/stages/monitor")
def monitor_page(
    request: Request, user: PageUser, services: Services, deployment: str | None = None
) -> Response:
    """The operations overview and, for ``?deployment=<name>``, that deployment's drift,
    performance, actuals and alerts.

    Raises:
        NotFound: ``deployment`` names no deployment the caller can see.
    """
    owner = Owner.of(user)
    items, total = deploy_svc.list_deployments(services, owner, limit=_MAX_DEPLOYMENTS)
    selected = deploy_svc.get_deployment(services, owner, deployment) if deployment else None
    return render(
        request,
        "monitor.html",
        user=user,
        stage=stage_by_slug("monitor"),
        deployments=items,
        total=total,
        deployment=selected,
        can_write=user.role in _WRITE_ROLES,
    )
