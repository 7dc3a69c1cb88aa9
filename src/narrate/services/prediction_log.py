"""The prediction log: every prediction a deployment answers, kept as Parquet batches.

A request only appends a :class:`PredictionRecord` to an in-memory buffer (a
``collections.deque`` append, atomic under the GIL, well under a microsecond). A daemon
thread wakes every ``flush_interval_s`` (sooner once ``max_batch`` records wait), groups
what is buffered by deployment and UTC day, writes one zstd Parquet file per group (of
at most ``max_batch`` records) to the blob store and records it as a
:class:`PredictionLogFile` row. A failed write keeps its records for the next tick; a
full buffer drops the oldest records and counts them.

What a crash loses: at most the last ``flush_interval_s`` of records, plus whatever a
failing store kept buffered. :meth:`PredictionLog.close` (called at shutdown) flushes.

The readers below pick files by the table's index (deployment, day, ``first_at`` and
``last_at``), so a window only reads the blobs that overlap it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from narrate.errors import InvalidInput, InvalidState, StorageUnavailable
from narrate.storage.blobs import BlobStore
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import PredictionLogFile

__all__ = [
    "ARMS",
    "MAX_READ_LIMIT",
    "PredictionLog",
    "PredictionRecord",
    "count_predictions",
    "delete_predictions_before",
    "export_predictions",
    "read_predictions",
]

log = logging.getLogger(__name__)

ARMS = frozenset({"primary", "canary", "shadow"})
"""Which model of a deployment answered: the served one, a canary, or a shadow."""
MAX_READ_LIMIT = 100_000
"""Most records :func:`read_predictions` returns at once (they are held in memory)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_WARN_EVERY_S = 60.0
_SCHEMA = pl.Schema(
    {
        "prediction_id": pl.String(),
        "at": pl.Datetime("us", "UTC"),
        "deployment_id": pl.String(),
        "deployment_name": pl.String(),
        "model_version_id": pl.String(),
        "revision": pl.Int64(),
        "arm": pl.String(),
        "caller": pl.String(),
        "latency_ms": pl.Float64(),
        "prediction": pl.String(),
        "probabilities": pl.String(),
        "flags": pl.List(pl.String()),
        "inputs": pl.String(),
    }
)
_JSON_COLUMNS = ("prediction", "probabilities", "inputs")
_ORDER = ("at", "prediction_id", "arm")


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One answered prediction, as the log stores it.

    Raises:
        InvalidInput: ``at`` has no time zone or ``arm`` is not one of :data:`ARMS`.
    """

    prediction_id: str
    deployment_id: str
    deployment_name: str
    model_version_id: str
    at: datetime
    latency_ms: float
    caller: str
    arm: str
    inputs: dict[str, Any]
    prediction: str | float | int | bool | None
    probabilities: dict[str, float] | None = None
    flags: list[str] = field(default_factory=list)
    revision: int = 1

    def __post_init__(self) -> None:
        # Checked here, not at write time: a bad record would otherwise fail a whole batch
        # in the background, far from the code that built it.
        if self.at.tzinfo is None:
            raise InvalidInput(
                f"Prediction {self.prediction_id}: 'at' must carry a time zone (UTC).",
                details={"parameter": "at"},
            )
        if self.arm not in ARMS:
            raise InvalidInput(
                f"Prediction {self.prediction_id}: arm '{self.arm}' is not one of {sorted(ARMS)}.",
                details={"parameter": "arm", "allowed": sorted(ARMS)},
            )


class PredictionLog:
    """A buffered writer of the prediction log, flushed by a background thread.

    Args:
        db: The metadata database (one :class:`PredictionLogFile` row per written file).
        blobs: The blob store the Parquet files go to.
        flush_interval_s: How often the background thread writes what is buffered.
        max_batch: Records waiting that wake the thread before the interval is up; also
            the most records in one file.
        max_buffer: Most records held in memory; beyond it the oldest are dropped.

    Attributes:
        dropped: How many records were dropped (buffer full, or impossible to store).
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        flush_interval_s: float = 1.0,
        max_batch: int = 10_000,
        max_buffer: int = 200_000,
    ) -> None:
        for name, value in (
            ("flush_interval_s", flush_interval_s),
            ("max_batch", max_batch),
            ("max_buffer", max_buffer),
        ):
            if not value > 0:
                raise InvalidInput(
                    f"{name} must be positive; got {value}.", details={"parameter": name}
                )
        self._db = db
        self._blobs = blobs
        self._interval = flush_interval_s
        self._max_batch = max_batch
        self._max_buffer = max_buffer
        self._buffer: deque[PredictionRecord] = deque()
        self._in_flight = 0  # taken from the buffer by a write that has not finished
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_drop_warning = -_WARN_EVERY_S
        self._last_fail_warning = -_WARN_EVERY_S
        self._failing = False
        self.dropped = 0

    # -- request path -------------------------------------------------------------

    def append(self, record: PredictionRecord) -> None:
        """Buffer one record; never blocks on I/O and never raises on a full buffer."""
        buffer = self._buffer
        buffer.append(record)
        size = len(buffer)
        if size > self._max_buffer:
            self._drop_oldest()
        if size >= self._max_batch and not self._wake.is_set():
            self._wake.set()
        if self._thread is None:
            self._start_lazily()

    def extend(self, records: Iterable[PredictionRecord]) -> None:
        """Buffer several records (a batch prediction); same guarantees as :meth:`append`."""
        buffer = self._buffer
        buffer.extend(records)
        size = len(buffer)
        if size > self._max_buffer:
            self._drop_oldest()
        if size >= self._max_batch and not self._wake.is_set():
            self._wake.set()
        if self._thread is None:
            self._start_lazily()

    @property
    def pending(self) -> int:
        """How many records wait to be written (buffered, or in a write under way)."""
        return len(self._buffer) + self._in_flight

    def _drop_oldest(self) -> None:
        with self._state_lock:
            dropped = 0
            while len(self._buffer) > self._max_buffer:
                try:
                    self._buffer.popleft()
                except IndexError:  # the writer took them meanwhile
                    break
                dropped += 1
            self.dropped += dropped
            now = time.monotonic()
            if dropped and now - self._last_drop_warning >= _WARN_EVERY_S:
                self._last_drop_warning = now
                log.warning(
                    "prediction log buffer is full (%d records): dropped the oldest, "
                    "%d in all so far; is the blob store or database slow or away?",
                    self._max_buffer,
                    self.dropped,
                )

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (the first append starts it too); idempotent.

        Raises:
            InvalidState: the log was closed.
        """
        with self._state_lock:
            if self._closed:
                raise InvalidState(
                    "The prediction log is closed; its background writer cannot restart.",
                    code="prediction_log_closed",
                )
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="narrate-prediction-log", daemon=True
                )
                self._thread.start()

    def _start_lazily(self) -> None:
        # After close() records are still accepted (a request racing shutdown must not
        # fail); they wait for an explicit flush() or close() instead of a new thread.
        if not self._closed:
            self.start()

    @property
    def is_running(self) -> bool:
        """Whether the background thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        """Stop the background thread, then write everything buffered; idempotent.

        Never raises: records a failing store refuses are logged as an error and stay in
        :attr:`pending` (a later :meth:`flush` may still write them).
        """
        with self._state_lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except StorageUnavailable as exc:
            log.error("prediction log closed with %d records unwritten: %s", self.pending, exc)

    def flush(self) -> int:
        """Write everything buffered so far, now, from any thread.

        Returns:
            How many records were written.

        Raises:
            StorageUnavailable: some records could not be written; they stay buffered.
        """
        written, kept, error = self._write_pending()
        if kept:
            raise StorageUnavailable(
                f"{kept} predictions could not be written to the prediction log: {error}",
                hint="They stay buffered and are retried; check the blob store and database.",
                details={"pending": kept},
            ) from error
        return written

    def _run(self) -> None:
        failed = False
        while True:
            # After a failure wait the full interval even if the buffer is full, so a
            # store that is away is not hammered in a tight loop.
            if failed:
                self._stop.wait(self._interval)
            else:
                self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                _, kept, error = self._write_pending()
            except Exception:  # the writer must outlive any bug; records stay counted
                log.exception("prediction log writer failed; retrying at the next tick")
                kept, error = 1, None
            failed = kept > 0
            self._note_outcome(kept, error)

    def _note_outcome(self, kept: int, error: BaseException | None) -> None:
        now = time.monotonic()
        if kept and (not self._failing or now - self._last_fail_warning >= _WARN_EVERY_S):
            self._last_fail_warning = now
            log.warning("prediction log: %d records kept for retry: %s", kept, error)
        elif not kept and self._failing:
            log.warning("prediction log: writing again after failures")
        self._failing = kept > 0

    # -- writing ------------------------------------------------------------------

    def _write_pending(self) -> tuple[int, int, BaseException | None]:
        """Write what is buffered; return (written, kept for retry, last error)."""
        with self._write_lock:
            written, kept, error = 0, [], None
            for (deployment_id, day), records in self._batches():
                if error is not None:  # the store is away: don't wait on it once per file
                    kept.extend(records)
                    continue
                outcome = self._write_group(deployment_id, day, records)
                if outcome is None:
                    written += len(records)
                elif isinstance(outcome, Exception):
                    kept.extend(records)
                    error = outcome
                    continue  # still in flight until requeued
                self._in_flight -= len(records)
            if kept:
                self._requeue(kept)
            return written, len(kept), error

    def _batches(self) -> Iterator[tuple[tuple[str, str], list[PredictionRecord]]]:
        """What is buffered, by deployment and UTC day, in files of at most max_batch.

        The cap bounds each C call of the encoding (which holds the GIL throughout) to a
        millisecond or so, so a backlog does not stall request threads.
        """
        for key, group in _by_deployment_day(self._take()).items():
            for start in range(0, len(group), self._max_batch):
                yield key, group[start : start + self._max_batch]

    def _write_group(
        self, deployment_id: str, day: str, records: list[PredictionRecord]
    ) -> Exception | bool | None:
        """Write one file: None when stored, False when dropped, the error to retry."""
        try:
            data, first_at, last_at = _encode(records)
        except Exception as exc:  # a value Parquet cannot hold: retrying cannot help
            log.error("prediction log dropped %d unencodable records: %s", len(records), exc)
            self._count_dropped(len(records))
            return False
        try:
            self._store(deployment_id, day, len(records), data, (first_at, last_at))
        except IntegrityError as exc:  # e.g. an unknown deployment: permanent as well
            log.error("prediction log dropped %d records: %s", len(records), exc.orig)
            self._count_dropped(len(records))
            return False
        except Exception as exc:  # the store is away: keep them for the next tick
            return exc
        return None

    def _take(self) -> list[PredictionRecord]:
        count = len(self._buffer)
        self._in_flight = count  # counted before popping, so `pending` never dips
        taken = []
        for _ in range(count):
            try:
                taken.append(self._buffer.popleft())
            except IndexError:  # a full buffer dropped some meanwhile
                break
        self._in_flight = len(taken)
        return taken

    def _requeue(self, records: list[PredictionRecord]) -> None:
        # Older than anything appended since, so they go back at the front.
        self._buffer.extendleft(reversed(records))
        self._in_flight = 0
        if len(self._buffer) > self._max_buffer:
            self._drop_oldest()

    def _count_dropped(self, count: int) -> None:
        with self._state_lock:
            self.dropped += count

    def _store(
        self,
        deployment_id: str,
        day: str,
        n_rows: int,
        data: bytes,
        span: tuple[datetime, datetime],
    ) -> None:
        # Blob first, then its row: a crash between them leaves an orphan blob (swept at
        # start), never a row pointing at nothing. Re-storing the same bytes is a no-op.
        digest = self._blobs.put_bytes(data)
        with self._db.session() as s:
            s.add(
                PredictionLogFile(
                    deployment_id=deployment_id,
                    day=day,
                    blob=digest,
                    n_rows=n_rows,
                    first_at=span[0],
                    last_at=span[1],
                )
            )


