"""Security review (issue 12): jobs, crash recovery and file hygiene.

Worker processes die with the server and leftovers of a crashed run are reaped; a restart
reconciles every record that points at a dead job and sweeps orphan blobs and upload spool
files; a crashed job answers a log reference instead of the server's traceback; the data
folder and the SQLite files are private to the user running Narrate.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from tests.conftest import ADMIN_PASSWORD, login, make_settings
from tests.support.servers import (
    AppServer,
    child_pids,
    free_port,
    is_gone,
    start_moto,
    wait_http,
)

from narrate.bootstrap import Container, build_blob_store
from narrate.config import Settings, load_settings
from narrate.jobs import records
from narrate.jobs.executors import InlineExecutor, LocalProcessExecutor
from narrate.jobs.workers import reap_orphan_workers, register_worker, registry_dir
from narrate.services import recovery
from narrate.services.spool import SPOOL_PREFIX, spool_dir
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import (
    Dataset,
    DatasetVersion,
    Job,
    Model,
    ModelVersion,
    utcnow,
)

ENTRY = "tests.support.jobfuncs:"


# --- 1. worker processes die with their parent, leftovers are reaped on start -------------


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_kill_9_of_the_server_takes_its_worker_processes_with_it(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env |= {
        "NARRATE_DATA_DIR": str(tmp_path / "data"),
        "NARRATE_JOB_WORKERS": "1",
        "NARRATE_LOAD_SAMPLES": "false",
    }
    subprocess.run([str(bin_dir / "narrate"), "db", "upgrade"], env=env, check=True)
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            [str(bin_dir / "narrate"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health/live", timeout=120)
            # job_warmup starts the worker (and multiprocessing's resource tracker).
            deadline = time.monotonic() + 60
            while len(children := child_pids(proc.pid)) < 2:
                assert time.monotonic() < deadline, f"no workers started: {children}"
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while alive := [pid for pid in children if not is_gone(pid)]:
        if time.monotonic() > deadline:
            for pid in alive:  # do not leave them behind for the next test
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"processes outlived the killed server: {alive}")
        time.sleep(0.1)


_WATCHED_CHILD = """
import os, sys, threading, time
from narrate.jobs.workers import _watch_parent
threading.Thread(target=_watch_parent, args=(int(sys.argv[1]),), daemon=True).start()
time.sleep(60)
"""
_PARENT = """
import os, subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], str(os.getpid())],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
print(child.pid, flush=True)
os._exit(0)  # dies without ending the child, as a crash would
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_watchdog_ends_a_worker_whose_parent_died_without_the_linux_signal() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PARENT, _WATCHED_CHILD], capture_output=True, text=True, check=True
    )
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while not is_gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the watchdog did not end the orphaned process")
        time.sleep(0.05)


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def _sleeper(*extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *extra])


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_start_reaps_worker_processes_left_by_a_crashed_run(settings: Settings) -> None:
    registry = registry_dir(settings.data_dir)
    orphan = _sleeper("--multiprocessing-fork")  # looks like a spawned worker
    stranger = subprocess.Popen(["sleep", "60"])  # a reused pid: not ours
    of_live_server = _sleeper("--multiprocessing-fork")  # its server (we) still runs
    try:
        register_worker(registry, orphan.pid, _dead_pid())
        register_worker(registry, stranger.pid, _dead_pid())
        register_worker(registry, of_live_server.pid, os.getpid())
        executor = LocalProcessExecutor(settings)  # what `narrate serve` builds at start
        try:
            assert orphan.wait(timeout=5) == -signal.SIGKILL
            assert stranger.poll() is None, "a process that is not a Narrate worker was killed"
            assert of_live_server.poll() is None, "a live server's worker was killed"
        finally:
            executor.shutdown()
        names = {p.name for p in registry.iterdir()}
        assert f"{orphan.pid}.json" not in names and f"{stranger.pid}.json" not in names
        assert f"{of_live_server.pid}.json" in names
        assert reap_orphan_workers(registry) == []
    finally:
        for proc in (orphan, stranger, of_live_server):
            proc.kill()
            proc.wait()


