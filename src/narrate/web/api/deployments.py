"""Deploy: deployments, revisions and rollback, stages, keys, predictions (single and
batch) and the prediction log."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from narrate.errors import Forbidden, InvalidInput, StorageUnavailable, Unauthorized
from narrate.services import deployments as svc
from narrate.services import predict as serving
from narrate.services.auth import Principal
from narrate.services.datasets import Owner
from narrate.web.api.contract import JobStarted, Page, errors, next_url
from narrate.web.deps import AnalystUser, CurrentUser, Offset, Services, get_principal

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["deploy"])

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1 to 500).")]


# --- models -------------------------------------------------------------------------------


class DeploymentIn(BaseModel):
    """A new deployment: a name and the model version it serves (or a stage to follow)."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Lower-case letters, digits and dashes; part of the URL.")
    model_version_id: str | None = Field(default=None, max_length=32)
    model_id: str | None = Field(
        default=None, max_length=32, description="With follow_stage: the model whose stage."
    )
    follow_stage: Literal["staging", "production"] | None = Field(
        default=None, description="Always serve the model's version in this stage."
    )
    description: str = Field(default="", max_length=2000)
    reason: str = Field(default="", max_length=500)
    shadow_model_version_id: str | None = Field(
        default=None, max_length=32, description="Gets a copy of the traffic; logged only."
    )
    canary_model_version_id: str | None = Field(
        default=None, max_length=32, description="Gets canary_fraction of the traffic."
    )
    canary_fraction: float = Field(default=0.0, ge=0, lt=1)


class DeploymentPatch(BaseModel):
    """A change to a deployment: a new version (a new revision), challengers, description.

    A challenger given as null is removed; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    model_version_id: str | None = Field(default=None, max_length=32)
    follow_stage: Literal["staging", "production"] | None = None
    shadow_model_version_id: str | None = Field(default=None, max_length=32)
    canary_model_version_id: str | None = Field(default=None, max_length=32)
    canary_fraction: float | None = Field(default=None, ge=0, lt=1)
    description: str | None = Field(default=None, max_length=2000)
    drift_thresholds: dict[str, list[float]] | None = Field(
        default=None,
        description='Levels for this deployment\'s drift reports, e.g. {"psi": [0.05, 0.1, '
        "0.2]} (low, medium, high; signals left out keep the defaults); null: the defaults.",
    )
    reason: str = Field(default="", max_length=500)


class RevisionOut(BaseModel):
    """One change of what a deployment serves."""

    number: int
    action: Literal["create", "update", "rollback", "stage"]
    model_version_id: str
    previous_model_version_id: str | None
    shadow_model_version_id: str | None
    canary_model_version_id: str | None
    canary_fraction: float
    actor_id: str
    reason: str
    at: datetime


class DeploymentOut(BaseModel):
    """A deployment."""

    deployment_id: str
    name: str
    description: str
    model_id: str
    model_name: str | None
    task: str | None
    model_version_id: str
    model_version_number: int | None
    previous_model_version_id: str | None
    follow_stage: str | None
    revision: int
    shadow_model_version_id: str | None
    canary_model_version_id: str | None
    canary_fraction: float
    status: Literal["active", "deleted"]
    engine: Literal["serving", "joblib"] = Field(
        description="serving: the copy that loads without scikit-learn; joblib: the fallback."
    )
    engine_note: str | None
    owner_id: str
    created_at: datetime
    updated_at: datetime
    url: str = Field(description="Where to POST rows to predict.")
    drift_thresholds: dict[str, list[float]] = Field(
        description="The levels its drift reports use when a request sets none."
    )


class DeploymentDetailOut(DeploymentOut):
    """A deployment with its latest revisions (newest first)."""

    revisions: list[RevisionOut]


class RollbackIn(BaseModel):
    """Why the deployment goes back (kept in the revision history)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class KeyIn(BaseModel):
    """A new deployment key."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What will use the key.")


class KeyOut(BaseModel):
    """A deployment key, without its secret."""

    key_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreatedOut(KeyOut):
    """A new key: ``key`` is shown this once and never again."""

    key: str


class StageIn(BaseModel):
    """Move a model version to a stage."""

    model_config = ConfigDict(extra="forbid")

    stage: Literal["none", "staging", "production", "archived"]
    reason: str = Field(default="", max_length=500)
    archive_others: bool = Field(
        default=True, description="Archive the version that held staging/production before."
    )


class StageChangeOut(BaseModel):
    """One move between stages."""

    from_stage: str
    to_stage: str
    actor_id: str
    reason: str
    at: datetime


class StageOut(BaseModel):
    """A model version's stage and its history (newest first)."""

    model_version_id: str
    stage: str
    history: list[StageChangeOut]
    switched_deployments: list[str] = Field(
        default_factory=list, description="Deployments following the stage that switched."
    )