def _by_deployment_day(
    records: list[PredictionRecord],
) -> dict[tuple[str, str], list[PredictionRecord]]:
    groups: dict[tuple[str, str], list[PredictionRecord]] = {}
    for r in records:
        at = r.at if r.at.utcoffset() == timedelta(0) else r.at.astimezone(UTC)
        groups.setdefault((r.deployment_id, at.date().isoformat()), []).append(r)
    return groups


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _json(value: Any) -> str:
    """JSON text of a value; orjson is ~10x the standard library here (the flush's cost)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        # What orjson refuses (an integer beyond 64 bits, a cycle...) is written by the
        # standard library, as text if need be, rather than failing the batch it sits in.
        return json.dumps(value, default=str)


def _encode(records: list[PredictionRecord]) -> tuple[bytes, datetime, datetime]:
    """One zstd Parquet file of records in time order; also its first and last time."""
    columns: dict[str, Any] = {
        "prediction_id": [r.prediction_id for r in records],
        "at": pl.Series([(r.at - _EPOCH) // _US for r in records], dtype=pl.Int64).cast(
            _SCHEMA["at"]
        ),
        "deployment_id": [r.deployment_id for r in records],
        "deployment_name": [r.deployment_name for r in records],
        "model_version_id": [r.model_version_id for r in records],
        "revision": [r.revision for r in records],
        "arm": [r.arm for r in records],
        "caller": [r.caller for r in records],
        "latency_ms": [float(r.latency_ms) for r in records],
        "prediction": [_json(r.prediction) for r in records],
        "probabilities": [
            None if r.probabilities is None else _json(r.probabilities) for r in records
        ],
        # Arrow builds a list column from Python lists ~100x faster than Polars does.
        "flags": pl.from_arrow(
            pa.array([list(r.flags) for r in records], type=pa.large_list(pa.large_string()))
        ),
        "inputs": [_json(r.inputs) for r in records],
    }
    # Sorted by Polars, not list.sort: a sort in C holds the GIL from start to end.
    frame = pl.DataFrame(
        [pl.Series(name, values, dtype=_SCHEMA[name]) for name, values in columns.items()]
    ).sort(*_ORDER)
    out = io.BytesIO()
    frame.write_parquet(out, compression="zstd")
    at = frame.get_column("at")
    return out.getvalue(), at[0], at[-1]


# -- reading ------------------------------------------------------------------------


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            f"'{name}' must carry a time zone (UTC); got {value.isoformat()}.",
            details={"parameter": name},
        )
    return None if value is None else value.astimezone(UTC)


def _files(
    db: Database, deployment_id: str, since: datetime | None, until: datetime | None
) -> list[tuple[str, datetime]]:
    """(blob, first_at) of the files overlapping [since, until), oldest first."""
    f = PredictionLogFile
    query = select(f.blob, f.first_at).where(f.deployment_id == deployment_id)
    if since is not None:
        query = query.where(f.day >= since.date().isoformat(), f.last_at >= since)
    if until is not None:
        query = query.where(f.day <= until.date().isoformat(), f.first_at < until)
    with db.session() as s:
        return [(b, a) for b, a in s.execute(query.order_by(f.first_at, f.id))]


def _read_file(
    blobs: BlobStore,
    digest: str,
    since: datetime | None,
    until: datetime | None,
    after_id: str | None,
) -> pl.DataFrame:
    # Cast: batch jobs write the same columns, but a column that is all null there may
    # come back with another type.
    frame = pl.read_parquet(io.BytesIO(blobs.get_bytes(digest))).select(list(_SCHEMA))
    frame = frame.cast(_SCHEMA)
    at, pid = pl.col("at"), pl.col("prediction_id")
    if since is not None:
        cond = (
            at >= since if after_id is None else (at > since) | ((at == since) & (pid > after_id))
        )
        frame = frame.filter(cond)
    if until is not None:
        frame = frame.filter(at < until)
    return frame.sort(*_ORDER)


def read_predictions(
    db: Database,
    blobs: BlobStore,
    deployment_id: str,
    *,
    since: datetime | None,
    until: datetime | None = None,
    limit: int,
    after_id: str | None = None,
) -> list[dict[str, Any]]:
    """Return a deployment's predictions in [since, until), oldest first.

    Records are ordered by ``(at, prediction_id, arm)``. To page forward, pass the last
    record's ``at`` as ``since`` and its ``prediction_id`` as ``after_id``: the next page
    starts strictly after that prediction. A shadow's record shares its primary's id and
    time, so a page never ends between the two: it holds ``limit`` records, or
    ``limit + 1`` when the last one has a shadow twin (test ``len(page) >= limit`` for
    "there may be more"). Records still buffered in a :class:`PredictionLog` are not seen
    until it flushes.

    Args:
        db: The metadata database.
        blobs: The blob store holding the log files.
        deployment_id: Whose predictions.
        since: Earliest ``at`` (inclusive), or None for the beginning.
        until: End of the window (exclusive), or None for no end.
        limit: Records to return (1 to :data:`MAX_READ_LIMIT`), plus a last one's twin.
        after_id: Cursor tie-break: skip records at ``since`` up to this prediction id.

    Returns:
        Dicts with the :class:`PredictionRecord` fields; ``at`` as an ISO 8601 string in
        UTC ending in ``Z`` and JSON columns decoded.

    Raises:
        InvalidInput: a bad limit, a naive datetime, or ``after_id`` without ``since``.
    """
    _check_limit(limit)
    since, until = _aware("since", since), _aware("until", until)
    if after_id is not None and since is None:
        raise InvalidInput(
            "'after_id' pages from a record: pass that record's 'at' as 'since' too.",
            details={"parameter": "after_id"},
        )
    files = _files(db, deployment_id, since, until)
    rows = pl.DataFrame(schema=_SCHEMA)
    for index, (digest, _) in enumerate(files):
        frame = _read_file(blobs, digest, since, until, after_id)
        rows = _first_records(pl.concat([rows, frame]), limit)
        # Files are in first_at order, so once the page is full and the next file starts
        # after its last record, no later file can hold an earlier one (or a twin).
        if len(rows) >= limit and (index + 1 == len(files) or files[index + 1][1] > rows["at"][-1]):
            break
    return [_decode(row) for row in rows.iter_rows(named=True)]


def _first_records(rows: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The first ``limit`` records, plus the twins of the last one.

    A shadow's answer is logged under the primary's prediction id and time, and a page
    must not end between the two: the cursor (``since``, ``after_id``) skips both.
    """
    rows = rows.sort(*_ORDER)
    if len(rows) <= limit:
        return rows
    last_at, last_id = rows["at"][limit - 1], rows["prediction_id"][limit - 1]
    at, pid = pl.col("at"), pl.col("prediction_id")
    return rows.filter((at < last_at) | ((at == last_at) & (pid <= last_id)))


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_READ_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_READ_LIMIT:,}; got {limit}.",
            details={"parameter": "limit", "max": MAX_READ_LIMIT},
        )


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    # "Z", not "+00:00": the text goes into URLs (a paging cursor), where "+" is a space.
    row["at"] = row["at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
    for name in _JSON_COLUMNS:
        if row[name] is not None:
            row[name] = orjson.loads(row[name])
    return row


def export_predictions(
    db: Database,
    blobs: BlobStore,
    deployment_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    fmt: Literal["csv", "parquet"],
    out_path: Path,
) -> int:
    """Write a deployment's predictions in [since, until) to a CSV or Parquet file.

    The log is streamed one stored file at a time, so memory stays at one file's size;
    rows are in time order within each stored file and the files follow each other by
    their first record. In CSV, ``flags`` is JSON text like the other JSON columns. The
    output is written beside ``out_path`` and renamed into place when complete.

    Args:
        db: The metadata database.
        blobs: The blob store holding the log files.
        deployment_id: Whose predictions.
        since: Earliest ``at`` (inclusive), or None.
        until: End of the window (exclusive), or None.
        fmt: ``"csv"`` or ``"parquet"``.
        out_path: The file to write (replaced if it exists).

    Returns:
        How many records were written.

    Raises:
        InvalidInput: an unknown format or a naive datetime.
    """
    if fmt not in ("csv", "parquet"):
        raise InvalidInput(
            f"Export format '{fmt}' is not supported; use 'csv' or 'parquet'.",
            details={"parameter": "fmt", "allowed": ["csv", "parquet"]},
        )
    since, until = _aware("since", since), _aware("until", until)
    frames = (
        _read_file(blobs, digest, since, until, None)
        for digest, _ in _files(db, deployment_id, since, until)
    )
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        count = _write_csv(frames, partial) if fmt == "csv" else _write_parquet(frames, partial)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _write_csv(frames: Iterator[pl.DataFrame], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(_SCHEMA) + "\n")
        for frame in frames:
            flags = pl.Series("flags", [_json(v) for v in frame["flags"].to_list()], pl.String)
            frame.with_columns(flags).write_csv(
                out, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ"
            )
            count += len(frame)
    return count


def _write_parquet(frames: Iterator[pl.DataFrame], path: Path) -> int:
    count = 0
    # The oldest Arrow layout (large_string, not string_view) reads in every tool.
    compat = pl.CompatLevel.oldest()
    schema = pl.DataFrame(schema=_SCHEMA).to_arrow(compat_level=compat).schema
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for frame in frames:
            writer.write_table(frame.to_arrow(compat_level=compat).cast(schema))
            count += len(frame)
    return count


def count_predictions(db: Database, deployment_id: str, *, since: datetime | None = None) -> int:
    """How many predictions a deployment logged, from the file index (no blob reads).

    Args:
        db: The metadata database.
        deployment_id: Whose predictions.
        since: Only files whose last record is at or after this; a file that straddles
            ``since`` counts whole, so the number is an upper bound at file granularity.

    Returns:
        The number of logged records (buffered ones are not counted).

    Raises:
        InvalidInput: ``since`` is naive.
    """
    since = _aware("since", since)
    f = PredictionLogFile
    query = select(func.coalesce(func.sum(f.n_rows), 0)).where(f.deployment_id == deployment_id)
    if since is not None:
        query = query.where(f.day >= since.date().isoformat(), f.last_at >= since)
    with db.session() as s:
        return int(s.execute(query).scalar_one())


def delete_predictions_before(db: Database, blobs: BlobStore, cutoff: datetime) -> int:
    """Retention: delete every log file whose last record is older than ``cutoff``.

    Whole files go (rows first, then their blobs once no other row names them), so
    records of a file that straddles the cutoff stay until all of it is older. A crash
    between the two steps leaves orphan blobs, which the start-up sweep removes.

    Args:
        db: The metadata database.
        blobs: The blob store holding the log files.
        cutoff: Files whose ``last_at`` is before this are deleted.

    Returns:
        How many prediction records were deleted.

    Raises:
        InvalidInput: ``cutoff`` is naive.
    """
    aware = _aware("cutoff", cutoff)
    f = PredictionLogFile
    with db.session() as s:
        doomed = s.execute(select(f.id, f.blob, f.n_rows).where(f.last_at < aware)).all()
        ids = [row.id for row in doomed]
        for start in range(0, len(ids), 500):  # SQLite caps bound parameters
            s.execute(delete(f).where(f.id.in_(ids[start : start + 500])))
        digests = sorted({row.blob for row in doomed})
        kept: set[str] = set()
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            kept.update(s.scalars(select(f.blob).where(f.blob.in_(chunk))))
    for digest in set(digests) - kept:
        blobs.delete(digest)
    return sum(row.n_rows for row in doomed)
