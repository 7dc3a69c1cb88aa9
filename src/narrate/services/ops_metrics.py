"""Operations figures read from the metadata database for ``/metrics``: each deployment's
newest drift report and live performance, the job queue and job durations, open alerts
and deployments by status.

:func:`read_snapshot` returns plain numbers; the web layer turns them into Prometheus
metric families and caches them (``NARRATE_METRICS_DB_CACHE_S``), so a scrape costs a few
small queries at most once per cache period, not one per deployment per scrape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrate.bootstrap import Container
from narrate.core.monitor.drift import LEVELS
from narrate.errors import NarrateError, StorageUnavailable
from narrate.storage.sql.tables import (
    Alert,
    Deployment,
    DriftReport,
    Job,
    PredictionActual,
    utcnow,
)
from narrate.storage.sql.visibility import SYSTEM

__all__ = [
    "MAX_PSI_COLUMNS",
    "PERFORMANCE_WINDOW",
    "DeploymentDrift",
    "DeploymentPerformance",
    "OpsSnapshot",
    "PsiCache",
    "quantiles",
    "read_snapshot",
]

log = logging.getLogger(__name__)

MAX_PSI_COLUMNS = 20
"""Columns of a drift report exported, highest PSI first."""
PERFORMANCE_WINDOW = timedelta(days=1)
"""The live-performance window exported: the last day, as ``GET .../performance?window=1d``
shows it for its newest window."""
DURATION_WINDOW = timedelta(hours=1)
"""Job durations are taken from jobs finished this recently."""
_QUEUED = ("queued", "running")
_FINISHED = ("succeeded", "failed", "cancelled")

PsiCache = dict[str, list[tuple[str, float]]]
"""A report blob's hash → its top columns by PSI (blobs never change once written)."""


@dataclass(frozen=True)
class DeploymentDrift:
    """A deployment's newest ready drift report."""

    deployment: str
    level: int
    """0 none, 1 low, 2 medium, 3 high (the report's overall level)."""
    age_seconds: float
    psi: list[tuple[str, float]]


@dataclass(frozen=True)
class DeploymentPerformance:
    """A deployment's live metrics over the last day (only with labelled predictions)."""

    deployment: str
    metrics: dict[str, float]
    degraded: bool


@dataclass
class OpsSnapshot:
    """Everything the database collector exports, read at one moment."""

    deployments: dict[str, int] = field(default_factory=dict)
    drift: list[DeploymentDrift] = field(default_factory=list)
    performance: list[DeploymentPerformance] = field(default_factory=list)
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    job_durations: dict[str, list[float]] = field(default_factory=dict)
    jobs_finished: dict[tuple[str, str], int] = field(default_factory=dict)
    alerts_open: dict[tuple[str, str], int] = field(default_factory=dict)


def _deployments(s: Session) -> tuple[dict[str, int], dict[str, str]]:
    """Counts by status, and the active deployments' id → name."""
    rows = s.execute(select(Deployment.id, Deployment.name, Deployment.deleted_at)).all()
    active = {r.id: r.name for r in rows if r.deleted_at is None}
    return {"active": len(active), "deleted": len(rows) - len(active)}, active


def _top_psi(container: Container, blob: str | None, cache: PsiCache) -> list[tuple[str, float]]:
    if blob is None:
        return []
    if blob not in cache:
        try:
            columns = orjson.loads(container.blobs.get_bytes(blob)).get("columns") or []
        except StorageUnavailable as exc:
            log.warning("drift report %s unreadable for /metrics: %s", blob, exc.message)
            return []
        scored = [
            (str(c["column"]), float(c["psi"]))
            for c in columns
            if isinstance(c.get("psi"), int | float) and math.isfinite(c["psi"])
        ]
        scored.sort(key=lambda pair: -pair[1])
        cache[blob] = scored[:MAX_PSI_COLUMNS]
    return cache[blob]


def _drift(
    container: Container, s: Session, active: dict[str, str], now: datetime, cache: PsiCache
) -> list[DeploymentDrift]:
    dr = DriftReport
    ready = (dr.status == "ready") & dr.deleted_at.is_(None) & dr.deployment_id.is_not(None)
    newest = (
        select(dr.deployment_id, func.max(dr.created_at).label("at"))
        .where(ready)
        .group_by(dr.deployment_id)
        .subquery()
    )
    rows = s.execute(
        select(dr.deployment_id, dr.created_at, dr.summary, dr.blob)
        .join(newest, (dr.deployment_id == newest.c.deployment_id) & (dr.created_at == newest.c.at))
        .where(ready)
        .order_by(dr.deployment_id, dr.id)
    ).all()
    out: dict[str, DeploymentDrift] = {}
    for row in rows:
        name = active.get(row.deployment_id)
        if name is None or name in out:
            continue
        level = ((row.summary or {}).get("overall") or {}).get("level")
        out[name] = DeploymentDrift(
            deployment=name,
            level=LEVELS.index(level) if level in LEVELS else 0,
            age_seconds=max((now - row.created_at).total_seconds(), 0.0),
            psi=_top_psi(container, row.blob, cache),
        )
    used = {row.blob for row in rows}
    for blob in [b for b in cache if b not in used]:
        del cache[blob]  # keep the cache to the reports still newest
    return list(out.values())