class PredictIn(BaseModel):
    """Rows to score: 1 to 10,000 objects of raw column values, as in the uploaded file."""

    rows: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class PredictionOut(BaseModel):
    """One row's prediction."""

    prediction_id: str = Field(description="Quote it when reporting the outcome later.")
    prediction: Any = Field(description="The class (after the tuned threshold) or value.")
    probabilities: dict[str, float] | None = Field(
        default=None, description="Classification: each class's probability."
    )
    interval: dict[str, float | None] | None = Field(
        default=None, description="Regression: low/high of the 90% prediction interval."
    )
    flags: list[str] = Field(
        description="missing:<col>, unseen_category:<col>, out_of_range:<col> — accepted, "
        "but the model saw nothing like it in training."
    )
    arm: Literal["primary", "canary"]


class PredictOut(BaseModel):
    """Predictions, in the order of the rows sent."""

    deployment: str
    revision: int
    model_version_id: str
    arm: Literal["primary", "canary"]
    engine: Literal["serving", "joblib"]
    engine_note: str | None = None
    predictions: list[PredictionOut]
    extra_columns: list[str] = Field(description="Columns sent that the model ignores.")


class BatchStarted(JobStarted):
    """A batch job started: follow ``status_url``, download from ``output_url`` when done."""

    output_url: str


class SignatureOut(BaseModel):
    """The input contract of the version a deployment serves."""

    deployment: str
    model_version_id: str
    signature: dict[str, Any] = Field(
        description="columns (name, type, categories, min, max, example) and example_row."
    )


class PredictionLogOut(BaseModel):
    """One logged prediction."""

    model_config = ConfigDict(extra="allow")

    prediction_id: str
    at: datetime
    model_version_id: str
    arm: str
    caller: str
    latency_ms: float
    inputs: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None = None
    flags: list[str]


class LogPage(BaseModel):
    """A window of the prediction log, oldest first; ``next`` continues after the last."""

    items: list[PredictionLogOut]
    next: str | None


class ArmStats(BaseModel):
    """Traffic and latency of one arm over the window."""

    model_version_id: str | None
    n: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    flagged_share: float | None
    prediction_mean: float | None = Field(
        default=None,
        description="Regression: mean value; classification: share of the most frequent class.",
    )


class StatsOut(BaseModel):
    """Live traffic of a deployment: per-minute counts and latency, and the challenger
    compared with the primary on the same window."""

    deployment: str
    window_hours: float
    total: int
    series: list[dict[str, Any]] = Field(description="minute, n, latency_p50_ms per minute.")
    arms: dict[str, ArmStats]
    agreement_rate: float | None = Field(
        description="Shadow only: share of rows where shadow and primary gave the same "
        "class (regression: within 5% of each other)."
    )


# --- helpers --------------------------------------------------------------------------------


def _flush_log(services: Services) -> None:
    """Write what the log still buffers, so a read sees every prediction made so far; a
    store that is away only delays the newest (the stored files are still read)."""
    sink = services.extras.get("prediction_log")
    if sink is None:
        return
    try:
        sink.flush()
    except StorageUnavailable as exc:
        log.warning("could not flush the prediction log before a read: %s", exc.message)


def _invalidate(services: Services, name: str) -> None:
    serving.runtime_cache(services).refresh(name)


