"""Settings, read from ``NARRATE_*`` environment variables.

Nothing here runs at import time: entry points call :func:`load_settings` and pass the
result down.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "load_settings"]

_SECRET_FILE = "secret_key"  # noqa: S105 - a file name


class Settings(BaseSettings):
    """Every setting Narrate reads. Each field is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="NARRATE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./narrate-data"),
        description="Folder for the embedded database, blobs and the generated secret key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; default "
        "sqlite:///<data dir>/narrate.db. PostgreSQL: postgresql+psycopg://user:pw@host/db.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where artifact blobs live: a local folder (default <data dir>/blobs) "
        "or s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible server (MinIO, SeaweedFS ...)."
    )
    s3_region: str | None = Field(default=None, description="S3 region name.")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret access key.")
    secret_key: str | None = Field(
        default=None,
        description="Key that signs JWTs and session cookies; generated and stored in the "
        "data dir on first run when unset.",
    )
    max_upload_mb: int = Field(default=200, ge=1, description="Largest accepted upload in MB.")
    token_ttl_minutes: int = Field(
        default=60, ge=1, description="Lifetime of JWTs from /api/v1/auth/token and sessions."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS); empty = CORS off.",
    )
    job_workers: int = Field(
        default=2, ge=1, description="Processes in the local job pool (training, batch work)."
    )
    compile_trees: bool = Field(
        default=True,
        description="Compile deployed tree models to native code with a C compiler (gcc, "
        "cc or clang on the PATH) for faster scoring; kept in <data dir>/compiled. Without a "
        "compiler, models are scored as before.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes `narrate serve` starts on one port (each with its own "
        "job pool of NARRATE_JOB_WORKERS); more than one spreads predictions over the cores.",
    )
    job_warmup: bool = Field(
        default=True,
        description="Start job workers and import their libraries when the server starts, "
        "so the first job starts fast.",
    )
    load_samples: bool = Field(
        default=True,
        description="Load the bundled sample datasets for the first admin on first start.",
    )
    log_level: str = Field(default="INFO", description="Logging level (DEBUG, INFO, WARNING).")
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins per user/IP before back-off; each further failure doubles "
        "the wait.",
    )

    max_expression_chars: int = Field(
        default=4096,
        ge=16,
        description="Longest filter/derive expression accepted, in characters (longer: 422).",
    )
    max_expression_depth: int = Field(
        default=64,
        ge=2,
        description="Deepest nesting of brackets and function calls in an expression (422).",
    )
    max_columns: int = Field(
        default=5000, ge=1, description="Most columns an uploaded file may have (more: 413)."
    )
    max_cells: int = Field(
        default=50_000_000,
        ge=1,
        description="Most rows x columns an upload may expand to, checked from the file's "
        "metadata before it is read (more: 413).",
    )
    max_decompressed_mb: int = Field(
        default=1024,
        ge=1,
        description="Most MB a compressed upload (gzip, xlsx sheet XML) may expand to (413).",
    )
    max_body_mb: int = Field(
        default=2, ge=1, description="Largest JSON or YAML request body in MB (more: 413)."
    )
    max_json_depth: int = Field(
        default=64, ge=2, description="Deepest nesting accepted in JSON/YAML bodies and files."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "is believed; empty = the peer address is the client.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token that /metrics requires; unset = /metrics answers only "
        "addresses in NARRATE_METRICS_ALLOW.",
    )
    metrics_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Addresses or networks (CIDR) that may read /metrics without the token.",
    )
    metrics_db_cache_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds the /metrics figures read from the database (drift, performance, "
        "jobs, alerts, deployments) are reused before a scrape reads them again; 0 = every "
        "scrape reads them.",
    )
    orphan_grace_minutes: int = Field(
        default=60,
        ge=0,
        description="Age after which a blob no record points at, or a left-over upload spool "
        "file, is removed by the start-up sweep.",
    )

    max_predict_rows: int = Field(
        default=10_000,
        ge=1,
        description="Most rows one predict request may score (more: 422; use a batch job).",
    )
    max_predict_body_mb: int = Field(
        default=32,
        ge=1,
        description="Largest predict request body in MB (10,000 wide rows need more than "
        "the general JSON limit; more: 413).",
    )
    deploy_cache_mb: int = Field(
        default=2048,
        ge=16,
        description="Memory the loaded deployed models may take, estimated as 4x their "
        "file size; the least recently used model not serving a deployment goes first.",
    )
    deploy_refresh_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How stale a deployment's loaded version or a deployment key may be "
        "in a server process that did not make the change (rollbacks and revocations "
        "take effect at once in the process that made them).",
    )
    deploy_warm_at_start: bool = Field(
        default=True,
        description="Load every active deployment's model when the server starts, so the "
        "first request does not wait for it.",
    )
    batch_chunk_rows: int = Field(
        default=100_000,
        ge=1000,
        description="Rows a batch scoring job reads, scores and writes at a time; its "
        "memory grows with this, not with the file.",
    )
    batch_output_retention_hours: int = Field(
        default=168,
        ge=1,
        description="Hours a batch job's output stays downloadable before it is removed.",
    )
    prediction_log_flush_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often buffered predictions are written to the prediction log; "
        "a crash loses at most this much (a clean shutdown loses nothing).",
    )
    prediction_log_retention_days: int = Field(
        default=90,
        ge=1,
        description="Days the prediction log is kept before whole day files are removed.",
    )
    performance_drop: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="Relative drop of a deployment's primary metric below its holdout "
        "baseline, in the newest complete window, that counts as degraded (0.10 = 10%).",
    )
    performance_min_rows: int = Field(
        default=100,
        ge=1,
        description="Labelled predictions a window needs before a drop is called a degradation.",
    )
    max_actuals_body_mb: int = Field(
        default=32,
        ge=1,
        description="Largest actuals request body (JSON or CSV upload) in MB (more: 413).",
    )
    scheduler: bool = Field(
        default=True,
        description="Run the schedule scheduler in the server; with several server processes "
        "on one database exactly one of them (the lease holder) fires schedules.",
    )
    scheduler_tick_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds between two scheduler ticks (lease renewal, due schedules, "
        "finished runs and retries).",
    )
    scheduler_lease_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long the scheduler lease lasts without renewal: when the leading "
        "process dies, another takes over after this. Keep it a few ticks long.",
    )

    encryption_key: str | None = Field(
        default=None,
        description="Fernet key (32 url-safe base64 bytes) that encrypts alert channel "
        "secrets at rest; generated once into <data dir>/encryption_key (mode 0600) when unset.",
    )
    alert_check_s: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        description="Seconds between two evaluations of every enabled alert rule by the server.",
    )
    retrain_min_eval_rows: int = Field(
        default=50,
        ge=1,
        le=1_000_000,
        description="Fewest labelled predictions in a retrain run's evaluation window; a "
        "deployment with fewer labelled predictions cannot be retrained (409).",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Admin setting: let alert webhooks reach private, loopback, link-local "
        "and other non-public addresses (refused by default against SSRF).",
    )
    webhook_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR, comma-separated) alert webhooks may reach even though "
        "they are not public, e.g. 10.1.2.0/24 for one internal receiver.",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one webhook or SMTP attempt."
    )
    webhook_max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Attempts per alert delivery (webhook or e-mail) before it is recorded "
        "as failed; waits grow exponentially with jitter.",
    )
    webhook_backoff_s: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="First wait between two delivery attempts; each further wait doubles "
        "(capped at 60 s), plus up to that much random jitter.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for alert e-mails; unset = e-mail channels fail."
    )
    smtp_port: int = Field(default=25, ge=1, le=65_535, description="SMTP server port.")
    smtp_user: str | None = Field(default=None, description="SMTP login user (optional).")
    smtp_password: str | None = Field(default=None, description="SMTP login password.")
    smtp_from: str = Field(
        default="narrate@localhost", description="Sender address of alert e-mails."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS before login."
    )

    llm_base_url: str = Field(
        default="",
        description="Base URL of an OpenAI-compatible endpoint (e.g. http://localhost:11434/v1 "
        "for Ollama); empty = the LLM is off. PUT /api/v1/admin/llm wins over this.",
    )
    llm_model: str = Field(default="", description="Model name the LLM endpoint is asked for.")
    llm_api_key: str | None = Field(
        default=None,
        description="API key sent as the Bearer token to the LLM endpoint; one set with "
        "PUT /api/v1/admin/llm is stored encrypted and wins over this.",
    )
    llm_timeout_s: float = Field(
        default=20.0, gt=0, le=600, description="Timeout of one LLM request in seconds."
    )
    llm_allow_rows: bool = Field(
        default=False,
        description="Admin setting: let 'ask' prompts include a few raw rows of the dataset "
        "(off: only stored summaries are sent, never rows).",
    )
    llm_max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts per LLM request on 429, 5xx, timeouts and connection errors.",
    )
    llm_backoff_s: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="First wait between two LLM attempts; each further wait doubles, plus "
        "random jitter.",
    )
    llm_breaker_fail_max: int = Field(
        default=3,
        ge=1,
        description="Failed LLM calls in a row that open the circuit breaker (then no request "
        "is sent until the reset time has passed).",
    )
    llm_breaker_reset_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds the LLM circuit breaker stays open before one trial request.",
    )
    llm_max_question_chars: int = Field(
        default=1000,
        ge=10,
        le=20_000,
        description="Longest question accepted by the 'ask' routes, in characters (422).",
    )

    @field_validator("cors_origins", "trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            if value.startswith("["):
                import json

                return json.loads(value)
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("webhook_allow_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            ipaddress.ip_network(network, strict=False)  # a ValueError names the bad one
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'narrate.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        """The blob store URL, defaulting to ``<data dir>/blobs``."""
        if self.storage_url:
            return self.storage_url
        return str((self.data_dir / "blobs").resolve())

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_body_bytes(self) -> int:
        """The JSON/YAML body limit in bytes."""
        return self.max_body_mb * 1024 * 1024

    @property
    def max_decompressed_bytes(self) -> int:
        """The limit on what a compressed upload may expand to, in bytes."""
        return self.max_decompressed_mb * 1024 * 1024


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, then make sure the data dir and secret exist.

    Args:
        overrides: Values that win over the environment (used by the CLI and tests).

    Returns:
        Settings with ``secret_key`` always set.
    """
    settings = Settings(**overrides)  # type: ignore[arg-type]
    _make_private_dir(settings.data_dir)
    if not settings.secret_key:
        settings.secret_key = _read_or_create_secret(settings.data_dir / _SECRET_FILE)
    return settings


def _make_private_dir(folder: Path) -> None:
    """Create the data dir readable by its owner only (it holds the database and uploads).

    A folder that already holds Narrate's files is tightened too (older versions created
    it 0755); any other existing folder, such as one the user pointed at, is left as is.
    """
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
        folder.chmod(0o700)  # mkdir's mode is reduced by the umask
    elif (folder / _SECRET_FILE).exists() or (folder / "narrate.db").exists():
        folder.chmod(0o700)


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return key
