"""A scheduled batch of an ``s3://`` object, read from a real S3 protocol server
(moto_server) on loopback with the NARRATE_S3_* settings: scored like an upload; a missing
object fails the run naming the path; a malformed path is a 422 naming ``action.path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from tests.conftest import SAMPLES
from tests.support.api import wait_job
from tests.support.schedule_world import API, TARGET, World, schedule_world
from tests.support.servers import start_moto

from narrate.services import schedule_runs

BUCKET = "drops"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("schedules-s3")
    with start_moto() as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        rows = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET]).head(250)
        s3.put_object(Bucket=BUCKET, Key="nightly/new.csv", Body=rows.to_csv(index=False))
        with schedule_world(
            f"sqlite:///{tmp / 'narrate.db'}",
            tmp,
            s3_endpoint_url=endpoint,
            s3_region="us-east-1",
            s3_access_key_id="testing",
            s3_secret_access_key="testing",
        ) as w:
            yield w


def _batch(world: World, path: str) -> dict[str, object]:
    return world.schedule(action={"kind": "batch", "deployment": world.deployment, "path": path})


def test_scheduled_batch_scores_an_s3_object(world: World, tmp_path: Path) -> None:
    item = _batch(world, f"s3://{BUCKET}/nightly/new.csv")
    assert item["action"]["path"] == f"s3://{BUCKET}/nightly/new.csv"  # type: ignore[index]
    r = world.owner.post(f"{API}/schedules/{item['schedule_id']}/run")
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["status"] == "running", run
    job = wait_job(world.owner, run["job_id"])
    assert job["status"] == "succeeded", job
    assert job["params"]["filename"] == "new.csv"
    out = world.owner.get(f"{API}/deployments/{world.deployment}/batch/{run['job_id']}/output")
    assert out.status_code == 200, out.text
    (tmp_path / "out.parquet").write_bytes(out.content)
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 250
    assert schedule_runs.settle_run(world.container, run["run_id"])["status"] == "succeeded"


def test_missing_s3_object_fails_the_run_naming_the_path(world: World) -> None:
    item = world.schedule(
        action={"kind": "batch", "deployment": world.deployment, "path": f"s3://{BUCKET}/no.csv"},
        max_retries=0,
    )
    run = world.owner.post(f"{API}/schedules/{item['schedule_id']}/run").json()
    assert (run["status"], run["job_id"]) == ("failed", None)
    assert run["error"]["code"] == "s3_read_failed"
    assert f"Could not start: Could not read s3://{BUCKET}/no.csv" in run["message"]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("https://example.com/a.csv", "does not start with s3://"),
        ("s3://bucket-only", "does not name a bucket and an object key"),
        ("s3://b/folder/", "does not name a bucket and an object key"),
    ],
    ids=["not-s3", "no-key", "folder"],
)
def test_malformed_s3_path_is_422_naming_action_path(world: World, path: str, says: str) -> None:
    body = {
        "cron": "0 6 * * *",
        "action": {"kind": "batch", "deployment": world.deployment, "path": path},
    }
    r = world.owner.post(f"{API}/schedules", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["details"]["parameter"]) == ("invalid_path", "action.path")
    assert says in error["message"]


def test_version_and_path_together_are_refused(world: World) -> None:
    action = {
        "kind": "batch",
        "deployment": world.deployment,
        "version_id": world.version_id,
        "path": f"s3://{BUCKET}/nightly/new.csv",
    }
    r = world.owner.post(f"{API}/schedules", json={"cron": "0 6 * * *", "action": action})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_action"
    assert r.json()["error"]["details"]["parameter"] == "action.path"
