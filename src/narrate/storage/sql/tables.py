"""SQLAlchemy 2 table models of the metadata store.

Every user-owned record has an owner, created/updated timestamps and a soft-delete
marker (``deleted_at``); user deletes set the marker, purges are separate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertRule",
    "ApiToken",
    "Base",
    "Dataset",
    "DatasetVersion",
    "Deployment",
    "DeploymentKey",
    "DeploymentRevision",
    "DriftReport",
    "Evaluation",
    "Job",
    "JobEvent",
    "LlmConfig",
    "LoginAttempt",
    "Model",
    "ModelVersion",
    "PredictionActual",
    "PredictionLogFile",
    "RetrainRun",
    "RevokedToken",
    "Schedule",
    "ScheduleRun",
    "SchedulerLease",
    "StageChange",
    "User",
    "new_id",
    "utcnow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use narrate's utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Any,  # noqa: ARG002
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random identifier (32 hex characters)."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base with JSON mapped for dict/list columns."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class TimestampMixin:
    """Created/updated timestamps."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OwnedMixin(TimestampMixin):
    """An owner and a soft-delete marker, on top of timestamps."""

    owner_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class User(TimestampMixin, Base):
    """A person or service account that signs in."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="analyst")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ApiToken(OwnedMixin, Base):
    """A personal API token; only its SHA-256 hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class LoginAttempt(Base):
    """Failed-login counter for one key (``user:<name>`` or ``ip:<address>``)."""

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RevokedToken(Base):
    """A signed-out JWT or session cookie, by its ``jti``, kept until it would expire."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Job(OwnedMixin, Base):
    """Long work (training, batch prediction, recipe apply) run by an executor."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobEvent(Base):
    """One line of a job's history: a progress step, a warning or the outcome."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    progress: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class Dataset(OwnedMixin, Base):
    """A named table a user uploaded; its content lives in immutable versions."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    current_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    target: Mapped[str | None] = mapped_column(String(200), default=None)


class DatasetVersion(OwnedMixin, Base):
    """An immutable state of a dataset, stored as Parquet in the blob store."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(String(32), ForeignKey("datasets.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    parent_version_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("dataset_versions.id"), default=None
    )
    blob: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    original_blob: Mapped[str | None] = mapped_column(String(64), default=None)
    original_filename: Mapped[str | None] = mapped_column(String(255), default=None)
    n_rows: Mapped[int] = mapped_column(BigInteger)
    n_columns: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(default=list)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    source: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recipe: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    fitted_recipe_blob: Mapped[str | None] = mapped_column(String(64), default=None)
    profile_blob: Mapped[str | None] = mapped_column(String(64), default=None)
    privacy: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class Model(OwnedMixin, Base):
    """A registered model: a name, a task and its versions (one per training or refit)."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    dataset_id: Mapped[str] = mapped_column(String(32), ForeignKey("datasets.id"), index=True)
    target: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="training")
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    current_version_id: Mapped[str | None] = mapped_column(String(32), default=None)


