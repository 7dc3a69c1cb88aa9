"""Datasets: upload, list, read, rename, retype, delete/restore, rows, download, profile."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from narrate.core.data.readers import ReadOptions, check_media_type
from narrate.errors import BadRequest, InvalidInput, TooLarge
from narrate.services import datasets as svc
from narrate.services.datasets import Owner
from narrate.services.profiles import present_profile
from narrate.services.spool import upload_spool
from narrate.web.deps import AnalystUser, CurrentUser, Offset, Services

__all__ = ["router"]

router = APIRouter(tags=["datasets"])
_COPY_CHUNK = 1024 * 1024
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the small form fields


class DatasetPatch(BaseModel):
    """Changes to a dataset; column type overrides create a new version."""

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    target: str | None = None
    column_types: dict[str, str] | None = Field(
        default=None,
        description="column → integer, float, boolean, date, datetime, "
        "categorical, text or identifier",
    )


def _check_declared_size(request: Request, limit: int, limit_mb: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(
            f"The upload is {int(declared) / 1024 / 1024:.1f} MB; the limit is {limit_mb} MB.",
            hint="Split the file or ask an admin to raise NARRATE_MAX_UPLOAD_MB.",
            details={"limit_mb": limit_mb, "parameter": "file"},
        )


def _too_large(filename: str | None, limit_mb: int) -> TooLarge:
    what = f"'{filename}'" if filename else "The upload"
    return TooLarge(
        f"{what} is larger than the {limit_mb} MB limit.",
        hint="Split the file or ask an admin to raise NARRATE_MAX_UPLOAD_MB.",
        details={"limit_mb": limit_mb, "file": filename, "parameter": "file"},
    )


def _spool(upload: StarletteUploadFile, dest: Path, limit: int, limit_mb: int) -> None:
    written = 0
    with dest.open("wb") as out:
        while chunk := upload.file.read(_COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                raise _too_large(upload.filename or "upload", limit_mb)
            out.write(chunk)


async def _limited(
    request: Request, limit: int, limit_mb: int, filename: str | None
) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives, stopping once it passes the limit.

    Works whether or not the client declared a Content-Length (chunked bodies too).
    """
    received = 0
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            received += len(chunk)
            if received > limit:
                raise _too_large(filename, limit_mb)
            yield chunk


async def _stream_body(
    request: Request, dest: Path, filename: str, limit: int, limit_mb: int
) -> None:
    """Write a raw request body to disk as it arrives, stopping at the size limit."""
    with dest.open("wb") as out:
        async for chunk in _limited(request, limit, limit_mb, filename):
            out.write(chunk)


