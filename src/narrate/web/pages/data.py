"""The Upload and Clean stage pages."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from narrate.services import datasets as svc
from narrate.services.auth import Principal
from narrate.services.datasets import Owner
from narrate.services.profiles import present_profile
from narrate.web.deps import Services, get_principal
from narrate.web.pages import charts
from narrate.web.pages.routes import render
from narrate.web.pages.stages import stage_by_slug

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PageUser = Annotated[Principal, Depends(get_principal)]


@router.get("/stages/upload")
def upload_page(request: Request, user: PageUser, services: Services) -> Response:
    """Upload form with a progress bar, and the list of datasets."""
    page = svc.list_datasets(services, Owner.of(user), limit=200)
    return render(
        request,
        "upload.html",
        user=user,
        stage=stage_by_slug("upload"),
        datasets=page["items"],
        max_upload_mb=services.settings.max_upload_mb,
    )


@router.get("/stages/clean")
def clean_page(
    request: Request,
    user: PageUser,
    services: Services,
    dataset: str | None = None,
    reveal: bool = False,
) -> Response:
    """The profile of a dataset: narrative, warnings, PII, charts; or a dataset picker.

    Values of personal-data columns are masked in every part of the page (statistics,
    charts, warnings, narrative) unless the dataset's owner asks ``reveal=true``.
    """
    owner = Owner.of(user)
    stage = stage_by_slug("clean")
    if dataset is None:
        page = svc.list_datasets(services, owner, limit=200)
        return render(request, "clean.html", user=user, stage=stage, datasets=page["items"])
    info = svc.get_dataset(services, owner, dataset)
    version = svc.get_version(services, owner, info["version_id"])
    shown = present_profile(
        svc.profile_bytes(services, version),
        owner_id=version.owner_id,
        viewer_id=user.user_id,
        reveal=reveal,
    )
    profile: dict[str, Any] = json.loads(shown)
    return render(
        request,
        "clean.html",
        user=user,
        stage=stage,
        dataset=info,
        version=svc.version_to_dict(version),
        profile=profile,
        charts=charts.profile_charts(profile),
        revealed=reveal,
        is_owner=version.owner_id == user.user_id,
    )


def _initial_steps(add: str | None) -> list[dict[str, Any]]:
    """Steps handed over from the Clean stage's one-click fixes (a JSON step or list)."""
    if not add:
        return []
    try:
        value = json.loads(add)
    except ValueError:
        return []
    items = value if isinstance(value, list) else [value]
    return [s for s in items if isinstance(s, dict) and isinstance(s.get("step"), str)]


@router.get("/stages/transform")
def transform_page(
    request: Request,
    user: PageUser,
    services: Services,
    dataset: str | None = None,
    add: str | None = None,
) -> Response:
    """Recipe builder with live preview, apply with progress, and the lineage graph."""
    owner = Owner.of(user)
    stage = stage_by_slug("transform")
    if dataset is None:
        page = svc.list_datasets(services, owner, limit=200)
        return render(request, "transform.html", user=user, stage=stage, datasets=page["items"])
    info = svc.get_dataset(services, owner, dataset)
    version = svc.get_version(services, owner, info["version_id"])
    return render(
        request,
        "transform.html",
        user=user,
        stage=stage,
        dataset=info,
        version=svc.version_to_dict(version),
        columns=[c["name"] for c in version.columns],
        initial_steps=_initial_steps(add),
    )