async def _runtime(
    services: Services, principal: Principal, name: str
) -> serving.DeploymentRuntime:
    """The loaded deployment, if the caller may see it (404 otherwise)."""
    return await run_in_threadpool(
        serving.runtime_cache(services).runtime, name, Owner.of(principal)
    )


async def _logged_runtime(
    services: Services, principal: Principal, name: str
) -> serving.DeploymentRuntime:
    """The loaded deployment, after the log's buffer is written so a read sees it all."""
    runtime = await _runtime(services, principal, name)
    await run_in_threadpool(_flush_log, services)
    return runtime


# --- deployments ----------------------------------------------------------------------------


@router.post(
    "/deployments",
    status_code=201,
    summary="Deploy a model version under a name",
    response_model=DeploymentOut,
    responses=errors(401, 403, 404, 409, 422),
)
async def create(body: DeploymentIn, principal: AnalystUser, services: Services) -> Any:
    """Revision 1 of a new deployment; it answers at ``url`` at once."""
    out = await run_in_threadpool(
        lambda: svc.create_deployment(services, Owner.of(principal), **body.model_dump())
    )
    await run_in_threadpool(_invalidate, services, out["name"])
    return out


@router.get(
    "/deployments",
    summary="List deployments",
    response_model=Page[DeploymentOut],
    responses=errors(401, 422),
)
def list_all(
    principal: CurrentUser, services: Services, offset: Offset = 0, limit: Limit = 50
) -> Any:
    """The caller's deployments (everyone's for admins), newest first."""
    items, total = svc.list_deployments(services, Owner.of(principal), offset=offset, limit=limit)
    return {
        "items": items,
        "total": total,
        "next": next_url("/api/v1/deployments", offset, limit, total),
    }


@router.get(
    "/deployments/{name}",
    summary="A deployment with its revisions",
    response_model=DeploymentDetailOut,
    responses=errors(401, 404),
)
def get(name: str, principal: CurrentUser, services: Services) -> Any:
    """What it serves, how, and the latest revisions (who changed what, when and why)."""
    return svc.get_deployment(services, Owner.of(principal), name)


@router.patch(
    "/deployments/{name}",
    summary="Change the served version (a new revision), challengers or description",
    response_model=DeploymentDetailOut,
    responses=errors(401, 403, 404, 409, 422),
)
async def patch(
    name: str, body: DeploymentPatch, principal: AnalystUser, services: Services
) -> Any:
    """The new version is loaded before this returns; requests in flight finish on the old."""
    given = body.model_dump(exclude_unset=True)
    out = await run_in_threadpool(
        lambda: svc.update_deployment(services, Owner.of(principal), name, **given)
    )
    await run_in_threadpool(_invalidate, services, name)
    return out


@router.delete(
    "/deployments/{name}",
    status_code=204,
    summary="Undeploy (restorable)",
    responses=errors(401, 403, 404),
)
def delete(name: str, principal: AnalystUser, services: Services) -> None:
    """Predict answers 404 and keys stop working; revisions and the log are kept."""
    svc.delete_deployment(services, Owner.of(principal), name)
    serving.runtime_cache(services).invalidate(name)


@router.post(
    "/deployments/{name}/restore",
    summary="Undo an undeploy",
    response_model=DeploymentOut,
    responses=errors(401, 403, 404, 409),
)
async def restore(name: str, principal: AnalystUser, services: Services) -> Any:
    """The deployment serves its last state again."""
    out = await run_in_threadpool(svc.restore_deployment, services, Owner.of(principal), name)
    await run_in_threadpool(_invalidate, services, name)
    return out


@router.post(
    "/deployments/{name}/rollback",
    summary="Go back to the previous revision",
    response_model=DeploymentDetailOut,
    responses=errors(401, 403, 404, 409, 422),
)
async def rollback(
    name: str, principal: AnalystUser, services: Services, body: RollbackIn | None = None
) -> Any:
    """Atomic: one transaction copies the previous revision's state into a new revision.
    A request in flight is answered wholly by the old or wholly by the new version."""
    reason = body.reason if body else ""
    out = await run_in_threadpool(
        lambda: svc.rollback(services, Owner.of(principal), name, reason=reason)
    )
    await run_in_threadpool(_invalidate, services, name)
    return out