class ModelVersion(OwnedMixin, Base):
    """One fitted pipeline with everything needed to reproduce and judge it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(String(32), ForeignKey("models.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    dataset_version_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("dataset_versions.id"), index=True
    )
    parent_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    blob: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    family: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cv_score: Mapped[float | None] = mapped_column(Float, default=None)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    leaderboard: Mapped[list[Any]] = mapped_column(default=list)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    library_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    training_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(16), default="none")
    narrative: Mapped[str] = mapped_column(Text, default="")


class Evaluation(OwnedMixin, Base):
    """Metrics, charts and narrative of a model version on a labelled dataset version."""

    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    model_version_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("model_versions.id"), index=True
    )
    dataset_version_id: Mapped[str] = mapped_column(String(32), ForeignKey("dataset_versions.id"))
    kind: Mapped[str] = mapped_column(String(16), default="holdout")
    blob: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    narrative: Mapped[str] = mapped_column(Text, default="")
    n_rows: Mapped[int] = mapped_column(BigInteger, default=0)


class StageChange(Base):
    """One move of a model version between stages (none, staging, production, archived)."""

    __tablename__ = "stage_changes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    model_version_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("model_versions.id"), index=True
    )
    from_stage: Mapped[str] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Deployment(OwnedMixin, Base):
    """A named endpoint serving one model version (plus an optional shadow or canary).

    ``revision`` counts changes of what is served; each change is a
    :class:`DeploymentRevision`. With ``follow_stage`` set, the deployment serves whichever
    version of ``model_id`` holds that stage.
    """

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[str] = mapped_column(String(32), ForeignKey("models.id"), index=True)
    model_version_id: Mapped[str] = mapped_column(String(32), ForeignKey("model_versions.id"))
    previous_model_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    follow_stage: Mapped[str | None] = mapped_column(String(16), default=None)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    shadow_model_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    canary_model_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    canary_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    # The deployment's own drift levels ({"psi": [low, medium, high], ...}); None: defaults.
    drift_thresholds: Mapped[dict[str, list[float]] | None] = mapped_column(JSON, default=None)


class DeploymentRevision(Base):
    """What a deployment served from one change to the next: who, when and why."""

    __tablename__ = "deployment_revisions"
    __table_args__ = (UniqueConstraint("deployment_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    model_version_id: Mapped[str] = mapped_column(String(32))
    previous_model_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    shadow_model_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    canary_model_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    canary_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    actor_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeploymentKey(Base):
    """A key that can only call one deployment's predict and batch routes; only its
    SHA-256 hash is stored."""

    __tablename__ = "deployment_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PredictionLogFile(Base):
    """One Parquet batch of the prediction log: a deployment's predictions of one UTC day
    from ``first_at`` to ``last_at``, stored as a blob."""

    __tablename__ = "prediction_log_files"
    __table_args__ = (Index("ix_prediction_log_files_deployment_day", "deployment_id", "day"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"))
    day: Mapped[str] = mapped_column(String(10))
    blob: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DriftReport(OwnedMixin, Base):
    """A drift report: a reference compared with a current sample, computed by a job.

    ``status`` is ``queued`` until the job stores the full report (a blob of JSON) and
    its summary, then ``ready``; ``failed`` when the job fails. ``deployment_id`` is set
    for a report on a deployment's live traffic.
    """

    __tablename__ = "drift_reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("deployments.id"), index=True, default=None
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reference: Mapped[dict[str, Any]] = mapped_column(default=dict)
    current: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    blob: Mapped[str | None] = mapped_column(String(64), default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)


class PredictionActual(OwnedMixin, Base):
    """The true outcome (ground truth) of one logged prediction of a deployment.

    One row per ``(deployment_id, prediction_id)``. Posting an actual again for the same
    prediction replaces ``actual`` and ``received_at``, adds one to ``replaced`` and appends
    the value it replaced to ``previous`` (a list of ``{"actual", "received_at"}``), so a
    correction never loses what was there before. ``owner_id`` is the deployment's owner.
    """

    __tablename__ = "prediction_actuals"
    __table_args__ = (
        UniqueConstraint("deployment_id", "prediction_id"),
        Index("ix_prediction_actuals_deployment_received", "deployment_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"))
    prediction_id: Mapped[str] = mapped_column(String(64))
    actual: Mapped[Any] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    replaced: Mapped[int] = mapped_column(Integer, default=0)
    previous: Mapped[list[Any]] = mapped_column(default=list)


class AlertRule(OwnedMixin, Base):
    """When to raise an alert on a deployment, how loud, and where to send it.

    ``kind`` is what is watched (``drift``, ``error_rate``, ``latency_p95``,
    ``job_failures``, ``performance``); ``level`` (drift) or ``threshold`` (the others) is
    where it fires. ``channels`` is a list of ``{"type": "webhook"|"email"|"in_app", ...}``;
    a webhook's secret is stored sealed (``secret_sealed``), never in clear text.
    """

    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str | None] = mapped_column(String(16), default=None)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    window_minutes: Mapped[int] = mapped_column(Integer, default=15)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    channels: Mapped[list[Any]] = mapped_column(default=list)
    cooldown_s: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Alert(OwnedMixin, Base):
    """One raised alert of a rule; while it is open, the rule firing again groups into it
    (``count``, ``last_at``) instead of raising another."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_status", "rule_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    rule_id: Mapped[str] = mapped_column(String(32), ForeignKey("alert_rules.id"))
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)
    message: Mapped[str] = mapped_column(Text, default="")
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(32), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(32), default=None)


