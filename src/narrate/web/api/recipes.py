"""Transform stage: step catalog, validate, preview, apply; versions, lineage, diff."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from narrate.services import recipes as svc
from narrate.services.datasets import Owner
from narrate.web.deps import AnalystUser, CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["recipes"])


class RecipeIn(BaseModel):
    """A recipe to check, preview or apply to a dataset version."""

    steps: list[dict[str, Any]] = Field(
        description='Typed steps, e.g. {"step": "impute", "columns": ["age"], '
        '"strategy": "median"}; see GET /api/v1/recipes/steps'
    )
    version_id: str | None = Field(default=None, description="Defaults to the current one")


class ApplyIn(RecipeIn):
    """Apply: confirm when the recipe removes > 50% of rows or the target column."""

    confirm_data_loss: bool = False


class CompareIn(BaseModel):
    """Two versions to diff."""

    a: str
    b: str


@router.get("/recipes/steps", summary="Every recipe step with its JSON schema")
def steps() -> dict[str, Any]:
    """The catalog the UI builds its step forms from."""
    return {"items": svc.list_steps()}


@router.post("/datasets/{dataset_id}/recipes/validate", summary="Validate a recipe")
def validate(
    dataset_id: str, body: RecipeIn, principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """All problems at once, each naming the step, parameter and column."""
    return svc.validate(
        services,
        Owner.of(principal),
        dataset_id,
        {"steps": body.steps},
        version_id=body.version_id,
    )


@router.post("/datasets/{dataset_id}/recipes/preview", summary="Preview a recipe on a sample")
async def preview(
    dataset_id: str, body: RecipeIn, principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """Before/after on up to 10,000 sampled rows (stratified by the target)."""
    return await run_in_threadpool(
        svc.preview,
        services,
        Owner.of(principal),
        dataset_id,
        {"steps": body.steps},
        version_id=body.version_id,
    )


@router.post(
    "/datasets/{dataset_id}/recipes/apply", status_code=202, summary="Apply a recipe (job)"
)
async def apply(
    dataset_id: str, body: ApplyIn, principal: AnalystUser, services: Services
) -> dict[str, Any]:
    """Start a job that applies the recipe to all rows and creates a new version."""
    job_id = await run_in_threadpool(
        lambda: svc.start_apply(
            services,
            Owner.of(principal),
            dataset_id,
            {"steps": body.steps},
            version_id=body.version_id,
            confirm_data_loss=body.confirm_data_loss,
        )
    )
    return {"job_id": job_id, "status_url": f"/api/v1/jobs/{job_id}"}


@router.get("/versions/{version_id}/lineage", summary="Lineage graph of a version")
def lineage(version_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Versions as nodes, applied recipes as edges."""
    return svc.lineage(services, Owner.of(principal), version_id)


@router.post("/versions/compare", summary="Diff two versions")
async def compare(body: CompareIn, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Schema changes, row counts, per-column stat deltas, sample of changed rows."""
    return await run_in_threadpool(
        svc.compare_versions, services, Owner.of(principal), body.a, body.b
    )


@router.post("/versions/{version_id}/reproduce", summary="Rebuild a version and check its hash")
async def reproduce(version_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Replay recipes from the root upload and compare the content hash."""
    return await run_in_threadpool(svc.reproduce_version, services, Owner.of(principal), version_id)


@router.post("/versions/{version_id}/restore", summary="Make a version the working one")
def restore(version_id: str, principal: AnalystUser, services: Services) -> dict[str, Any]:
    """Non-destructive: later versions stay."""
    return svc.restore_version(services, Owner.of(principal), version_id)