@router.get(
    "/deployments/{name}/revisions",
    summary="Every revision of a deployment",
    response_model=Page[RevisionOut],
    responses=errors(401, 404, 422),
)
def revisions(
    name: str, principal: CurrentUser, services: Services, offset: Offset = 0, limit: Limit = 50
) -> Any:
    """Newest first: who changed the served version, when and why."""
    items, total = svc.list_revisions(
        services, Owner.of(principal), name, offset=offset, limit=limit
    )
    path = f"/api/v1/deployments/{name}/revisions"
    return {"items": items, "total": total, "next": next_url(path, offset, limit, total)}


@router.get(
    "/deployments/{name}/signature",
    summary="The input contract of the served version",
    response_model=SignatureOut,
    responses=errors(401, 404),
)
async def signature(name: str, principal: CurrentUser, services: Services) -> Any:
    """Columns with types, allowed categories and ranges seen in training, and a real row
    (the UI's try-it form is generated from it)."""
    runtime = await _runtime(services, principal, name)
    return {
        "deployment": name,
        "model_version_id": runtime.primary.model_version_id,
        "signature": runtime.primary.signature,
    }


# --- keys ---------------------------------------------------------------------------------


@router.post(
    "/deployments/{name}/keys",
    status_code=201,
    summary="Create a key that can only predict on this deployment",
    response_model=KeyCreatedOut,
    responses=errors(401, 403, 404, 422),
)
def create_key(name: str, body: KeyIn, principal: AnalystUser, services: Services) -> Any:
    """For applications: the key calls this deployment's predict and batch routes and
    nothing else. It is shown once; store it now."""
    return svc.create_key(services, Owner.of(principal), name, body.name)


@router.get(
    "/deployments/{name}/keys",
    summary="A deployment's keys",
    response_model=Page[KeyOut],
    responses=errors(401, 404),
)
def keys(name: str, principal: CurrentUser, services: Services) -> Any:
    """Names, prefixes and use; never the secret."""
    items = svc.list_keys(services, Owner.of(principal), name)
    return {"items": items, "total": len(items), "next": None}


@router.delete(
    "/deployments/{name}/keys/{key_id}",
    status_code=204,
    summary="Revoke a deployment key",
    responses=errors(401, 403, 404),
)
def revoke_key(name: str, key_id: str, principal: AnalystUser, services: Services) -> None:
    """The key stops working at once here, and within NARRATE_DEPLOY_REFRESH_S in other
    server processes."""
    svc.revoke_key(services, Owner.of(principal), name, key_id)
    serving.runtime_cache(services).forget_keys()


# --- stages -------------------------------------------------------------------------------


@router.post(
    "/model-versions/{mv_id}/stage",
    summary="Move a model version to a stage",
    response_model=StageOut,
    responses=errors(401, 403, 404, 422),
)
async def set_stage(mv_id: str, body: StageIn, principal: AnalystUser, services: Services) -> Any:
    """none → staging → production → archived. Deployments that follow the stage switch
    to this version (a new revision each)."""
    out = await run_in_threadpool(
        lambda: svc.set_stage(
            services,
            Owner.of(principal),
            mv_id,
            body.stage,
            reason=body.reason,
            archive_others=body.archive_others,
        )
    )
    for name in out["switched_deployments"]:
        await run_in_threadpool(_invalidate, services, name)
    return out


@router.get(
    "/model-versions/{mv_id}/stage",
    summary="A model version's stage and its history",
    response_model=StageOut,
    responses=errors(401, 404),
)
def get_stage(mv_id: str, principal: CurrentUser, services: Services) -> Any:
    """Every move between stages: from, to, who, when, why."""
    return svc.stage_history(services, Owner.of(principal), mv_id)


# --- predictions --------------------------------------------------------------------------


