"""The one place where concrete classes are wired from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from narrate.config import Settings
from narrate.core.data.expressions import configure_expression_limits
from narrate.jobs.executors import JobExecutor, LocalProcessExecutor
from narrate.storage.blobs import FsspecBlobStore
from narrate.storage.sql.database import Database

__all__ = ["Container", "build_blob_store", "build_container"]


@dataclass
class Container:
    """Everything a transport needs to call services."""

    settings: Settings
    db: Database
    blobs: FsspecBlobStore
    executor: JobExecutor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Release the executor and pooled connections."""
        if self.executor is not None:
            self.executor.shutdown()
        self.db.dispose()


def build_blob_store(settings: Settings) -> FsspecBlobStore:
    """The artifact store named by ``NARRATE_STORAGE_URL``."""
    url = settings.resolved_storage_url
    options: dict[str, Any] = {}
    if url.startswith("s3://"):
        client_kwargs: dict[str, Any] = {}
        if settings.s3_endpoint_url:
            client_kwargs["endpoint_url"] = settings.s3_endpoint_url
        if settings.s3_region:
            client_kwargs["region_name"] = settings.s3_region
        options = {"client_kwargs": client_kwargs, "skip_instance_cache": True}
        if settings.s3_access_key_id:
            options["key"] = settings.s3_access_key_id
            options["secret"] = settings.s3_secret_access_key
    # Uploads to a remote store are staged beside the upload spool, where the start-up
    # sweep finds what a crash left behind.
    return FsspecBlobStore(url, options, temp_dir=settings.data_dir / "spool")


def build_container(settings: Settings, *, with_executor: bool = True) -> Container:
    """Wire the database, blob store and (optionally) the local job executor."""
    configure_expression_limits(settings.max_expression_chars, settings.max_expression_depth)
    executor = LocalProcessExecutor(settings) if with_executor else None
    return Container(
        settings, Database(settings.resolved_database_url), build_blob_store(settings), executor
    )
