"""A module-scoped world for schedule tests: the app on real HTTP over SQLite or
PostgreSQL, an analyst's trained credit model deployed twice (one deployment with logged
traffic, one without), a second analyst and an admin. The server's own scheduler is off:
tests drive :class:`narrate.services.scheduler.Scheduler` ticks with their own clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from sqlalchemy import delete, update

from narrate.bootstrap import Container, build_container
from narrate.services import datasets, users
from narrate.storage.sql.tables import Schedule, SchedulerLease, utcnow
from narrate.storage.sql.visibility import Owner
from tests.conftest import ADMIN_PASSWORD, SAMPLES, login, make_settings
from tests.support.api import train_quickly
from tests.support.servers import AppServer

__all__ = ["API", "World", "schedule_world"]

API = "/api/v1"
TARGET = "Status"
ALICE_PASSWORD = "owner Alice's long passphrase 52"
BOB_PASSWORD = "other Bob's long passphrase 17"


@dataclass
class World:
    """What the schedule tests share."""

    container: Container
    owner: httpx.Client
    admin: httpx.Client
    other: httpx.Client
    owner_id: str
    deployment: str
    quiet: str
    version_id: str
    hitters_version_id: str

    def schedule(self, **spec: Any) -> dict[str, Any]:
        """Create a schedule as the owner (a batch of the credit version by default)."""
        body = {
            "cron": "* * * * *",
            "action": {
                "kind": "batch",
                "deployment": self.deployment,
                "version_id": self.version_id,
            },
            **spec,
        }
        r = self.owner.post(f"{API}/schedules", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def runs(self, schedule_id: str) -> list[dict[str, Any]]:
        r = self.owner.get(f"{API}/schedules/{schedule_id}/runs")
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def forget(self) -> None:
        """Delete every schedule and the lease, so one test's schedules never fire in
        another's ticks."""
        with self.container.db.session() as s:
            s.execute(update(Schedule).values(deleted_at=utcnow(), enabled=False))
            s.execute(delete(SchedulerLease))


@contextmanager
def schedule_world(database_url: str, tmp: Path, **extra: Any) -> Iterator[World]:
    """Build the world (see the module docstring); ``extra`` settings win."""
    from narrate.web.app import create_app

    settings = make_settings(
        tmp,
        database_url,
        **{"prediction_log_flush_s": 0.2, "deploy_refresh_s": 0.2, "scheduler": False, **extra},
    )
    container = build_container(settings)
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
        ):
            credit = datasets.ingest_file(
                container, alice.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), credit["id"], target=TARGET)
            hitters = datasets.ingest_file(
                container, alice.id, SAMPLES / "hitters.csv", filename="hitters.csv"
            )
            model_id = train_quickly(owner, credit["id"])
            mv = owner.get(f"{API}/models/{model_id}").json()["current_version_id"]
            names = [f"{p}-{uuid.uuid4().hex[:8]}" for p in ("sched", "quiet")]
            for name in names:
                r = owner.post(f"{API}/deployments", json={"name": name, "model_version_id": mv})
                assert r.status_code == 201, r.text
            frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET]).head(60)
            rows = [
                {k: (None if pd.isna(v) else v) for k, v in row.items()}
                for row in frame.to_dict(orient="records")
            ]
            r = owner.post(f"{API}/deployments/{names[0]}/predict", json={"rows": rows})
            assert r.status_code == 200, r.text
            truth = pd.read_csv(SAMPLES / "credit_data.csv")[TARGET].head(60).astype(str)
            actuals = [
                {"prediction_id": p["prediction_id"], "actual": t}
                for p, t in zip(r.json()["predictions"], truth, strict=True)
            ]
            r = owner.post(f"{API}/deployments/{names[0]}/actuals", json={"actuals": actuals})
            assert r.status_code == 200, r.text
            container.extras["prediction_log"].flush()
            yield World(
                container,
                owner,
                admin,
                other,
                alice.id,
                names[0],
                names[1],
                credit["version"]["id"],
                hitters["version"]["id"],
            )
    finally:
        server.stop()
        container.close()