async def _predict_access(
    request: Request, services: Services, name: str
) -> tuple[serving.DeploymentRuntime, str]:
    """The runtime to answer with and the caller's label, for a user or a deployment key.

    Raises:
        Unauthorized: no credentials, or an unknown or revoked key.
        Forbidden: a key of another deployment.
        NotFound: no such deployment for this user, or it is undeployed.
    """
    cache = serving.runtime_cache(services)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.startswith(svc.DEPLOYMENT_KEY_PREFIX):
        grant = cache.key(token)
        if grant is None:
            raise Unauthorized("This deployment key is unknown or was revoked.", code="key_revoked")
        runtime = cache.cached(name)
        if runtime is None:
            runtime = await run_in_threadpool(cache.runtime, name)
        if runtime.deployment_id != grant.deployment_id:
            raise Forbidden(
                "This key belongs to another deployment; it can only predict there.",
                code="key_scope",
                details={"deployment": name},
            )
        return runtime, f"key:{grant.prefix}"
    principal = await get_principal(request, services)
    owner = Owner.of(principal)
    found = cache.cached(name)
    if found is None or not (owner.is_admin or found.owner_id == owner.user_id):
        found = await run_in_threadpool(cache.runtime, name, owner)
    return found, principal.username


_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictIn.model_json_schema()}},
    }
}


@router.post(
    "/deployments/{name}/predict",
    summary="Predict rows with a deployment",
    response_model=PredictOut,
    responses=errors(400, 401, 403, 404, 413, 422),
    openapi_extra=_PREDICT_BODY,
)
async def predict(name: str, request: Request, services: Services) -> Response:
    """Send ``{"rows": [{column: value, ...}, ...]}`` (1 to 10,000 rows of raw values, as
    in the uploaded file) with a bearer token or a deployment key.

    A missing column, a wrong type or an unparseable value is a 422 naming the row index
    and column. Unseen categories, values outside the training range and missing values
    are accepted and flagged per row; extra columns are ignored and listed once.
    """
    started = time.perf_counter()
    runtime, caller = await _predict_access(request, services, name)
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}.",
            code="invalid_json",
            details={"parameter": "body"},
        ) from exc
    if not isinstance(body, dict) or "rows" not in body:
        raise InvalidInput(
            'Send a JSON object {"rows": [{...}, ...]}.',
            code="invalid_rows",
            details={"parameter": "rows"},
        )
    rows = body["rows"]
    if isinstance(rows, list) and len(rows) <= serving.INLINE_ROWS:
        result = serving.predict_rows(services, runtime, rows, caller)
        content = serving.dumps(result.body)
    else:
        result = await run_in_threadpool(serving.predict_rows, services, runtime, rows, caller)
        content = await run_in_threadpool(serving.dumps, result.body)
    request.app.state.metrics.predictions.observe(
        runtime.name, result.body, time.perf_counter() - started
    )
    return Response(content, media_type="application/json")


# --- batch and the log ----------------------------------------------------------------------


@router.post(
    "/deployments/{name}/batch",
    status_code=202,
    summary="Score a file (or a dataset version) as a job",
    response_model=BatchStarted,
    responses=errors(400, 401, 403, 404, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["version_id"],
                        "properties": {"version_id": {"type": "string"}},
                    }
                },
            },
        }
    },
)
async def batch(name: str, request: Request, services: Services) -> Any:
    """Any format Upload reads, streamed in chunks (a file larger than memory works).
    Follow the job at ``status_url``; download at ``/api/v1/jobs/{job_id}/output``."""
    from narrate.web.api.batch import start_batch_from_request

    runtime, caller = await _predict_access(request, services, name)
    return await start_batch_from_request(request, services, runtime, caller)


