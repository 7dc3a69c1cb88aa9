"""The Interpret stage page: what drives a model, why one row came out as it did, and
what would change it.

The page renders what is read once (the trained model versions, the selected one's
task and input signature, where its training rows are); ``static/interpret.js`` does
the rest through the JSON API (importances, dependence with ICE curves, explanations
with their narrative, what-if), so the page uses exactly what API clients use.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from narrate.services import models as registry
from narrate.services.auth import Principal
from narrate.services.datasets import Owner
from narrate.services.predict import model_signature
from narrate.storage.sql.tables import DatasetVersion, Model
from narrate.storage.sql.visibility import visible_model_version
from narrate.web.deps import Services, get_principal
from narrate.web.pages.deploy import version_choices
from narrate.web.pages.routes import render
from narrate.web.pages.stages import stage_by_slug

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PageUser = Annotated[Principal, Depends(get_principal)]


def _root_version(services: Services, version_id: str) -> DatasetVersion | None:
    """The upload a model's raw input rows come from (before any recipe)."""
    with services.db.session() as s:
        version = s.get(DatasetVersion, version_id)
        while version is not None and version.parent_version_id:
            parent = s.get(DatasetVersion, version.parent_version_id)
            if parent is None:
                break
            version = parent
        if version is not None:
            s.expunge(version)
        return version


def _selected(services: Services, owner: Owner, mv_id: str) -> dict[str, Any]:
    """The model version to interpret: its model, task, target, signature and rows."""
    with services.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        model = s.get(Model, mv.model_id)
        s.expunge(mv)
    detail = registry.get_model_version(services, owner, mv_id)
    signature = model_signature(services, mv)
    root = _root_version(services, mv.dataset_version_id)
    return {
        "version": detail,
        "model": {"id": model.id, "name": model.name, "task": model.task, "target": model.target}
        if model
        else None,
        "signature": signature,
        "rows_source": {"dataset_id": root.dataset_id, "version_id": root.id} if root else None,
    }


@router.get("/stages/interpret")
def interpret_page(
    request: Request, user: PageUser, services: Services, version: str | None = None
) -> Response:
    """A model version's importances, dependence plot, row explanations and what-if.

    Args:
        version: The model version to interpret (default: the newest model's current one).

    Raises:
        NotFound: ``version`` names no model version the caller can see.
    """
    owner = Owner.of(user)
    groups = version_choices(services, owner)
    if version is None and groups:
        version = next(v["id"] for v in groups[0]["versions"] if v["is_current"])
    context = _selected(services, owner, version) if version else {}
    return render(
        request,
        "interpret.html",
        user=user,
        stage=stage_by_slug("interpret"),
        version_groups=groups,
        selected_id=version,
        **context,
    )
