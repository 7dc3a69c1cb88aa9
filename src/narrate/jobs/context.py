"""What a running job sees: its id, params, storage and a progress reporter."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from narrate.config import Settings
from narrate.jobs.records import record_progress
from narrate.storage.blobs import FsspecBlobStore
from narrate.storage.sql.database import Database

__all__ = ["JobCancelled", "JobContext"]


class JobCancelled(Exception):
    """Raised inside a job when its cancellation was requested."""


@dataclass
class JobContext:
    """Handed to every job function as its first argument."""

    job_id: str
    owner_id: str
    params: dict[str, Any]
    settings: Settings
    db: Database
    blobs: FsspecBlobStore
    min_interval_s: float = 0.25
    _last: float = field(default=0.0, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    def progress(self, fraction: float, message: str, data: dict[str, Any] | None = None) -> None:
        """Report progress (0-1) and raise JobCancelled if a cancel was requested.

        Calls closer together than ``min_interval_s`` are dropped (except at 0 and 1) so a
        tight loop does not flood the database.
        """
        now = time.monotonic()
        if fraction not in (0.0, 1.0) and now - self._last < self.min_interval_s and not data:
            self.check_cancelled()
            return
        self._last = now
        self._cancelled = record_progress(self.db, self.job_id, fraction, message, data)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        """Raise JobCancelled if cancellation was requested (re-reads at most every 0.25 s)."""
        if self._cancelled:
            raise JobCancelled
        now = time.monotonic()
        if now - self._last >= self.min_interval_s:
            from narrate.jobs.records import get_job

            self._last = now
            self._cancelled = get_job(self.db, self.job_id).cancel_requested
            if self._cancelled:
                raise JobCancelled

    def is_cancelled(self) -> bool:
        """Whether cancellation was requested, without raising."""
        try:
            self.check_cancelled()
        except JobCancelled:
            return True
        return False
