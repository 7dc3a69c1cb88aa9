"""Batch scoring over HTTP: start a job from an upload or a dataset version, follow it,
download its output as Parquet or CSV."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from narrate.bootstrap import Container
from narrate.core.data.readers import check_media_type
from narrate.errors import InvalidInput, InvalidState, NotFound
from narrate.jobs import records
from narrate.services import batch as svc
from narrate.services import datasets as datasets_svc
from narrate.services.predict import DeploymentRuntime
from narrate.services.spool import spool_dir, upload_spool
from narrate.storage.sql.tables import Job
from narrate.storage.sql.visibility import Owner, visible_job
from narrate.web.api.contract import errors
from narrate.web.api.datasets import _check_declared_size, _read_form, _spool
from narrate.web.deps import CurrentUser, Services

__all__ = ["router", "start_batch_from_request"]

router = APIRouter(tags=["deploy"])


async def start_batch_from_request(
    request: Request, services: Container, runtime: DeploymentRuntime, caller: str
) -> dict[str, Any]:
    """Spool the uploaded file (multipart ``file``) or read ``{"version_id"}``, then queue.

    Raises:
        InvalidInput: no file and no version id.
        TooLarge: the file is over ``NARRATE_MAX_UPLOAD_MB``.
    """
    settings = services.settings
    limit, limit_mb = settings.max_upload_bytes, settings.max_upload_mb
    content_type = request.headers.get("content-type", "")
    common = {
        "deployment_id": runtime.deployment_id,
        "deployment_name": runtime.name,
        "owner_id": runtime.owner_id,
        "caller": caller,
    }
    if content_type.startswith("multipart/form-data"):
        _check_declared_size(request, limit, limit_mb)
        with upload_spool(settings) as tmp:
            path = tmp / "input.bin"
            form = await _read_form(request, limit, limit_mb)
            try:
                file = form.get("file")
                if not isinstance(file, StarletteUploadFile):
                    raise InvalidInput(
                        "Send the file to score in the multipart field 'file'.",
                        code="missing_file",
                        details={"parameter": "file"},
                    )
                filename = datasets_svc.clean_filename(file.filename or "upload")
                check_media_type(file.content_type, filename=filename)
                await run_in_threadpool(_spool, file, path, limit, limit_mb)
            finally:
                await form.close()
            return await run_in_threadpool(
                lambda: svc.start_batch(
                    services, input_path=path, filename=filename, version_id=None, **common
                )
            )
    try:
        body = orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}.",
            code="invalid_json",
            details={"parameter": "body"},
        ) from exc
    version_id = body.get("version_id") if isinstance(body, dict) else None
    if not isinstance(version_id, str) or not version_id:
        raise InvalidInput(
            "Send a file (multipart field 'file') or JSON {\"version_id\": ...}.",
            code="missing_file",
            details={"parameter": "file"},
        )
    owner = Owner(runtime.owner_id, False)
    await run_in_threadpool(datasets_svc.get_version, services, owner, version_id)
    return await run_in_threadpool(
        lambda: svc.start_batch(
            services, input_path=None, filename=None, version_id=version_id, **common
        )
    )


def _batch_job(services: Container, runtime: DeploymentRuntime, job_id: str) -> Job:
    with services.db.session() as s:
        job = s.get(Job, job_id)
        if (
            job is None
            or job.kind != "deployment.batch"
            or (job.params or {}).get("deployment_id") != runtime.deployment_id
        ):
            raise NotFound(
                f"Deployment '{runtime.name}' has no batch job '{job_id}'.",
                details={"job_id": job_id},
            )
        s.expunge(job)
        return job


def job_status(services: Container, runtime: DeploymentRuntime, job_id: str) -> dict[str, Any]:
    """A batch job's status, progress and result, for a user or the deployment's key."""
    job = _batch_job(services, runtime, job_id)
    return records.job_to_dict(services.db, job, with_events=False)


def _csv_stream(local: Path, folder: Path) -> Iterator[bytes]:
    import io

    import polars as pl
    import pyarrow.parquet as pq

    try:
        first = True
        for batch in pq.ParquetFile(local).iter_batches(batch_size=50_000):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a record batch is a frame
            out = io.BytesIO()
            frame.write_csv(out, include_header=first)
            first = False
            yield out.getvalue()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def output_response(services: Container, job: Job, fmt: str) -> Response:
    """The output of a finished batch job as a download.

    Raises:
        InvalidState: the job has not succeeded, or its output expired.
    """
    result = job.result or {}
    blob = result.get("output_blob")
    if job.status != "succeeded" or not blob:
        why = "expired" if result.get("expired") else f"is {job.status}"
        raise InvalidState(
            f"Batch job '{job.id}' has no output: it {why}.",
            details={"job_id": job.id, "status": job.status},
        )
    name = f"scored-{job.id}"
    if fmt == "parquet":
        return StreamingResponse(
            services.blobs.stream(blob),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
        )
    folder = Path(tempfile.mkdtemp(prefix=svc.BATCH_PREFIX, dir=spool_dir(services.settings)))
    local = services.blobs.copy_to(blob, folder / "output.parquet")
    return StreamingResponse(
        _csv_stream(local, folder),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


_OUTPUT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/vnd.apache.parquet": {}, "text/csv": {}},
        "description": "Input columns + prediction + probabilities + prediction_id + flags.",
    }
}


@router.get(
    "/jobs/{job_id}/output",
    summary="Download a batch job's output",
    responses={**errors(401, 404, 409, 422), **_OUTPUT},
    response_class=Response,
)
async def job_output(
    job_id: str,
    principal: CurrentUser,
    services: Services,
    format: Literal["csv", "parquet"] = "parquet",
) -> Response:
    """The scored rows of a finished batch job, as Parquet or CSV (streamed)."""

    def load() -> Job:
        with services.db.session() as s:
            job = visible_job(s, Owner.of(principal), job_id)
            if job.kind != "deployment.batch":
                raise NotFound(f"Job '{job_id}' is not a batch job.", details={"job_id": job_id})
            s.expunge(job)
            return job

    job = await run_in_threadpool(load)
    return await run_in_threadpool(output_response, services, job, format)


def batch_output(
    services: Container, runtime: DeploymentRuntime, job_id: str, fmt: str
) -> Response:
    """The output of a deployment's batch job (for the deployment's key too)."""
    return output_response(services, _batch_job(services, runtime, job_id), fmt)


def cancel(services: Container, runtime: DeploymentRuntime, job_id: str) -> dict[str, Any]:
    """Cancel a deployment's batch job."""
    job = _batch_job(services, runtime, job_id)
    updated = records.request_cancel(services.db, job.id, owner_id=None)
    if updated.status == "cancelled":  # cancelled while queued: the job will never run
        shutil.rmtree((job.params or {}).get("folder") or "/nonexistent", ignore_errors=True)
    return records.job_to_dict(services.db, updated, with_events=False)
