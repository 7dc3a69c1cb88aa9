"""Fixtures shared by every test: settings, databases, the app on real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from narrate.bootstrap import Container, build_container
from narrate.config import Settings, load_settings
from narrate.services import users
from tests.support.servers import AppServer, PostgresServer

ADMIN_PASSWORD = "admin-password-123"
SAMPLES = Path(__file__).resolve().parents[1] / "src" / "narrate" / "samples"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skipped when it is not installed)."""
    server = PostgresServer()
    if not server.available:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb/pg_ctl) must be installed in CI")
        pytest.skip("PostgreSQL is not installed here (no initdb); .ci/run installs it")
    server.start()
    yield server
    server.stop()


def backend_url(request: pytest.FixtureRequest, folder: Path) -> str:
    """A fresh, empty database of the backend ``request.param`` names (sqlite or
    postgresql), for fixtures of any scope parametrised over both."""
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'narrate.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend."""
    return backend_url(request, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'narrate.db'}"


def make_settings(tmp_path: Path, database_url: str, **extra: Any) -> Settings:
    """Settings for a test: its own data dir and database, no samples, one job worker."""
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        load_samples=False,
        job_workers=1,
        job_warmup=False,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        **extra,
    )


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Settings on SQLite in a temp folder."""
    return make_settings(tmp_path, sqlite_url)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """Migrated database + local blobs + a one-worker job pool."""
    c = build_container(settings)
    c.db.upgrade()
    yield c
    c.close()


@pytest.fixture
def admin(container: Container) -> Any:
    """An admin user."""
    return users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")


@pytest.fixture
def server(container: Container, admin: Any) -> Iterator[AppServer]:
    """The app on a real loopback port."""
    from narrate.web.app import create_app

    srv = AppServer(create_app(container.settings, container)).start()
    yield srv
    srv.stop()


def login(base_url: str, username: str, password: str) -> httpx.Client:
    """An HTTP client carrying a bearer token for the user."""
    r = httpx.post(
        f"{base_url}/api/v1/auth/token", json={"username": username, "password": password}
    )
    r.raise_for_status()
    token = r.json()["access_token"]
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture
def client(server: AppServer) -> Iterator[httpx.Client]:
    """An admin-authenticated HTTP client against the running app."""
    with login(server.base_url, "admin", ADMIN_PASSWORD) as c:
        yield c


@pytest.fixture
def anon(server: AppServer) -> Iterator[httpx.Client]:
    """An unauthenticated HTTP client against the running app."""
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c