async def _read_form(request: Request, limit: int, limit_mb: int) -> FormData:
    """Parse a multipart body, refusing it as soon as it grows past the limit."""
    parser = MultiPartParser(
        request.headers,
        _limited(request, limit + _MULTIPART_OVERHEAD, limit_mb, None),
        max_files=1,
        max_fields=10,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(
            f"The multipart body could not be read: {exc.message}",
            code="bad_multipart",
            hint="Send the file in the multipart field 'file'.",
            details={"parameter": "file"},
        ) from exc


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string"},
                        "sheet": {"type": "string"},
                        "skip_bad_lines": {"type": "boolean"},
                        "target": {"type": "string"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _form_text(form: Any, key: str, default: str | None) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) and value != "" else default


@router.post(
    "/datasets",
    status_code=201,
    summary="Upload a file as a new dataset",
    openapi_extra=_UPLOAD_BODY,
)
async def upload(
    request: Request,
    principal: AnalystUser,
    services: Services,
    filename: Annotated[str | None, Query(description="Raw uploads: the file's name")] = None,
    name: Annotated[str | None, Query()] = None,
    sheet: Annotated[str | None, Query()] = None,
    skip_bad_lines: Annotated[bool, Query()] = False,
    target: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Parse, validate, profile and store an upload; nothing is kept when it fails.

    Send either ``multipart/form-data`` with the file in field ``file`` (options as form
    fields), or the raw file as the body (``application/octet-stream``) with
    ``?filename=data.csv`` and options as query parameters — the raw form streams straight
    to disk and is the fastest for large files.
    """
    settings = services.settings
    limit, limit_mb = settings.max_upload_bytes, settings.max_upload_mb
    _check_declared_size(request, limit, limit_mb)
    with upload_spool(settings) as tmp:
        path = tmp / "upload.bin"
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await _read_form(request, limit, limit_mb)
            try:
                file = form.get("file")
                if not isinstance(file, StarletteUploadFile):
                    raise InvalidInput(
                        "Send the file in the multipart field 'file'.",
                        code="missing_file",
                        details={"parameter": "file"},
                    )
                filename = svc.clean_filename(file.filename or "upload")
                check_media_type(file.content_type, filename=filename)
                await run_in_threadpool(_spool, file, path, limit, limit_mb)
            finally:
                await form.close()
            name = _form_text(form, "name", name)
            sheet = _form_text(form, "sheet", sheet)
            target = _form_text(form, "target", target)
            skip_bad_lines = _form_text(form, "skip_bad_lines", "") in {"true", "1", "on"} or (
                skip_bad_lines
            )
        else:
            if not filename:
                raise InvalidInput(
                    "Name the file: add ?filename=data.csv (its extension tells the format), "
                    "or send multipart/form-data with a 'file' field.",
                    code="missing_filename",
                    details={"parameter": "filename"},
                )
            filename = svc.clean_filename(filename)
            check_media_type(content_type, filename=filename)
            await _stream_body(request, path, filename, limit, limit_mb)
        options = ReadOptions(sheet=sheet or None, skip_bad_lines=skip_bad_lines)
        return await run_in_threadpool(
            lambda: svc.ingest_file(
                services,
                principal.user_id,
                path,
                filename=filename or "upload",
                name=name,
                target=target or None,
                options=options,
            )
        )


@router.get("/datasets", summary="List datasets")
def list_datasets(
    principal: CurrentUser,
    services: Services,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The caller's datasets (all for admins), newest first."""
    return svc.list_datasets(services, Owner.of(principal), offset=offset, limit=limit)


@router.get("/datasets/{dataset_id}", summary="A dataset and its current version")
def get_dataset(dataset_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """The dataset with its current version's columns and warnings."""
    return svc.get_dataset(services, Owner.of(principal), dataset_id)


@router.patch("/datasets/{dataset_id}", summary="Rename, describe, set target or retype")
def patch_dataset(
    dataset_id: str, body: DatasetPatch, principal: AnalystUser, services: Services
) -> dict[str, Any]:
    """Column type overrides create a new version; the rest edits the dataset."""
    return svc.update_dataset(
        services,
        Owner.of(principal),
        dataset_id,
        name=body.name,
        description=body.description,
        target=body.target,
        column_types=body.column_types,
    )


@router.delete("/datasets/{dataset_id}", status_code=204, summary="Delete (restorable)")
def delete_dataset(dataset_id: str, principal: AnalystUser, services: Services) -> None:
    """Soft-delete: the dataset disappears from lists until restored."""
    svc.delete_dataset(services, Owner.of(principal), dataset_id)


@router.post("/datasets/{dataset_id}/restore", summary="Undo a delete")
def restore_dataset(dataset_id: str, principal: AnalystUser, services: Services) -> Any:
    """Bring a deleted dataset back."""
    return svc.restore_dataset(services, Owner.of(principal), dataset_id)


@router.get("/datasets/{dataset_id}/rows", summary="Rows of a version, paged")
def rows(
    dataset_id: str,
    principal: CurrentUser,
    services: Services,
    version: str | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    sort: Annotated[str | None, Query(description="column, or -column for descending")] = None,
    filter: Annotated[
        str | None, Query(description="SQL condition, e.g. age > 30 AND city = 'Oslo'")
    ] = None,
) -> dict[str, Any]:
    """A page of rows, optionally sorted and filtered with a SQL condition."""
    return svc.get_rows(
        services,
        Owner.of(principal),
        dataset_id,
        version_id=version,
        offset=offset,
        limit=limit,
        sort=sort,
        where=filter,
    )


@router.get("/datasets/{dataset_id}/versions", summary="All versions of a dataset")
def versions(dataset_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Versions, oldest first."""
    return {"items": svc.list_versions(services, Owner.of(principal), dataset_id)}


@router.get("/versions/{version_id}", summary="One version")
def get_version(version_id: str, principal: CurrentUser, services: Services) -> dict[str, Any]:
    """A version's metadata, columns, warnings and recipe; ``recipe_impact``
    (``{"text", "facts"}``, what the recipe did to the parent) for versions made by
    applying a recipe, null otherwise."""
    out = svc.version_to_dict(svc.get_version(services, Owner.of(principal), version_id))
    out["recipe_impact"] = (out.get("source") or {}).get("recipe_impact")
    return out


@router.get("/versions/{version_id}/download", summary="Download a version")
def download(
    version_id: str,
    principal: CurrentUser,
    services: Services,
    format: Literal["csv", "parquet"] = "csv",
) -> Response:
    """Stream a version as CSV or Parquet."""
    version = svc.get_version(services, Owner.of(principal), version_id)
    stem = f"{version.dataset_id}-v{version.number}"
    if format == "parquet":
        return StreamingResponse(
            services.blobs.stream(version.blob),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{stem}.parquet"'},
        )
    frame = svc.load_frame(services, version)
    return StreamingResponse(
        svc.iter_csv(frame),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )


Reveal = Annotated[
    bool, Query(description="Show personal-data values unmasked (the dataset's owner only)")
]


def _shown_profile(data: bytes, owner_id: str, viewer_id: str, reveal: bool) -> Response:
    shown = present_profile(data, owner_id=owner_id, viewer_id=viewer_id, reveal=reveal)
    return Response(shown, media_type="application/json")


@router.get("/versions/{version_id}/profile", summary="The stored profile of a version")
def version_profile(
    version_id: str,
    principal: CurrentUser,
    services: Services,
    reveal: Reveal = False,
) -> Response:
    """Per-column statistics, warnings, PII findings and the narrative (precomputed);
    values of personal-data columns are masked unless the owner asks ``reveal=true``."""
    version = svc.get_version(services, Owner.of(principal), version_id)
    data = svc.profile_bytes(services, version)
    return _shown_profile(data, version.owner_id, principal.user_id, reveal)


@router.get("/datasets/{dataset_id}/profile", summary="The profile of the current version")
def dataset_profile(
    dataset_id: str,
    principal: CurrentUser,
    services: Services,
    reveal: Reveal = False,
) -> Response:
    """The current version's stored profile (personal data masked unless ``reveal``)."""
    owner = Owner.of(principal)
    version_id = svc.get_dataset(services, owner, dataset_id)["version_id"]
    if version_id is None:
        raise InvalidInput("This dataset has no version yet.", code="no_version")
    version = svc.get_version(services, owner, version_id)
    data = svc.profile_bytes(services, version)
    return _shown_profile(data, version.owner_id, principal.user_id, reveal)