class AlertDelivery(Base):
    """One attempt series to send one alert over one channel, and how it ended."""

    __tablename__ = "alert_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(32), ForeignKey("alerts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class LlmConfig(Base):
    """The optional LLM endpoint an admin set (one row, ``id`` ``"default"``); it wins over
    the ``NARRATE_LLM_*`` environment. The API key is stored sealed (``api_key_sealed``,
    see :mod:`narrate.services.secret_box`), never in clear text."""

    __tablename__ = "llm_config"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default="default")
    base_url: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    api_key_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    updated_by: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Schedule(OwnedMixin, Base):
    """A cron schedule of one action on a deployment (the source of truth for the scheduler).

    ``action`` is ``{"kind": "batch"|"drift"|"retrain", "deployment": name, ...}``;
    ``enabled`` False means paused. ``next_run_at`` is the next fire time (UTC) computed
    from ``cron`` in ``timezone``; the one leading scheduler fires it and moves it on.
    """

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), default="")
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    action: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deployment_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("deployments.id"), index=True, default=None
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    misfire_grace_s: Mapped[int] = mapped_column(Integer, default=3600)
    max_retries: Mapped[int] = mapped_column(Integer, default=2)
    retry_backoff_s: Mapped[int] = mapped_column(Integer, default=60)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True, default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ScheduleRun(Base):
    """One attempt to run a schedule's action: the job it started and how it ended.

    ``status``: ``pending`` (waiting for ``retry_at``), ``running`` (its job runs),
    ``succeeded``, ``failed`` or ``missed`` (due while no scheduler ran, beyond the grace).
    A retry is a new row with ``attempt`` + 1 for the same ``scheduled_for``.
    """

    __tablename__ = "schedule_runs"
    __table_args__ = (Index("ix_schedule_runs_status", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(String(32), ForeignKey("schedules.id"), index=True)
    owner_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"))
    trigger: Mapped[str] = mapped_column(String(16), default="cron")
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SchedulerLease(Base):
    """Who runs the one scheduler: a process holds the row while it renews ``expires_at``
    (see docs/adr/0018-one-scheduler-by-lease.md)."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetrainRun(OwnedMixin, Base):
    """One turn of a deployment's retraining loop: a challenger trained on the newest
    labelled data, scored against the champion on the same recent labelled window, and the
    decision.

    ``trigger`` is ``drift``, ``performance``, ``schedule`` or ``manual`` (``trigger_ref``:
    the alert or schedule behind it); ``policy`` is ``refit`` or ``search``. ``status`` goes
    ``queued → running → awaiting_decision → promoted | rejected`` (``failed`` when the job
    fails); with ``auto_promote`` the job decides itself. ``metrics`` is ``{"champion":
    {...}, "challenger": {...}}`` with ``metrics``/``intervals`` per side, both on the
    rows of ``window_start..window_end``.
    """

    __tablename__ = "retrain_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(String(32), ForeignKey("deployments.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    trigger_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    policy: Mapped[str] = mapped_column(String(16), default="refit")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(24), default="queued")
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)
    champion_version_id: Mapped[str] = mapped_column(String(32))
    challenger_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    dataset_version_id: Mapped[str | None] = mapped_column(String(32), default=None)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    n_train_rows: Mapped[int | None] = mapped_column(Integer, default=None)
    n_eval_rows: Mapped[int | None] = mapped_column(Integer, default=None)
    metric: Mapped[str | None] = mapped_column(String(32), default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    margin: Mapped[float] = mapped_column(Float, default=0.01)
    auto_promote: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str | None] = mapped_column(String(16), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(32), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    narrative: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
