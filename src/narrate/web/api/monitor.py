"""Monitor: actuals (the ground truth of logged predictions) and live performance."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from narrate.errors import InvalidInput, StorageUnavailable, UnsupportedMediaType
from narrate.services import actuals as actuals_svc
from narrate.services import performance as svc
from narrate.storage.sql.visibility import Owner
from narrate.web.api.contract import errors
from narrate.web.api.deployments import _predict_access
from narrate.web.deps import CurrentUser, Services

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["monitor"])


class UnmatchedOut(BaseModel):
    """Actuals whose prediction id is not in the deployment's log (yet)."""

    count: int
    examples: list[str] = Field(description="Up to 20 of the ids.")


class ActualsOut(BaseModel):
    """What a post of actuals did."""

    received: int = Field(description="Actuals in the request.")
    matched: int = Field(description="Of those, how many name a logged prediction.")
    replaced: int = Field(description="How many replaced an earlier actual (kept as a record).")
    unmatched: UnmatchedOut


class WindowOut(BaseModel):
    """Metrics of the labelled predictions answered in one window."""

    start: datetime
    end: datetime
    is_complete: bool = Field(description="The window has ended.")
    n: int = Field(description="Labelled predictions in the window.")
    metrics: dict[str, float]
    intervals: dict[str, list[float]] = Field(description="95% interval per metric: [lo, hi].")


class GroupOut(BaseModel):
    """One model version's or arm's performance over the range and per window."""

    key: str
    n: int
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    windows: list[WindowOut]
    baseline: dict[str, float] | None = None


class ByOut(BaseModel):
    """The breakdown asked for with ``by``."""

    kind: Literal["version", "arm"]
    groups: list[GroupOut]


class DegradationOut(BaseModel):
    """The primary metric dropped more than allowed below its baseline."""

    metric: str
    baseline: float
    current: float
    relative_drop: float
    threshold: float


class FactOut(BaseModel):
    """A number the narrative uses, and where in the response it comes from."""

    name: str
    value: float
    source: str


class NarrativeOut(BaseModel):
    """The performance in plain words; every number in ``text`` is one of ``facts``."""

    text: str
    facts: list[FactOut]


class PerformanceOut(BaseModel):
    """A deployment's live performance against its holdout baseline."""

    deployment: str
    model_version_id: str
    task: str
    window: str
    since: datetime
    until: datetime
    baseline: dict[str, float] = Field(description="The deployed version's holdout metrics.")
    primary_metric: str
    windows: list[WindowOut]
    labelled: int
    by: ByOut | None = None
    degraded: bool
    degradation: DegradationOut | None
    settings: dict[str, float]
    interval_method: dict[str, Any]
    narrative: NarrativeOut


def _flush_log(services: Services) -> None:
    """Write what the prediction log buffers, so matching and windows see it all."""
    sink = services.extras.get("prediction_log")
    if sink is None:
        return
    try:
        sink.flush()
    except StorageUnavailable as exc:
        log.warning("could not flush the prediction log before reading it: %s", exc.message)


async def _items(request: Request) -> tuple[list[tuple[Any, Any]], dict[str, str]]:
    """The ``(prediction_id, actual)`` pairs of a JSON body or a CSV upload, and the CSV
    column names (for errors)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        try:
            file, fields = form.get("file"), {}
            for name in ("id_column", "actual_column"):
                value = form.get(name)
                if not isinstance(value, str) or not value.strip():
                    raise InvalidInput(
                        f"Name the CSV column in the form field '{name}'.",
                        code="missing_column",
                        details={"parameter": name},
                    )
                fields[name] = value.strip()
            if not isinstance(file, UploadFile):
                raise InvalidInput(
                    "Send the CSV file in the multipart field 'file'.",
                    code="missing_file",
                    details={"parameter": "file"},
                )
            data = await file.read()
        finally:
            await form.close()
        items = await run_in_threadpool(lambda: actuals_svc.parse_actuals_csv(data, **fields))
        return items, fields
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaType(
            f"Content type '{content_type}' is not read here; send JSON or a multipart CSV upload.",
            details={"parameter": "body", "content_type": content_type},
        )
    try:
        body = orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}.",
            code="invalid_json",
            details={"parameter": "body"},
        ) from exc
    return actuals_svc.parse_actuals_json(body), {}


_ACTUALS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["actuals"],
                    "properties": {
                        "actuals": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": actuals_svc.MAX_ACTUALS,
                            "items": {
                                "type": "object",
                                "required": ["prediction_id", "actual"],
                                "properties": {
                                    "prediction_id": {"type": "string", "maxLength": 64},
                                    "actual": {},
                                },
                            },
                        }
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "id_column", "actual_column"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "id_column": {"type": "string"},
                        "actual_column": {"type": "string"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/deployments/{name}/actuals",
    summary="Post the actual outcomes of logged predictions",
    response_model=ActualsOut,
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra=_ACTUALS_BODY,
)
async def post_actuals(name: str, request: Request, services: Services) -> Any:
    """JSON ``{"actuals": [{"prediction_id", "actual"}, ...]}`` (1 to 100,000) or a CSV
    upload (multipart ``file`` with the form fields ``id_column`` and ``actual_column``).

    An actual is a class label the model knows (classification) or a number
    (regression); a bad one is a 422 naming the row (and CSV line and column) and nothing
    is written. Posting an actual again replaces it and keeps the old value as a record.
    The owner's token or a key of this deployment may post.
    """
    runtime, _ = await _predict_access(request, services, name)
    items, columns = await _items(request)
    await run_in_threadpool(_flush_log, services)
    return await run_in_threadpool(
        lambda: actuals_svc.record_actuals(
            services,
            runtime.deployment_id,
            items,
            id_column=columns.get("id_column"),
            actual_column=columns.get("actual_column"),
        )
    )


@router.get(
    "/deployments/{name}/performance",
    summary="A deployment's live performance per window against its baseline",
    response_model=PerformanceOut,
    responses=errors(401, 403, 404, 422),
)
async def performance(
    name: str,
    principal: CurrentUser,
    services: Services,
    window: Annotated[
        str, Query(max_length=16, description="Window length: 1d, 7d, 30d (or 12h, 2w ...).")
    ] = "1d",
    since: Annotated[
        datetime | None, Query(description="Start of the range (default: 12 windows back).")
    ] = None,
    until: Annotated[datetime | None, Query(description="End of the range (default: now).")] = (
        None
    ),
    by: Annotated[
        Literal["version", "arm"] | None, Query(description="Also break down by this.")
    ] = None,
) -> Any:
    """Metrics of the logged predictions that have actuals, per window (by when each
    prediction was answered) with 95% intervals, the deployed version's holdout metrics
    as the baseline, and ``degraded`` when the primary metric of the newest complete
    window dropped more than ``NARRATE_PERFORMANCE_DROP`` below it over at least
    ``NARRATE_PERFORMANCE_MIN_ROWS`` labelled cases."""
    await run_in_threadpool(_flush_log, services)
    return await run_in_threadpool(
        lambda: svc.deployment_performance(
            services,
            Owner.of(principal),
            name,
            window=window,
            since=since,
            until=until,
            by=by,
        )
    )