# --- 2. a restart reconciles records of dead jobs and sweeps orphan files -------------------


def _dataset(c: Container, owner: str) -> str:
    with c.db.session() as s:
        ds = Dataset(owner_id=owner, name="d")
        s.add(ds)
        s.flush()
        return ds.id


def _model(c: Container, owner: str, job_id: str, *, version: bool = False) -> str:
    dataset_id = _dataset(c, owner)
    with c.db.session() as s:
        m = Model(
            owner_id=owner,
            name="m",
            dataset_id=dataset_id,
            target="y",
            task="classification",
            metric="roc_auc",
            status="training",
            job_id=job_id,
        )
        s.add(m)
        s.flush()
        if version:
            m.current_version_id = "0" * 32  # a refit of a model that has a version
        return m.id


def _job(c: Container, owner: str, status: str, *, beat_ago_s: float = 0) -> str:
    job_id = records.create_job(c.db, owner, "model.train", {})
    with c.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.status = status
        job.heartbeat_at = utcnow() - timedelta(seconds=beat_ago_s)
    return job_id


def _model_status(c: Container, model_id: str) -> str:
    with c.db.session() as s:
        m = s.get(Model, model_id)
        assert m is not None
        return m.status


def test_restart_after_a_crash_mid_training_fails_the_model_too(
    container: Container, admin: Any
) -> None:
    job_id = _job(container, admin.id, "running", beat_ago_s=records.STALE_AFTER_S * 2)
    model_id = _model(container, admin.id, job_id)
    from narrate.web.app import create_app

    srv = AppServer(create_app(container.settings, container)).start()
    try:
        with login(srv.base_url, "admin", ADMIN_PASSWORD) as client:
            body = client.get(f"/api/v1/models/{model_id}").json()
    finally:
        srv.stop()
    assert body["status"] == "failed", body
    assert body["training"]["status"] == "failed"
    assert body["training"]["error"]["code"] == "interrupted"


@pytest.mark.parametrize(
    ("job_status", "has_version", "expected"),
    [
        ("failed", False, "failed"),
        ("cancelled", False, "cancelled"),
        ("failed", True, "ready"),  # a failed refit keeps the version the model had
        ("succeeded", True, "ready"),
    ],
    ids=["failed", "cancelled", "failed-refit", "succeeded"],
)
def test_sweep_reconciles_models_whose_job_is_over(
    container: Container, admin: Any, job_status: str, has_version: bool, expected: str
) -> None:
    model_id = _model(container, admin.id, _job(container, admin.id, job_status), version=True)
    if not has_version:
        with container.db.session() as s:
            m = s.get(Model, model_id)
            assert m is not None
            m.current_version_id = None
    assert recovery.recover_jobs(container) >= 1
    assert _model_status(container, model_id) == expected


def test_sweep_leaves_models_of_live_jobs_training(container: Container, admin: Any) -> None:
    running = _model(container, admin.id, _job(container, admin.id, "running"))
    queued = _model(container, admin.id, _job(container, admin.id, "queued"))
    recovery.recover_jobs(container)
    assert _model_status(container, running) == "training"
    assert _model_status(container, queued) == "training"


def test_every_table_that_points_at_jobs_has_a_reconciler() -> None:
    from narrate.storage.sql.tables import Base

    pointing = {
        t.name for t in Base.metadata.sorted_tables if "job_id" in t.c and t.name != "job_events"
    }
    assert pointing <= set(recovery.RECONCILERS), pointing - set(recovery.RECONCILERS)


def test_a_model_whose_job_was_never_recorded_fails_once_stale(
    container: Container, admin: Any
) -> None:
    model_id = _model(container, admin.id, job_id="")
    with container.db.session() as s:
        m = s.get(Model, model_id)
        assert m is not None
        m.job_id = None  # the crash came between inserting the model and its job
    recovery.recover_jobs(container)
    assert _model_status(container, model_id) == "training"  # its job may come any moment
    later = utcnow() + timedelta(seconds=records.STALE_AFTER_S + 5)
    assert recovery.recover_jobs(container, now=later) >= 1
    assert _model_status(container, model_id) == "failed"


