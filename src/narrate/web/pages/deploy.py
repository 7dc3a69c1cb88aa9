"""The Deploy stage page: deployments, revisions and rollback, live traffic, a try-it
form, batch scoring, keys and code snippets.

The page renders what is read once (the deployments, the selected one's revisions and
keys, the versions that can be deployed); ``static/deploy.js`` does the rest through the
JSON API (signature → try-it form and snippets, predict, batch jobs, stats, keys,
rollback), so the page and scripts use exactly what API clients use.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from narrate.services import deployments as deploy_svc
from narrate.services import models as registry
from narrate.services import users
from narrate.services.auth import Principal
from narrate.services.datasets import Owner
from narrate.web.deps import Services, get_principal
from narrate.web.pages.routes import render
from narrate.web.pages.stages import stage_by_slug

__all__ = ["router", "version_choices"]

router = APIRouter(include_in_schema=False)
PageUser = Annotated[Principal, Depends(get_principal)]

#: Deployments listed on the page (newest first); more are reachable through the API.
_MAX_DEPLOYMENTS = 200
#: Models whose versions are offered in the deploy form (newest first).
_MAX_MODELS = 30
_WRITE_ROLES = frozenset({"admin", "analyst"})


def version_choices(services: Services, owner: Owner) -> list[dict[str, Any]]:
    """Each trained model (newest first) with its versions, newest first, for the forms."""
    groups = []
    for m in registry.list_models(services, owner):
        if not m.get("current_version_id"):
            continue  # still training, failed or cancelled before any version
        detail = registry.get_model(services, owner, m["id"])
        versions = [
            {
                "id": v["id"],
                "number": v["number"],
                "family": (v.get("family") or "model").replace("_", " "),
                "is_current": v["id"] == m["current_version_id"],
                "stage": v.get("stage") or "none",
            }
            for v in reversed(detail["versions"])
        ]
        groups.append({"model": m, "versions": versions})
        if len(groups) >= _MAX_MODELS:
            break
    return groups


def _version_labels(groups: list[dict[str, Any]]) -> dict[str, str]:
    """Model version id → "model v3", for the revision history."""
    return {v["id"]: f"{g['model']['name']} v{v['number']}" for g in groups for v in g["versions"]}


def _actor_names(services: Services, revisions: list[dict[str, Any]]) -> dict[str, str]:
    """User id → username for the people named in the revision history."""
    wanted = {r["actor_id"] for r in revisions}
    if not wanted:
        return {}
    return {u.id: u.username for u in users.list_users(services.db) if u.id in wanted}


def _selected(
    services: Services, owner: Owner, name: str, groups: list[dict[str, Any]]
) -> dict[str, Any]:
    """The selected deployment with its revisions (labelled), keys and version choices."""
    detail = deploy_svc.get_deployment(services, owner, name)
    labels = _version_labels(groups)
    names = _actor_names(services, detail["revisions"])
    for r in detail["revisions"]:
        r["version_label"] = labels.get(r["model_version_id"], r["model_version_id"][:8])
        r["actor"] = names.get(r["actor_id"], "a removed user")
    same_model = next((g for g in groups if g["model"]["id"] == detail["model_id"]), None)
    return {
        "deployment": detail,
        "keys": deploy_svc.list_keys(services, owner, name),
        "model_versions": same_model["versions"] if same_model else [],
    }


@router.get("/stages/deploy")
def deploy_page(
    request: Request,
    user: PageUser,
    services: Services,
    deployment: str | None = None,
    version: str | None = None,
) -> Response:
    """The caller's deployments, a deploy form and, for ``?deployment=<name>``, its
    revisions with rollback, traffic, a try-it form, batch scoring, keys and snippets.

    Args:
        deployment: The deployment to show.
        version: A model version to preselect in the deploy form.

    Raises:
        NotFound: ``deployment`` names no deployment the caller can see.
    """
    owner = Owner.of(user)
    items, total = deploy_svc.list_deployments(services, owner, limit=_MAX_DEPLOYMENTS)
    groups = version_choices(services, owner)
    context = _selected(services, owner, deployment, groups) if deployment else {}
    return render(
        request,
        "deploy.html",
        user=user,
        stage=stage_by_slug("deploy"),
        deployments=items,
        total=total,
        version_groups=groups,
        preselected=version,
        can_write=user.role in _WRITE_ROLES,
        **context,
    )