def _labelled_recently(s: Session, active: dict[str, str], since: datetime) -> list[str]:
    """Deployments with an actual received since ``since``: only they can have labelled
    predictions in the window (an actual arrives after its prediction)."""
    pa = PredictionActual
    ids = s.scalars(
        select(pa.deployment_id).where(pa.received_at >= since, pa.deleted_at.is_(None)).distinct()
    ).all()
    return sorted(active[i] for i in ids if i in active)


def _performance(container: Container, names: Iterable[str], now: datetime) -> list[Any]:
    from narrate.services.performance import deployment_performance

    out = []
    for name in names:
        try:
            found = deployment_performance(
                container,
                SYSTEM,
                name,
                window="1d",
                since=now - PERFORMANCE_WINDOW,
                until=now,
                now=now,
            )
        except NarrateError as exc:  # one deployment's trouble must not hide the others
            log.warning("live performance of %s left out of /metrics: %s", name, exc)
            continue
        newest = found["windows"][-1] if found["windows"] else {}
        metrics = {
            k: float(v)
            for k, v in (newest.get("metrics") or {}).items()
            if isinstance(v, int | float) and math.isfinite(v)
        }
        if newest.get("n"):
            out.append(DeploymentPerformance(name, metrics, bool(found["degraded"])))
    return out


def _jobs(s: Session, snap: OpsSnapshot, now: datetime) -> None:
    live = Job.deleted_at.is_(None)
    for kind, status, n in s.execute(
        select(Job.kind, Job.status, func.count())
        .where(live, Job.status.in_(_QUEUED))
        .group_by(Job.kind, Job.status)
    ).all():
        snap.jobs[(kind, status)] = int(n)
    finished = s.execute(
        select(Job.kind, Job.status, Job.started_at, Job.finished_at).where(
            live, Job.status.in_(_FINISHED), Job.finished_at >= now - DURATION_WINDOW
        )
    ).all()
    for kind, status, started, ended in finished:
        snap.jobs_finished[(kind, status)] = snap.jobs_finished.get((kind, status), 0) + 1
        if started is not None and ended is not None:
            seconds = max((ended - started).total_seconds(), 0.0)
            snap.job_durations.setdefault(kind, []).append(seconds)


def _alerts(s: Session, active: dict[str, str]) -> dict[tuple[str, str], int]:
    rows = s.execute(
        select(Alert.deployment_id, Alert.severity, func.count())
        .where(Alert.status == "open", Alert.deleted_at.is_(None))
        .group_by(Alert.deployment_id, Alert.severity)
    ).all()
    return {(active[d], sev): int(n) for d, sev, n in rows if d in active}


def _flush_log(container: Container) -> None:
    """Write what this process's prediction log buffers, so performance sees it."""
    sink = container.extras.get("prediction_log")
    if sink is None:
        return
    try:
        sink.flush()
    except StorageUnavailable as exc:
        log.warning("could not flush the prediction log before /metrics: %s", exc.message)


def read_snapshot(
    container: Container, *, psi_cache: PsiCache | None = None, now: datetime | None = None
) -> OpsSnapshot:
    """Read the operations figures of every active deployment.

    Args:
        container: The services.
        psi_cache: Top PSI columns by report blob, kept between calls by the caller so a
            report's blob is read once, not on every refresh.
        now: The current time.

    Returns:
        The snapshot. Live performance is computed only for deployments with an actual
        received in the last day, over that one day.
    """
    now = now or utcnow()
    cache: PsiCache = {} if psi_cache is None else psi_cache
    snap = OpsSnapshot()
    with container.db.session() as s:
        snap.deployments, active = _deployments(s)
        snap.drift = _drift(container, s, active, now, cache)
        labelled = _labelled_recently(s, active, now - PERFORMANCE_WINDOW)
        _jobs(s, snap, now)
        snap.alerts_open = _alerts(s, active)
    if labelled:
        _flush_log(container)
        snap.performance = _performance(container, labelled, now)
    return snap


def quantiles(values: list[float], qs: Iterable[float]) -> list[tuple[float, float]]:
    """``(q, value)`` for each quantile of ``values`` (linear interpolation)."""
    data = np.asarray(values, dtype=float)
    return [(q, float(np.quantile(data, q))) for q in qs]