def _old(path: Path, minutes: float) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


def _blob_path(c: Container, digest: str) -> Path:
    return Path(c.settings.resolved_storage_url, "sha256", digest[:2], digest[2:4], digest)


def _version_row(c: Container, owner: str, blob: str) -> None:
    dataset_id = _dataset(c, owner)
    with c.db.session() as s:
        s.add(
            DatasetVersion(
                owner_id=owner,
                dataset_id=dataset_id,
                number=1,
                blob=blob,
                content_hash=blob,
                n_rows=1,
                n_columns=1,
            )
        )


def _serving_only_row(c: Container, owner: str, dv_blob: str, serving_blob: str) -> None:
    """A model version whose serving copy is referenced only from its JSON details."""
    job_id = _job(c, owner, "succeeded")
    model_id = _model(c, owner, job_id)
    dataset_id = _dataset(c, owner)
    with c.db.session() as s:
        dv = DatasetVersion(
            owner_id=owner,
            dataset_id=dataset_id,
            number=1,
            blob=dv_blob,
            content_hash=dv_blob,
            n_rows=1,
            n_columns=1,
        )
        s.add(dv)
        s.flush()
        s.add(
            ModelVersion(
                owner_id=owner,
                model_id=model_id,
                number=1,
                dataset_version_id=dv.id,
                blob=dv_blob,
                size_bytes=1,
                family="x",
                details={"serving": {"available": True, "blob": serving_blob}},
            )
        )


def test_start_sweeps_orphan_blobs_and_spool_files_after_the_grace_period(
    container: Container, admin: Any
) -> None:
    grace = container.settings.orphan_grace_minutes
    blobs = container.blobs
    kept = blobs.put_bytes(b"referenced by a dataset version")
    serving = blobs.put_bytes(b"referenced only inside JSON details")
    orphan = blobs.put_bytes(b"left by a crashed ingest")
    fresh = blobs.put_bytes(b"an upload whose row is not committed yet")
    _version_row(container, admin.id, kept)
    _serving_only_row(container, admin.id, kept, serving)
    for digest in (kept, serving, orphan):
        _old(_blob_path(container, digest), grace + 5)
    tmp_blob = Path(container.settings.resolved_storage_url, "tmp", "blob-crashed")
    tmp_blob.write_bytes(b"half a blob")
    _old(tmp_blob, grace + 5)
    spool = spool_dir(container.settings)
    old_upload = spool / f"{SPOOL_PREFIX}crashed"
    new_upload = spool / f"{SPOOL_PREFIX}in-flight"
    for folder in (old_upload, new_upload):
        folder.mkdir(parents=True)
        (folder / "upload.bin").write_bytes(b"a,b\n1,2\n")
    _old(old_upload / "upload.bin", grace + 5)
    _old(old_upload, grace + 5)
    from narrate.web.app import create_app

    AppServer(create_app(container.settings, container)).start().stop()
    assert blobs.exists(kept) and blobs.exists(serving) and blobs.exists(fresh)
    assert not blobs.exists(orphan)
    assert not tmp_blob.exists()
    assert not old_upload.exists()
    assert (new_upload / "upload.bin").exists()


def test_uploads_are_spooled_in_the_private_spool_folder_and_cleaned_up(
    container: Container, client: httpx.Client
) -> None:
    spool = container.settings.data_dir / "spool"
    assert not spool.exists()
    for raw in (False, True):
        if raw:
            r = client.post(
                "/api/v1/datasets", params={"filename": "t.csv"}, content=b"a,b\n1,2\n3,4\n"
            )
        else:
            r = client.post("/api/v1/datasets", files={"file": ("t.csv", b"a,b\n1,2\n3,4\n")})
        assert r.status_code == 201, r.text
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert list(spool.iterdir()) == []


def test_put_of_existing_content_refreshes_its_age_so_the_sweep_spares_it(
    container: Container,
) -> None:
    digest = container.blobs.put_bytes(b"stored long ago, uploaded again now")
    _old(_blob_path(container, digest), container.settings.orphan_grace_minutes + 5)
    assert container.blobs.put_bytes(b"stored long ago, uploaded again now") == digest
    assert recovery.sweep_orphans(container) == {"blobs": 0, "temp_files": 0, "spool": 0}
    assert container.blobs.exists(digest)