@router.get(
    "/deployments/{name}/predictions",
    summary="Page through the prediction log",
    response_model=LogPage,
    responses=errors(401, 404, 422),
)
async def predictions(
    name: str,
    principal: CurrentUser,
    services: Services,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> Any:
    """Oldest first from ``since``; follow ``next`` for more. Predictions appear within
    NARRATE_PREDICTION_LOG_FLUSH_S of being made."""
    from narrate.services.prediction_log import read_predictions

    runtime = await _logged_runtime(services, principal, name)
    items = await run_in_threadpool(
        lambda: read_predictions(
            services.db,
            services.blobs,
            runtime.deployment_id,
            since=since,
            until=until,
            limit=limit,
            after_id=after_id,
        )
    )
    nxt = None
    if len(items) >= limit:  # a shadow's twin may make a page one longer
        last = items[-1]
        query = {"since": last["at"], "after_id": last["prediction_id"], "limit": limit}
        if until:
            query["until"] = until.isoformat()
        nxt = f"/api/v1/deployments/{name}/predictions?{urlencode(query)}"
    return {"items": items, "next": nxt}


@router.get(
    "/deployments/{name}/predictions/export",
    summary="Download a window of the prediction log",
    responses={
        **errors(401, 404, 422),
        200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}},
    },
    response_class=FileResponse,
)
async def export(
    name: str,
    principal: CurrentUser,
    services: Services,
    since: datetime | None = None,
    until: datetime | None = None,
    format: Literal["csv", "parquet"] = "parquet",
) -> Any:
    """Every logged prediction in the window, as CSV or Parquet."""
    import shutil
    import tempfile
    from pathlib import Path

    from narrate.services.prediction_log import export_predictions
    from narrate.services.spool import spool_dir

    runtime = await _logged_runtime(services, principal, name)
    folder = Path(
        tempfile.mkdtemp(prefix="narrate-upload-export-", dir=spool_dir(services.settings))
    )
    out = folder / f"predictions-{name}.{format}"
    await run_in_threadpool(
        lambda: export_predictions(
            services.db,
            services.blobs,
            runtime.deployment_id,
            since=since,
            until=until,
            fmt=format,
            out_path=out,
        )
    )
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        out,
        media_type=media,
        filename=out.name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@router.get(
    "/deployments/{name}/stats",
    summary="Live traffic, latency and the challenger compared",
    response_model=StatsOut,
    responses=errors(401, 404, 422),
)
async def stats(
    name: str,
    principal: CurrentUser,
    services: Services,
    hours: Annotated[float, Query(gt=0, le=24 * 31)] = 24,
) -> Any:
    """Per-minute counts and latency over the window (the deployment page's sparkline),
    and per arm: traffic, latency, flags; for a shadow, how often it agrees."""
    from narrate.services.deploy_stats import deployment_stats

    runtime = await _logged_runtime(services, principal, name)
    return await run_in_threadpool(deployment_stats, services, runtime, hours)


@router.get(
    "/deployments/{name}/batch/{job_id}",
    summary="A batch job's status and progress",
    responses=errors(401, 403, 404),
)
async def batch_status(name: str, job_id: str, request: Request, services: Services) -> Any:
    """Status, progress 0-1 and, when done, rows scored and the output's expiry. Works
    with the deployment's key as well as a user token."""
    from narrate.web.api.batch import job_status

    runtime, _ = await _predict_access(request, services, name)
    return await run_in_threadpool(job_status, services, runtime, job_id)


@router.post(
    "/deployments/{name}/batch/{job_id}/cancel",
    status_code=202,
    summary="Cancel a batch job",
    responses=errors(401, 403, 404),
)
async def batch_cancel(name: str, job_id: str, request: Request, services: Services) -> Any:
    """The job stops at its next chunk; its temporary files are removed."""
    from narrate.web.api.batch import cancel

    runtime, _ = await _predict_access(request, services, name)
    return await run_in_threadpool(cancel, services, runtime, job_id)


@router.get(
    "/deployments/{name}/batch/{job_id}/output",
    summary="Download a batch job's output",
    responses={
        **errors(401, 403, 404, 409, 422),
        200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}},
    },
    response_class=Response,
)
async def batch_output(
    name: str,
    job_id: str,
    request: Request,
    services: Services,
    format: Literal["csv", "parquet"] = "parquet",
) -> Response:
    """Input columns + prediction + probabilities + prediction_id + flags."""
    from narrate.web.api.batch import batch_output as output

    runtime, _ = await _predict_access(request, services, name)
    return await run_in_threadpool(output, services, runtime, job_id, format)
