"""Blobs written during one unit of work, removed again if that unit of work rolls back.

Blobs are content-addressed and shared: a blob that was already stored before the unit
of work began may be referenced by other rows, so only blobs this unit of work created
are removed, and only when no committed version row refers to them and no other unit of
work in this process is writing the same content at the moment.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session, SessionTransaction

from narrate.bootstrap import Container
from narrate.errors import NarrateError
from narrate.storage.blobs import hash_file
from narrate.storage.sql.tables import DatasetVersion

__all__ = ["NewBlobs"]

log = logging.getLogger(__name__)

# Digests that some unit of work in this process is writing or about to reference.
_IN_USE: Counter[str] = Counter()
_IN_USE_LOCK = threading.Lock()


class NewBlobs:
    """Write blobs for a session's unit of work; undo the new ones if it rolls back.

    Args:
        container: Where the blob store and database are.
        session: The unit of work the blobs belong to; the cleanup runs when its
            outermost transaction rolls back, and nothing is removed once it commits.
    """

    def __init__(self, container: Container, session: Session) -> None:
        self._container = container
        self.created: list[str] = []
        self._held: list[str] = []
        self._is_settled = False
        event.listen(session, "after_commit", self._on_commit)
        event.listen(session, "after_soft_rollback", self._on_rollback)

    def put_file(self, path: Path) -> str:
        """Store a file; return its digest."""
        return self._put(hash_file(path), lambda: self._container.blobs.put_file(path))

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their digest."""
        digest = hashlib.sha256(data).hexdigest()
        return self._put(digest, lambda: self._container.blobs.put_bytes(data))

    def _put(self, digest: str, write: Callable[[], str]) -> str:
        with _IN_USE_LOCK:
            _IN_USE[digest] += 1
        self._held.append(digest)
        existed = self._container.blobs.exists(digest)
        stored = write()
        if not existed and stored not in self.created:
            self.created.append(stored)
        return stored

    def _release(self) -> list[str]:
        with _IN_USE_LOCK:
            for digest in self._held:
                _IN_USE[digest] -= 1
                if _IN_USE[digest] <= 0:
                    del _IN_USE[digest]
            busy = set(_IN_USE)
        self._held = []
        return [digest for digest in self.created if digest not in busy]

    def _on_commit(self, _session: Session) -> None:
        if self._is_settled:
            return
        self._is_settled = True
        self._release()
        self.created = []

    def _on_rollback(self, _session: Session, previous: SessionTransaction) -> None:
        if self._is_settled or previous.parent is not None:  # a savepoint: work goes on
            return
        self._is_settled = True
        unused = self._release()
        if unused:
            self.discard(unused)
        self.created = []

    def discard(self, digests: list[str]) -> None:
        """Delete the given new blobs unless a committed version row refers to them."""
        try:
            with self._container.db.session() as s:
                columns = (
                    DatasetVersion.blob,
                    DatasetVersion.original_blob,
                    DatasetVersion.profile_blob,
                    DatasetVersion.fitted_recipe_blob,
                )
                rows = s.execute(
                    select(*columns).where(or_(*(c.in_(digests) for c in columns)))
                ).all()
            referenced = {value for row in rows for value in row}
            for digest in digests:
                if digest not in referenced:
                    self._container.blobs.delete(digest)
        except (NarrateError, OSError) as exc:
            # The original failure is what the caller must see; this only leaves garbage.
            log.warning("Could not remove blobs of a failed write %s: %s", digests, exc)
