"""Transform stage: step catalog, validate, preview, apply; versions, lineage, diff.

Validate, preview and apply take the recipe document as JSON (``application/json``) or
as YAML (``application/yaml``, ``application/x-yaml``, ``text/yaml``); both carry the
same fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from narrate.errors import InvalidInput, UnsupportedMediaType
from narrate.services import recipes as svc
from narrate.services.datasets import Owner
from narrate.web.deps import AnalystUser, CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["recipes"])

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


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


BodyT = TypeVar("BodyT", bound=RecipeIn)


async def _read_body(request: Request, model: type[BodyT]) -> BodyT:
    """The request body as ``model``, read from JSON or YAML by its Content-Type."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    syntax: Literal["json", "yaml"]
    if media in YAML_TYPES:
        syntax = "yaml"
    elif media in ("", "application/json") or media.endswith("+json"):
        syntax = "json"
    else:
        raise UnsupportedMediaType(
            f"A recipe is sent as JSON or YAML, not '{media}'.",
            code="unsupported_media_type",
            hint="Send Content-Type: application/json or application/yaml.",
            details={"received": media, "allowed": ["application/json", *sorted(YAML_TYPES)]},
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The recipe is not UTF-8 text.", code="invalid_encoding") from exc
    data = svc.read_recipe_document(text, syntax)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from None


def _openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    content = {"application/json": {"schema": schema}}
    content.update({t: {"schema": schema} for t in sorted(YAML_TYPES)})
    return {"requestBody": {"required": True, "content": content}}


async def _recipe_body(request: Request) -> RecipeIn:
    return await _read_body(request, RecipeIn)


async def _apply_body(request: Request) -> ApplyIn:
    return await _read_body(request, ApplyIn)


RecipeBody = Annotated[RecipeIn, Depends(_recipe_body)]
ApplyBody = Annotated[ApplyIn, Depends(_apply_body)]


@router.get("/recipes/steps", summary="Every recipe step with its JSON schema")
def steps() -> dict[str, Any]:
    """The catalog the UI builds its step forms from."""
    return {"items": svc.list_steps()}


@router.post(
    "/datasets/{dataset_id}/recipes/validate",
    summary="Validate a recipe",
    openapi_extra=_openapi_body(RecipeIn),
)
def validate(
    dataset_id: str, body: RecipeBody, principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """All problems at once, each naming the step, parameter and column.

    ``recipe`` echoes the parsed recipe as JSON (how the UI loads a YAML file).
    """
    return svc.validate(
        services,
        Owner.of(principal),
        dataset_id,
        {"steps": body.steps},
        version_id=body.version_id,
    )


@router.post(
    "/datasets/{dataset_id}/recipes/preview",
    summary="Preview a recipe on a sample",
    openapi_extra=_openapi_body(RecipeIn),
)
async def preview(
    dataset_id: str, body: RecipeBody, principal: CurrentUser, services: Services
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
    "/datasets/{dataset_id}/recipes/apply",
    status_code=202,
    summary="Apply a recipe (job)",
    openapi_extra=_openapi_body(ApplyIn),
)
async def apply(
    dataset_id: str, body: ApplyBody, principal: AnalystUser, services: Services
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
