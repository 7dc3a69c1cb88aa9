"""The prediction log on a real SQLite database and a real local blob store."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, text
from tests.support.servers import start_moto

from narrate.bootstrap import build_blob_store
from narrate.config import Settings
from narrate.errors import InvalidInput, InvalidState, StorageUnavailable
from narrate.services.prediction_log import (
    PredictionLog,
    PredictionRecord,
    count_predictions,
    delete_predictions_before,
    export_predictions,
    read_predictions,
)
from narrate.storage.blobs import FsspecBlobStore
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import (
    Dataset,
    DatasetVersion,
    Deployment,
    Model,
    ModelVersion,
    PredictionLogFile,
    User,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class FlakyBlobStore(FsspecBlobStore):
    """A local blob store whose first ``failures`` writes fail as if the store were away."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures
        self.failed = 0

    def put_bytes(self, data: bytes) -> str:
        if self.failed < self.failures:
            self.failed += 1
            raise StorageUnavailable("artifact store is away (test)")
        return super().put_bytes(data)


class CountingBlobStore(FsspecBlobStore):
    """A local blob store that remembers which blobs were read."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads: list[str] = []

    def get_bytes(self, digest: str) -> bytes:
        self.reads.append(digest)
        return super().get_bytes(digest)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def blobs(tmp_path: Path) -> CountingBlobStore:
    return CountingBlobStore(str(tmp_path / "blobs"))


@pytest.fixture
def make_log(db: Database, blobs: FsspecBlobStore) -> Iterator[Callable[..., PredictionLog]]:
    """Build prediction logs (on ``blobs`` unless told) and close them all at the end."""
    made: list[PredictionLog] = []

    def make(store: FsspecBlobStore | None = None, **options: Any) -> PredictionLog:
        options.setdefault("flush_interval_s", 60.0)  # tests flush explicitly unless told
        made.append(PredictionLog(db, store or blobs, **options))
        return made[-1]

    yield make
    for log in made:
        log.close()


def add_deployment(db: Database, name: str) -> str:
    """A deployment row (with the user, dataset and model it needs); return its id."""
    with db.session() as s:
        user = User(username=f"owner-{name}", password_hash="x")
        s.add(user)
        s.flush()
        dataset = Dataset(name=f"data-{name}", owner_id=user.id)
        s.add(dataset)
        s.flush()
        version = DatasetVersion(
            dataset_id=dataset.id,
            number=1,
            blob="0" * 64,
            content_hash="0" * 64,
            n_rows=1,
            n_columns=1,
            owner_id=user.id,
        )
        model = Model(
            name=f"model-{name}",
            dataset_id=dataset.id,
            target="y",
            task="binary",
            metric="roc_auc",
            owner_id=user.id,
        )
        s.add_all([version, model])
        s.flush()
        model_version = ModelVersion(
            model_id=model.id,
            number=1,
            dataset_version_id=version.id,
            blob="1" * 64,
            size_bytes=1,
            family="linear",
            owner_id=user.id,
        )
        s.add(model_version)
        s.flush()
        deployment = Deployment(
            name=name, model_id=model.id, model_version_id=model_version.id, owner_id=user.id
        )
        s.add(deployment)
        s.flush()
        return deployment.id


@pytest.fixture
def dep(db: Database) -> str:
    return add_deployment(db, "churn")


def record(deployment_id: str, at: datetime, n: int = 0, **fields: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "prediction_id": fields.pop("prediction_id", uuid.uuid4().hex),
        "deployment_id": deployment_id,
        "deployment_name": "churn",
        "model_version_id": "m" * 32,
        "at": at,
        "latency_ms": 1.5,
        "caller": "alice",
        "arm": "primary",
        "inputs": {"age": 30 + n, "city": "Köln", "income": None},
        "prediction": "yes",
        "probabilities": {"no": 0.25, "yes": 0.75},
        "flags": ["out_of_range:age"],
        "revision": 2,
    }
    values.update(fields)
    return PredictionRecord(**values)


def files_of(db: Database, deployment_id: str) -> list[PredictionLogFile]:
    with db.session() as s:
        query = select(PredictionLogFile).where(PredictionLogFile.deployment_id == deployment_id)
        return list(s.scalars(query.order_by(PredictionLogFile.first_at)))


def iso(at: datetime) -> str:
    """A time as the readers give it: ISO 8601 in UTC with a "Z"."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until the condition holds (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition never became true")
        time.sleep(0.01)


