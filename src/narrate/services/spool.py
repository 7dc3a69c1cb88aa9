"""Where uploads are spooled to disk while they are read, and the sweep of left-overs.

An upload is written to a private folder ``<data dir>/spool/narrate-upload-*`` that is
removed when the request ends. A crash (``kill -9``, power loss) skips that removal, so
the start-up sweep removes spool folders older than ``orphan_grace_minutes``. The folder
sits in the data dir, not the shared system temp dir, so other local users cannot read
uploads and the sweep never touches files it does not own.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from narrate.config import Settings

__all__ = ["SPOOL_PREFIX", "spool_dir", "sweep_spool", "upload_spool"]

log = logging.getLogger(__name__)

SPOOL_PREFIX = "narrate-upload-"
"""Every spool folder's name starts with this, so the sweep can recognise it."""


def spool_dir(settings: Settings) -> Path:
    """The folder upload spools are created in (created, private, on first use).

    Args:
        settings: Loaded settings (their ``data_dir``).

    Returns:
        ``<data dir>/spool``.
    """
    folder = settings.data_dir / "spool"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@contextmanager
def upload_spool(settings: Settings) -> Iterator[Path]:
    """A private temporary folder for one upload, removed when the block ends.

    Args:
        settings: Loaded settings (their ``data_dir``).

    Yields:
        The folder to write the upload into.
    """
    with tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX, dir=spool_dir(settings)) as tmp:
        yield Path(tmp)


def sweep_spool(settings: Settings, *, older_than_s: float, now: float | None = None) -> int:
    """Remove spool folders (and stray files) untouched for ``older_than_s``; return how many.

    Age is the newest modification time inside an entry, so an upload still being
    written is never removed however long it has been running.

    Args:
        settings: Loaded settings (their ``data_dir``).
        older_than_s: Minimum age in seconds.
        now: The current time as a Unix timestamp (tests pass a later clock).

    Returns:
        The number of entries removed.
    """
    now = time.time() if now is None else now
    removed = 0
    for entry in (settings.data_dir / "spool").glob(f"{SPOOL_PREFIX}*"):
        try:
            if now - _newest_mtime(entry) < older_than_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:  # e.g. removed meanwhile; the next sweep retries
            log.warning("could not remove the upload spool %s: %s", entry, exc)
            continue
        removed += 1
    return removed


def _newest_mtime(entry: Path) -> float:
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for child in entry.rglob("*"):
            newest = max(newest, child.lstat().st_mtime)
    return newest
