"""A second Database on the same SQLite file must not drop the first one's locks.

Closing any descriptor of a file drops every POSIX lock the process holds on it. When
opening a Database re-opened and closed an existing file, another process closing its
connection believed it was the last user and removed the write-ahead log, and the first
process's later commits were lost (found by the CLI, which runs jobs in its own process
beside a second Database).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from narrate.storage.sql.database import Database

_OTHER_PROCESS = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("SELECT count(*) FROM t").fetchone()
conn.close()
"""
_COUNT = """
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM t").fetchone()[0])
"""


def test_commits_survive_a_second_database_and_another_process(tmp_path: Path) -> None:
    path = tmp_path / "narrate.db"
    first = Database(f"sqlite:///{path}")
    with first.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    held = first.engine.connect()  # an open connection holds its shared lock
    held.execute(text("SELECT count(*) FROM t")).scalar()
    for i in range(20):
        with first.engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
    second = Database(f"sqlite:///{path}")  # must not touch the locks of `first`
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(path)], check=True)
    for i in range(20, 40):
        with first.engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
    held.close()
    out = subprocess.run(
        [sys.executable, "-c", _COUNT, str(path)], check=True, capture_output=True, text=True
    )
    first.dispose()
    second.dispose()
    assert int(out.stdout) == 40


def test_a_new_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Database(f"sqlite:///{path}").dispose()
    assert path.stat().st_mode & 0o777 == 0o600
