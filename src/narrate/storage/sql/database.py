"""Engine, unit of work and schema checks for the metadata database."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from narrate.errors import InvalidState, StorageUnavailable

__all__ = ["Database", "alembic_config"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _create_private(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask, often 0644).

    SQLite gives the ``-wal`` and ``-shm`` files the main file's mode, so they are private
    too; an existing file (and its companions) is tightened in case an older version made
    it readable by others.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only a new file is opened here. Closing any descriptor of a file drops every POSIX
    # lock this process holds on it, those of its open SQLite connections included: another
    # process could then think itself the last user and delete the write-ahead log, and
    # this process's later commits would be lost.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # absent, or not ours to change: leave it
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


class Database:
    """The metadata database: an engine plus a unit-of-work session factory.

    Args:
        url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
            if path and path != ":memory:" and "?" not in path:
                _create_private(Path(path))
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=10
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits when the block succeeds, rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise StorageUnavailable(f"The metadata database failed: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Apply every pending migration."""
        with self.engine.begin() as conn:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def current_revision(self) -> str | None:
        """The schema revision stored in the database, or None when empty."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest migration shipped with this code."""
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

    def require_current_schema(self) -> None:
        """Refuse to run on a schema behind the code's migrations.

        Raises:
            InvalidState: when the database is empty or behind head.
        """
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise InvalidState(
                f"The database schema is at {current or 'nothing'} but this Narrate needs {head}.",
                code="schema_behind",
                hint="Back up the database, then run `narrate db upgrade`.",
            )

    def ping(self) -> None:
        """Run ``SELECT 1``; raise StorageUnavailable when the database is unreachable."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StorageUnavailable(f"The metadata database is unreachable: {exc}") from exc

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