# -- writing ------------------------------------------------------------------------


def test_appends_become_one_file_per_deployment_and_utc_day(
    db: Database, blobs: FsspecBlobStore, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    other = add_deployment(db, "fraud")
    log = make_log()
    late = datetime(2024, 3, 1, 23, 59, 59, 900_000, tzinfo=UTC)
    # 00:00:00.1 UTC on March 2nd, given in UTC+2: the day is taken in UTC.
    early = datetime(2024, 3, 2, 2, 0, 0, 100_000, tzinfo=timezone(timedelta(hours=2)))
    log.extend([record(dep, late - timedelta(seconds=i), i) for i in range(5)])
    log.append(record(dep, early))
    log.extend([record(other, late, i) for i in range(3)])
    assert log.pending == 9

    assert log.flush() == 9
    assert log.pending == 0
    mine = files_of(db, dep)
    assert [(f.day, f.n_rows) for f in mine] == [("2024-03-01", 5), ("2024-03-02", 1)]
    assert mine[0].first_at == late - timedelta(seconds=4)
    assert mine[0].last_at == late
    assert mine[1].first_at == mine[1].last_at == datetime(2024, 3, 2, 0, 0, 0, 100_000, UTC)
    assert [(f.day, f.n_rows) for f in files_of(db, other)] == [("2024-03-01", 3)]


def test_a_file_holds_at_most_max_batch_records(
    db: Database, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log(max_batch=4)
    log.extend([record(dep, T0 + timedelta(seconds=i), i) for i in range(10)])
    log.flush()  # after the background writer, woken by the full batch, if it ran first
    assert sorted(f.n_rows for f in files_of(db, dep)) == [2, 4, 4]
    assert count_predictions(db, dep) == 10


def test_a_log_file_is_zstd_parquet_with_the_documented_columns(
    db: Database, blobs: FsspecBlobStore, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    log.append(record(dep, T0, prediction_id="a" * 32))
    log.append(record(dep, T0 + timedelta(microseconds=1), prediction=3.5, probabilities=None))
    log.flush()
    (stored,) = files_of(db, dep)
    data = blobs.get_bytes(stored.blob)
    frame = pl.read_parquet(io.BytesIO(data))
    assert frame.schema == {
        "prediction_id": pl.String,
        "at": pl.Datetime("us", "UTC"),
        "deployment_id": pl.String,
        "deployment_name": pl.String,
        "model_version_id": pl.String,
        "revision": pl.Int64,
        "arm": pl.String,
        "caller": pl.String,
        "latency_ms": pl.Float64,
        "prediction": pl.String,
        "probabilities": pl.String,
        "flags": pl.List(pl.String),
        "inputs": pl.String,
    }
    first, second = frame.to_dicts()
    assert first["prediction_id"] == "a" * 32
    assert first["prediction"] == '"yes"'
    assert json.loads(first["probabilities"]) == {"no": 0.25, "yes": 0.75}
    assert json.loads(first["inputs"]) == {"age": 30, "city": "Köln", "income": None}
    assert first["flags"] == ["out_of_range:age"]
    assert second["prediction"] == "3.5"
    assert second["probabilities"] is None
    assert second["at"] - first["at"] == timedelta(microseconds=1)
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_close_flushes_what_is_buffered_and_stops_the_thread(
    db: Database, blobs: FsspecBlobStore, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    log.extend([record(dep, T0 + timedelta(seconds=i), i) for i in range(10)])
    assert log.is_running
    thread = next(t for t in threading.enumerate() if t.name == "narrate-prediction-log")
    assert thread.daemon

    log.close()
    assert not log.is_running
    assert not thread.is_alive()
    assert len(read_predictions(db, blobs, dep, since=None, limit=100)) == 10
    log.close()  # idempotent
    assert count_predictions(db, dep) == 10


def test_records_appended_after_close_wait_for_the_next_flush(
    db: Database, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    log.close()
    log.append(record(dep, T0))  # a request racing shutdown is not refused
    assert not log.is_running
    assert log.pending == 1
    with pytest.raises(InvalidState, match="closed"):
        log.start()
    log.close()
    assert count_predictions(db, dep) == 1


def test_the_background_thread_writes_without_being_asked(
    db: Database, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log(flush_interval_s=0.05)
    log.extend([record(dep, T0 + timedelta(seconds=i), i) for i in range(20)])
    wait_until(lambda: count_predictions(db, dep) == 20)
    assert log.pending == 0


def test_a_full_batch_wakes_the_writer_before_the_interval(
    db: Database, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log(flush_interval_s=3600, max_batch=10)
    for i in range(10):
        log.append(record(dep, T0 + timedelta(seconds=i), i))
    wait_until(lambda: count_predictions(db, dep) == 10)


def test_a_failing_blob_store_keeps_records_and_the_thread_retries(
    db: Database, tmp_path: Path, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    flaky = FlakyBlobStore(str(tmp_path / "flaky"), failures=3)
    log = make_log(flaky, flush_interval_s=0.02)
    sent = [record(dep, T0 + timedelta(seconds=i), i) for i in range(50)]
    log.extend(sent)
    wait_until(lambda: count_predictions(db, dep) == 50)
    assert flaky.failed == 3
    assert log.dropped == 0
    assert log.is_running
    got = read_predictions(db, flaky, dep, since=None, limit=100)
    assert [r["prediction_id"] for r in got] == [r.prediction_id for r in sent]


def test_flush_raises_while_the_store_is_away_and_writes_once_it_is_back(
    db: Database, tmp_path: Path, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    other = add_deployment(db, "fraud")
    flaky = FlakyBlobStore(str(tmp_path / "flaky"), failures=1)
    log = make_log(flaky)
    log.extend([record(dep, T0 + timedelta(seconds=i), i) for i in range(5)])
    log.extend([record(other, T0 + timedelta(days=1), i) for i in range(2)])
    with pytest.raises(StorageUnavailable, match="7 predictions could not be written") as err:
        log.flush()
    assert err.value.details == {"pending": 7}
    assert flaky.failed == 1  # the other files were kept without trying the store again
    assert log.pending == 7
    assert count_predictions(db, dep) == 0
    assert log.flush() == 7
    assert (count_predictions(db, dep), count_predictions(db, other)) == (5, 2)


def test_a_missing_table_is_retried_like_a_database_that_is_away(
    db: Database, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    log.extend([record(dep, T0 + timedelta(seconds=i), i) for i in range(3)])
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE prediction_log_files RENAME TO plf_away"))
    with pytest.raises(StorageUnavailable, match="3 predictions"):
        log.flush()
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE plf_away RENAME TO prediction_log_files"))
    assert log.flush() == 3
    assert count_predictions(db, dep) == 3


def test_records_of_an_unknown_deployment_are_dropped_not_retried_forever(
    db: Database, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    log.append(record("f" * 32, T0))
    log.append(record(dep, T0))
    assert log.flush() == 1
    assert log.dropped == 1
    assert log.pending == 0


def test_a_full_buffer_drops_the_oldest_and_counts_them(
    db: Database,
    blobs: FsspecBlobStore,
    make_log: Callable[..., PredictionLog],
    dep: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = make_log(max_buffer=5)
    sent = [record(dep, T0 + timedelta(seconds=i), i) for i in range(8)]
    with caplog.at_level(logging.WARNING, logger="narrate.services.prediction_log"):
        for r in sent[:6]:
            log.append(r)
        log.extend(sent[6:])
    assert log.dropped == 3
    assert log.pending == 5
    warnings = [r for r in caplog.records if "buffer is full" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a record
    log.close()
    got = read_predictions(db, blobs, dep, since=None, limit=10)
    assert [r["prediction_id"] for r in got] == [r.prediction_id for r in sent[3:]]


def test_records_kept_by_a_failing_store_stay_within_max_buffer(
    db: Database, tmp_path: Path, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    flaky = FlakyBlobStore(str(tmp_path / "flaky"), failures=1)
    log = make_log(flaky, max_buffer=4)
    log.extend([record(dep, T0 + timedelta(seconds=i), i) for i in range(4)])
    with pytest.raises(StorageUnavailable):
        log.flush()
    log.extend([record(dep, T0 + timedelta(seconds=10 + i), i) for i in range(2)])
    assert log.pending == 4
    assert log.dropped == 2
    assert log.flush() == 4


def test_bad_records_and_settings_are_refused_with_the_parameter_named(
    make_log: Callable[..., PredictionLog], dep: str
) -> None:
    with pytest.raises(InvalidInput, match="'at' must carry a time zone") as err:
        record(dep, datetime(2024, 1, 1))  # noqa: DTZ001
    assert err.value.details == {"parameter": "at"}
    with pytest.raises(InvalidInput, match="arm 'blue' is not one of") as err:
        record(dep, T0, arm="blue")
    assert err.value.details["parameter"] == "arm"
    with pytest.raises(InvalidInput, match="max_buffer must be positive; got 0") as err:
        make_log(max_buffer=0)
    assert err.value.details == {"parameter": "max_buffer"}


# -- reading ------------------------------------------------------------------------


@pytest.fixture
def logged(db: Database, make_log: Callable[..., PredictionLog], dep: str) -> list[dict[str, Any]]:
    """60 records in four files: one per minute for 30 minutes, in two flushes, plus a
    late file that overlaps the first and a second day; three records share one ``at``."""
    log = make_log()
    sent = [record(dep, T0 + timedelta(minutes=i), i) for i in range(30)]
    log.extend(sent[:15])
    log.flush()
    log.extend(sent[15:])
    log.flush()
    same = T0 + timedelta(minutes=7)
    ties = [record(dep, same, prediction_id=c * 32) for c in "0f9"]
    late = [record(dep, T0 + timedelta(minutes=i, seconds=30), i) for i in range(0, 30, 3)]
    log.extend(ties + late)
    log.flush()
    tomorrow = [record(dep, T0 + timedelta(days=1, minutes=i), i) for i in range(17)]
    log.extend(tomorrow)
    log.flush()
    every = sent + ties + late + tomorrow
    every.sort(key=lambda r: (r.at, r.prediction_id))
    return [{"prediction_id": r.prediction_id, "at": iso(r.at)} for r in every]


def test_read_returns_decoded_records_oldest_first(
    db: Database, blobs: FsspecBlobStore, logged: list[dict[str, Any]], dep: str
) -> None:
    got = read_predictions(db, blobs, dep, since=None, limit=1000)
    assert [(r["prediction_id"], r["at"]) for r in got] == [
        (r["prediction_id"], r["at"]) for r in logged
    ]
    first = got[0]
    assert first["at"] == "2024-03-01T12:00:00Z"
    assert first["inputs"] == {"age": 30, "city": "Köln", "income": None}
    assert first["prediction"] == "yes"
    assert first["probabilities"] == {"no": 0.25, "yes": 0.75}
    assert first["flags"] == ["out_of_range:age"]
    assert (first["arm"], first["caller"], first["revision"]) == ("primary", "alice", 2)
    assert (first["deployment_name"], first["latency_ms"]) == ("churn", 1.5)


def test_read_window_includes_since_and_excludes_until(
    db: Database, blobs: FsspecBlobStore, logged: list[dict[str, Any]], dep: str
) -> None:
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=21)
    assert iso(until) in {r["at"] for r in logged}
    got = read_predictions(db, blobs, dep, since=since, until=until, limit=1000)
    assert got[0]["at"] == iso(since)
    assert got[-1]["at"] == iso(T0 + timedelta(minutes=20))
    expected = [r for r in logged if iso(since) <= r["at"] < iso(until)]
    assert [r["prediction_id"] for r in got] == [r["prediction_id"] for r in expected]


def test_paging_with_since_and_after_id_visits_every_record_once(
    db: Database, blobs: FsspecBlobStore, logged: list[dict[str, Any]], dep: str
) -> None:
    seen: list[str] = []
    page = read_predictions(db, blobs, dep, since=T0, limit=4)
    while page:
        seen += [r["prediction_id"] for r in page]
        last = page[-1]
        since = datetime.fromisoformat(last["at"])
        page = read_predictions(
            db, blobs, dep, since=since, after_id=last["prediction_id"], limit=4
        )
    assert seen == [r["prediction_id"] for r in logged]


def test_a_page_never_ends_between_a_prediction_and_its_shadow(
    db: Database, blobs: FsspecBlobStore, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    primaries = [record(dep, T0 + timedelta(seconds=i // 2), i) for i in range(9)]
    log.extend(primaries)
    log.flush()
    # The shadow answers later, under the same ids and times, and lands in another file.
    shadows = [
        record(dep, r.at, prediction_id=r.prediction_id, arm="shadow", prediction="no")
        for r in primaries
    ]
    log.extend(shadows)
    log.flush()
    expected = sorted(
        ((iso(r.at), r.prediction_id, r.arm) for r in primaries + shadows),
    )
    seen: list[tuple[str, str, str]] = []
    sizes: list[int] = []
    page = read_predictions(db, blobs, dep, since=None, limit=3)
    while page:
        sizes.append(len(page))
        seen += [(r["at"], r["prediction_id"], r["arm"]) for r in page]
        last = page[-1]
        page = read_predictions(
            db,
            blobs,
            dep,
            since=datetime.fromisoformat(last["at"]),
            after_id=last["prediction_id"],
            limit=3,
        )
    assert seen == expected
    assert sizes == [4, 4, 4, 4, 2]  # three records and the last one's shadow twin
    assert seen[-1][2] == "shadow"


def test_files_written_by_batch_jobs_are_read_alongside(
    db: Database, blobs: FsspecBlobStore, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    # A batch job writes its own file: arm "batch", one time for all rows and a
    # probabilities column that is entirely null (so Parquet stores it untyped).
    frame = pl.DataFrame(
        {
            "prediction_id": ["b" * 32],
            "at": pl.Series([T0], dtype=pl.Datetime("us", "UTC")),
            "deployment_id": [dep],
            "deployment_name": ["churn"],
            "model_version_id": ["m" * 32],
            "revision": [1],
            "arm": ["batch"],
            "caller": ["alice"],
            "latency_ms": [0.5],
            "prediction": ['"no"'],
            "probabilities": [None],
            "flags": pl.Series([[]], dtype=pl.List(pl.String)),
            "inputs": ['{"age":40}'],
        }
    )
    out = io.BytesIO()
    frame.write_parquet(out)
    with db.session() as s:
        s.add(
            PredictionLogFile(
                deployment_id=dep,
                day="2024-03-01",
                blob=blobs.put_bytes(out.getvalue()),
                n_rows=1,
                first_at=T0,
                last_at=T0,
            )
        )
    log = make_log()
    log.append(record(dep, T0 + timedelta(seconds=1)))
    log.flush()
    got = read_predictions(db, blobs, dep, since=None, limit=10)
    assert [(r["arm"], r["probabilities"], r["inputs"]) for r in got] == [
        ("batch", None, {"age": 40}),
        ("primary", {"no": 0.25, "yes": 0.75}, {"age": 30, "city": "Köln", "income": None}),
    ]


def test_a_read_only_opens_the_files_overlapping_its_window(
    db: Database, blobs: CountingBlobStore, logged: list[dict[str, Any]], dep: str
) -> None:
    blobs.reads.clear()
    got = read_predictions(db, blobs, dep, since=T0 + timedelta(days=1), limit=5)
    assert len(got) == 5
    (tomorrow,) = [f for f in files_of(db, dep) if f.day == "2024-03-02"]
    assert blobs.reads == [tomorrow.blob]
    blobs.reads.clear()
    # The first page of day one stops before the second day's file.
    read_predictions(db, blobs, dep, since=T0, limit=3)
    assert tomorrow.blob not in blobs.reads


@pytest.mark.parametrize(
    ("kwargs", "message", "parameter"),
    [
        ({"since": None, "limit": 0}, "limit must be between 1 and 100,000; got 0", "limit"),
        ({"since": datetime(2024, 1, 1), "limit": 5}, "'since' must carry a time zone", "since"),  # noqa: DTZ001
        ({"since": None, "after_id": "a" * 32, "limit": 5}, "'after_id' pages from", "after_id"),
    ],
    ids=["limit", "naive-since", "after-id-alone"],
)
def test_read_refuses_bad_arguments(
    db: Database,
    blobs: FsspecBlobStore,
    dep: str,
    kwargs: dict[str, Any],
    message: str,
    parameter: str,
) -> None:
    with pytest.raises(InvalidInput, match=message) as err:
        read_predictions(db, blobs, dep, **kwargs)
    assert err.value.details["parameter"] == parameter


def test_count_sums_the_file_index(db: Database, logged: list[dict[str, Any]], dep: str) -> None:
    assert count_predictions(db, dep) == len(logged) == 60
    assert count_predictions(db, dep, since=T0 + timedelta(days=1)) == 17
    assert count_predictions(db, "0" * 32) == 0


# -- export and retention -----------------------------------------------------------


def test_export_csv_writes_the_window_with_json_text_columns(
    db: Database,
    blobs: FsspecBlobStore,
    logged: list[dict[str, Any]],
    dep: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "export.csv"
    until = T0 + timedelta(days=1)
    n = export_predictions(db, blobs, dep, since=T0, until=until, fmt="csv", out_path=out)
    assert n == 43
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 43
    assert {r["prediction_id"] for r in rows} == {
        r["prediction_id"] for r in logged if r["at"] < iso(until)
    }
    first = rows[0]
    assert first["at"] == "2024-03-01T12:00:00.000000Z"
    assert json.loads(first["flags"]) == ["out_of_range:age"]
    assert json.loads(first["inputs"])["city"] == "Köln"
    assert json.loads(first["probabilities"]) == {"no": 0.25, "yes": 0.75}
    assert not list(tmp_path.glob(".*partial"))


def test_export_parquet_round_trips_and_an_empty_window_has_the_columns(
    db: Database,
    blobs: FsspecBlobStore,
    logged: list[dict[str, Any]],
    dep: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "export.parquet"
    n = export_predictions(db, blobs, dep, since=None, until=None, fmt="parquet", out_path=out)
    frame = pl.read_parquet(out)
    assert n == frame.height == 60
    assert sorted(frame["prediction_id"]) == sorted(r["prediction_id"] for r in logged)
    assert frame.schema["flags"] == pl.List(pl.String)
    assert frame.schema["at"] == pl.Datetime("us", "UTC")

    empty = tmp_path / "empty.parquet"
    later = T0 + timedelta(days=30)
    assert (
        export_predictions(db, blobs, dep, since=later, until=None, fmt="parquet", out_path=empty)
        == 0
    )
    assert pl.read_parquet(empty).columns == frame.columns


def test_export_refuses_an_unknown_format(
    db: Database, blobs: FsspecBlobStore, dep: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="'xlsx' is not supported") as err:
        export_predictions(
            db,
            blobs,
            dep,
            since=None,
            until=None,
            fmt="xlsx",
            out_path=tmp_path / "x",  # type: ignore[arg-type]
        )
    assert err.value.details["parameter"] == "fmt"


def test_retention_deletes_whole_old_files_and_their_blobs(
    db: Database, blobs: FsspecBlobStore, logged: list[dict[str, Any]], dep: str
) -> None:
    day_one = [f for f in files_of(db, dep) if f.day == "2024-03-01"]
    deleted = delete_predictions_before(db, blobs, T0 + timedelta(days=1))
    assert deleted == 43
    assert [f.day for f in files_of(db, dep)] == ["2024-03-02"]
    assert not any(blobs.exists(f.blob) for f in day_one)
    assert len(read_predictions(db, blobs, dep, since=None, limit=100)) == 17
    assert delete_predictions_before(db, blobs, T0 + timedelta(days=1)) == 0


def test_retention_keeps_a_blob_another_row_still_names(
    db: Database, blobs: FsspecBlobStore, make_log: Callable[..., PredictionLog], dep: str
) -> None:
    log = make_log()
    log.append(record(dep, T0))
    log.flush()
    (old,) = files_of(db, dep)
    with db.session() as s:
        s.add(
            PredictionLogFile(
                deployment_id=dep,
                day="2024-03-05",
                blob=old.blob,
                n_rows=1,
                first_at=T0 + timedelta(days=4),
                last_at=T0 + timedelta(days=4),
            )
        )
    assert delete_predictions_before(db, blobs, T0 + timedelta(days=1)) == 1
    assert blobs.exists(old.blob)


def test_retention_refuses_a_naive_cutoff(db: Database, blobs: FsspecBlobStore) -> None:
    with pytest.raises(InvalidInput, match="'cutoff' must carry a time zone"):
        delete_predictions_before(db, blobs, datetime(2024, 1, 1))  # noqa: DTZ001


# -- other backends -----------------------------------------------------------------


def test_the_log_round_trips_on_each_database_backend(database_url: str, tmp_path: Path) -> None:
    database = Database(database_url)
    database.upgrade()
    store = FsspecBlobStore(str(tmp_path / "blobs"))
    deployment = add_deployment(database, "churn")
    log = PredictionLog(database, store)
    try:
        log.extend([record(deployment, T0 + timedelta(hours=i * 6), i) for i in range(8)])
        log.close()
        assert [f.day for f in files_of(database, deployment)] == [
            "2024-03-01",
            "2024-03-02",
            "2024-03-03",
        ]
        got = read_predictions(database, store, deployment, since=T0 + timedelta(hours=12), limit=3)
        assert [r["at"] for r in got] == [iso(T0 + timedelta(hours=h)) for h in (12, 18, 24)]
        assert count_predictions(database, deployment, since=T0 + timedelta(days=1)) == 6
        assert delete_predictions_before(database, store, T0 + timedelta(days=1)) == 2
    finally:
        log.close()
        database.dispose()


@pytest.mark.s3
def test_the_log_writes_to_and_reads_from_an_s3_store(db: Database, tmp_path: Path) -> None:
    with start_moto() as endpoint:
        bucket = f"narrate-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        store = build_blob_store(
            Settings(
                data_dir=tmp_path,
                storage_url=f"s3://{bucket}/blobs",
                s3_endpoint_url=endpoint,
                s3_region="us-east-1",
                s3_access_key_id="testing",
                s3_secret_access_key="testing",
            )
        )
        deployment = add_deployment(db, "churn")
        log = PredictionLog(db, store)
        log.extend([record(deployment, T0 + timedelta(seconds=i), i) for i in range(5)])
        log.close()
        got = read_predictions(db, store, deployment, since=None, limit=10)
        assert [r["inputs"]["age"] for r in got] == [30, 31, 32, 33, 34]
        (stored,) = files_of(db, deployment)
        assert store.exists(stored.blob)
        assert delete_predictions_before(db, store, T0 + timedelta(days=1)) == 5
        assert not store.exists(stored.blob)
