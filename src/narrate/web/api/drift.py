"""Monitor: drift reports over HTTP — version vs version, a deployment's live traffic,
one report, and a deployment's history."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from narrate.errors import StorageUnavailable
from narrate.services import drift as svc
from narrate.storage.sql.visibility import Owner
from narrate.web.api.contract import JobStarted, Page, errors, next_url
from narrate.web.deps import AnalystUser, CurrentUser, Offset, Services

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["monitor"])

Id = Annotated[str, Field(min_length=1, max_length=32)]
Levels = Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=3, max_length=3)]
Level = Literal["none", "low", "medium", "high"]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1 to 500).")]


class ThresholdsIn(BaseModel):
    """Where each signal reaches low, medium and high; a signal left out keeps its
    defaults (PSI 0.1 / 0.2 / 0.25, missing-rate change 0.02 / 0.05 / 0.1, new-category
    rate 0.01 / 0.05 / 0.1)."""

    model_config = ConfigDict(extra="forbid")

    psi: Levels | None = None
    missing_rate: Levels | None = None
    new_category_rate: Levels | None = None


class ThresholdsOut(BaseModel):
    """The thresholds a report used."""

    psi: list[float]
    missing_rate: list[float]
    new_category_rate: list[float]


class DriftIn(BaseModel):
    """Compare two dataset versions."""

    model_config = ConfigDict(extra="forbid")

    reference_version_id: Id = Field(description="The baseline, e.g. the training data.")
    current_version_id: Id = Field(description="What the model sees now.")
    columns: list[Annotated[str, Field(max_length=255)]] | None = Field(
        default=None, max_length=1000, description="Columns to compare (default: all shared)."
    )
    thresholds: ThresholdsIn | None = None


class DeploymentDriftIn(BaseModel):
    """Compare a deployment's recent traffic with its model's training data."""

    model_config = ConfigDict(extra="forbid")

    window: str = Field(
        default="7d", max_length=16, description="How far back: 30m, 24h, 7d, 2w (≤ 366 days)."
    )
    reference_version_id: Id | None = Field(
        default=None, description="Another reference (default: the training data)."
    )
    thresholds: ThresholdsIn | None = None


class HistogramOut(BaseModel):
    """Shares per bin on both sides: numeric bins between ``edges`` (right-closed), or
    ``categories``."""

    edges: list[float] | None = None
    categories: list[str] | None = None
    reference: list[float]
    current: list[float]


class DriftColumnOut(BaseModel):
    """How far one column (or the predictions) moved."""

    column: str
    kind: Literal["numeric", "categorical"]
    level: Level
    reasons: list[str] = Field(description="Signals that reached at least 'low'.")
    psi: float | None
    kl: float | None
    wasserstein: float | None = Field(
        default=None, description="Numeric: Wasserstein-1 distance / reference std."
    )
    wasserstein_raw: float | None = None
    ks: float | None = None
    ks_p: float | None = None
    chi2: float | None = None
    chi2_p: float | None = None
    js: float | None = Field(default=None, description="Jensen–Shannon distance, base 2.")
    missing_rate_reference: float | None
    missing_rate_current: float | None
    missing_rate_change: float | None
    new_category_rate: float | None = None
    new_categories: list[str] = Field(default_factory=list)
    n_reference: int
    n_current: int
    histogram: HistogramOut | None
    importance_rank: int | None = Field(
        default=None,
        description="The input's rank by the model's stored permutation importance (1 = "
        "most important), in deployment reports once importances were computed.",
    )


class OverallOut(BaseModel):
    """The report in a few numbers."""

    level: Level
    columns: int
    drifted: int
    share_drifted: float
    by_level: dict[str, int]
    most_drifted: list[str]
    prediction_level: Level | None


class FactOut(BaseModel):
    """A number the narrative uses, and where in the report it comes from."""

    name: str
    value: float
    source: str


class NarrativeOut(BaseModel):
    """The report in plain words; every number in ``text`` is one of ``facts``."""

    text: str
    facts: list[FactOut]


class SideOut(BaseModel):
    """What one side of the comparison is, with its row counts."""

    kind: Literal["dataset_version", "training_data", "prediction_log"]
    version_id: str | None = None
    dataset_id: str | None = None
    model_version_id: str | None = None
    deployment: str | None = None
    window: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    rows: int | None = Field(default=None, description="Rows there were.")
    sampled_rows: int | None = Field(default=None, description="Rows compared (sample).")
    scored_rows: int | None = Field(
        default=None, description="Reference rows scored for the prediction comparison."
    )


class DriftReportSummaryOut(BaseModel):
    """A drift report as listed."""

    report_id: str
    status: Literal["queued", "running", "ready", "failed"]
    created_at: datetime
    job_id: str | None
    deployment: str | None
    reference: SideOut
    current: SideOut
    overall: OverallOut | None


class DriftReportOut(DriftReportSummaryOut):
    """A whole drift report: columns most drifted first, predictions, narrative."""

    columns: list[DriftColumnOut]
    prediction: DriftColumnOut | None
    narrative: NarrativeOut | None
    thresholds: ThresholdsOut | None


class DriftReportListItem(DriftReportSummaryOut):
    """A listed report with its narrative text."""

    narrative: str | None


def _thresholds(body: ThresholdsIn | None) -> dict[str, list[float]] | None:
    return body.model_dump(exclude_none=True) if body is not None else None


def _flush_log(services: Services) -> None:
    """Write what the prediction log buffers, so the window holds every prediction."""
    sink = services.extras.get("prediction_log")
    if sink is None:
        return
    try:
        sink.flush()
    except StorageUnavailable as exc:
        log.warning("could not flush the prediction log before a drift report: %s", exc.message)


@router.post(
    "/drift",
    status_code=202,
    summary="Compare two dataset versions (drift report job)",
    response_model=JobStarted,
    responses=errors(401, 403, 404, 422),
)
async def start(body: DriftIn, principal: AnalystUser, services: Services) -> Any:
    """Queue a drift report; ``created_id`` is the report, ready when the job succeeds."""
    return await run_in_threadpool(
        lambda: svc.start_version_drift(
            services,
            Owner.of(principal),
            reference_version_id=body.reference_version_id,
            current_version_id=body.current_version_id,
            columns=body.columns,
            thresholds=_thresholds(body.thresholds),
        )
    )


@router.post(
    "/deployments/{name}/drift",
    status_code=202,
    summary="Compare a deployment's recent traffic with its training data",
    response_model=JobStarted,
    responses=errors(401, 403, 404, 409, 422),
)
async def start_for_deployment(
    name: str, body: DeploymentDriftIn, principal: AnalystUser, services: Services
) -> Any:
    """Current = the inputs and predictions logged in ``window``; reference = the data the
    served model version was trained on (or ``reference_version_id``)."""
    await run_in_threadpool(_flush_log, services)
    return await run_in_threadpool(
        lambda: svc.start_deployment_drift(
            services,
            Owner.of(principal),
            name,
            window=body.window,
            reference_version_id=body.reference_version_id,
            thresholds=_thresholds(body.thresholds),
        )
    )


@router.get(
    "/drift-reports/{report_id}",
    summary="A drift report",
    response_model=DriftReportOut,
    responses=errors(401, 404),
)
async def get(report_id: str, principal: CurrentUser, services: Services) -> Any:
    """Its status; once ready, every column's statistics and level, the predictions, the
    overall summary and the narrative."""
    return await run_in_threadpool(svc.get_report, services, Owner.of(principal), report_id)


@router.get(
    "/deployments/{name}/drift-reports",
    summary="A deployment's drift reports",
    response_model=Page[DriftReportListItem],
    responses=errors(401, 404, 422),
)
async def history(
    name: str, principal: CurrentUser, services: Services, offset: Offset = 0, limit: Limit = 50
) -> Any:
    """Newest first."""
    items, total = await run_in_threadpool(
        lambda: svc.list_deployment_reports(
            services, Owner.of(principal), name, offset=offset, limit=limit
        )
    )
    path = f"/api/v1/deployments/{name}/drift-reports"
    return {"items": items, "total": total, "next": next_url(path, offset, limit, total)}