@pytest.fixture
def s3_container(tmp_path: Path, sqlite_url: str) -> Iterator[Container]:
    with start_moto() as endpoint:
        bucket = f"narrate-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        settings = make_settings(
            tmp_path,
            sqlite_url,
            storage_url=f"s3://{bucket}/blobs",
            s3_endpoint_url=endpoint,
            s3_region="us-east-1",
            s3_access_key_id="testing",
            s3_secret_access_key="testing",
        )
        c = Container(
            settings, Database(settings.resolved_database_url), build_blob_store(settings)
        )
        c.db.upgrade()
        yield c
        c.close()


@pytest.mark.s3
def test_sweep_removes_only_unreferenced_old_blobs_on_s3(s3_container: Container) -> None:
    from narrate.services import users

    c = s3_container
    owner = users.create_user(c.db, "admin", ADMIN_PASSWORD, "admin").id
    kept = c.blobs.put_bytes(b"kept on s3")
    orphan = c.blobs.put_bytes(b"orphan on s3")
    _version_row(c, owner, kept)
    # Just written: within the grace period, so even the orphan stays.
    assert recovery.sweep_orphans(c)["blobs"] == 0
    later = utcnow() + timedelta(minutes=c.settings.orphan_grace_minutes + 5)
    assert recovery.sweep_orphans(c, now=later)["blobs"] == 1
    assert c.blobs.exists(kept) and not c.blobs.exists(orphan)


# --- 3. a crashed job answers a log reference, not the server's traceback ------------------


def test_a_crashed_job_returns_a_reference_instead_of_the_traceback(
    container: Container, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = records.create_job(container.db, admin.id, "test.crash", {})
    with caplog.at_level(logging.ERROR, logger="narrate.jobs.executors"):
        InlineExecutor(container.settings).submit(job_id, ENTRY + "crash")
    job = records.get_job(container.db, job_id)
    assert job.status == "failed" and job.error is not None
    assert job.error["code"] == "internal_error"
    assert "ZeroDivisionError" in job.error["message"]
    details = job.error["details"]
    assert set(details) == {"reference"}, details
    assert "Traceback" not in str(job.error) and "jobfuncs.py" not in str(job.error)
    logged = [r for r in caplog.records if details["reference"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_a_crashed_job_over_http_shows_no_traceback(
    container: Container, admin: Any, client: httpx.Client
) -> None:
    job_id = records.create_job(container.db, admin.id, "test.crash", {})
    assert container.executor is not None
    container.executor.submit(job_id, ENTRY + "crash")
    deadline = time.monotonic() + 60
    while (job := client.get(f"/api/v1/jobs/{job_id}").json())["status"] != "failed":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["error"]["code"] == "internal_error"
    assert "ZeroDivisionError" in job["error"]["message"]
    assert "traceback" not in job["error"]["details"]
    assert len(job["error"]["details"]["reference"]) >= 8


# --- 4. the data folder and the SQLite files are private ------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_sqlite_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the common default that made them 0755/0644
    try:
        settings = load_settings(data_dir=tmp_path / "data", load_samples=False)
        db = Database(settings.resolved_database_url)
        db.upgrade()
        with db.engine.connect():
            files = ["narrate.db", "narrate.db-wal", "narrate.db-shm", "secret_key"]
            for name in files:
                path = settings.data_dir / name
                assert path.exists(), name
                assert _mode(path) == 0o600, f"{name} is {oct(_mode(path))}"
        db.dispose()
    finally:
        os.umask(old)
    assert _mode(settings.data_dir) == 0o700


def test_an_existing_narrate_data_dir_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "narrate.db").touch()
    (data / "narrate.db").chmod(0o644)
    settings = load_settings(data_dir=data, load_samples=False)
    Database(settings.resolved_database_url).dispose()
    assert _mode(data) == 0o700
    assert _mode(data / "narrate.db") == 0o600
