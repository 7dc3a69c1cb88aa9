"""Integration tests run against both SQLite and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_settings

from narrate.config import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on each database backend."""
    return make_settings(tmp_path, database_url)
