"""Migrations from an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from narrate.errors import InvalidState
from narrate.storage.sql.database import Database


def test_upgrade_from_empty_reaches_head(database_url: str) -> None:
    db = Database(database_url)
    with pytest.raises(InvalidState, match="schema is at nothing") as err:
        db.require_current_schema()
    assert err.value.code == "schema_behind"
    assert "narrate db upgrade" in (err.value.hint or "")
    db.upgrade()
    db.require_current_schema()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "api_tokens", "jobs", "job_events", "datasets", "dataset_versions"} <= tables
    db.upgrade()  # idempotent
    assert db.current_revision() == Database.head_revision()
    db.dispose()


def test_user_owned_tables_have_owner_timestamps_and_soft_delete(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    insp = inspect(db.engine)
    for table in ("api_tokens", "jobs", "datasets", "dataset_versions"):
        cols = {c["name"] for c in insp.get_columns(table)}
        assert {"owner_id", "created_at", "updated_at", "deleted_at"} <= cols, table
    db.dispose()
