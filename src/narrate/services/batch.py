"""Batch scoring: a file (or a dataset version) scored by a deployment as a job.

The input is read in chunks of ``batch_chunk_rows`` (CSV/TSV and Parquet stream from
disk; other formats Upload reads are read whole, within the upload limits), each chunk is
checked against the input signature column by column, scored, appended to a Parquet
output and to the prediction log, so memory follows the chunk size, not the file.

Bad values do not fail the job: a value that cannot be read as the column's type is
scored as missing and flagged ``invalid:<column>``. A column the model needs that the
file lacks fails the job at once, naming the file and the column.

The job works in a private spool folder that is removed when it ends, whether it
succeeds, fails or is cancelled (a crash leaves it to the start-up sweep). The output is
a blob named in the job's result until ``batch_output_retention_hours`` pass.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from narrate.bootstrap import Container
from narrate.core.data.parsing import FALSE_WORDS, TRUE_WORDS
from narrate.errors import InvalidInput, NarrateError
from narrate.jobs.context import JobContext
from narrate.jobs.records import create_job
from narrate.services.spool import SPOOL_PREFIX, spool_dir
from narrate.storage.sql.tables import Job, PredictionLogFile, utcnow

__all__ = [
    "BATCH_ENTRY",
    "BATCH_PREFIX",
    "batch_job",
    "expire_outputs",
    "prepare_chunk",
    "start_batch",
]

log = logging.getLogger(__name__)

BATCH_ENTRY = "narrate.services.batch:batch_job"
#: The job's working folder; its prefix lets the spool sweep remove what a crash left.
BATCH_PREFIX = SPOOL_PREFIX + "batch-"


def start_batch(
    container: Container,
    *,
    deployment_id: str,
    deployment_name: str,
    owner_id: str,
    caller: str,
    input_path: Path | None,
    filename: str | None,
    version_id: str | None,
) -> dict[str, Any]:
    """Queue a batch job; an uploaded file is moved into the job's own folder first.

    Returns:
        The ``JobStarted`` body.
    """
    folder = Path(tempfile.mkdtemp(prefix=BATCH_PREFIX, dir=spool_dir(container.settings)))
    params: dict[str, Any] = {
        "deployment_id": deployment_id,
        "deployment_name": deployment_name,
        "caller": caller,
        "folder": str(folder),
        "version_id": version_id,
        "filename": filename,
    }
    try:
        if input_path is not None:
            shutil.move(str(input_path), folder / "input.bin")
        job_id = create_job(container.db, owner_id, "deployment.batch", params)
        if container.executor is None:
            raise InvalidInput("No job executor is running.", code="no_executor")
        container.executor.submit(job_id, BATCH_ENTRY)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {
        "job_id": job_id,
        "status_url": f"/api/v1/deployments/{deployment_name}/batch/{job_id}",
        "created_id": None,
        "output_url": f"/api/v1/deployments/{deployment_name}/batch/{job_id}/output",
    }


# --- reading ------------------------------------------------------------------------------


def _delimiter(path: Path, default: str) -> str:
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        head = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def _chunks(path: Path, filename: str, chunk_rows: int, settings: Any) -> Iterator[pl.DataFrame]:
    """The file's rows, ``chunk_rows`` at a time, as strings (CSV) or typed (Parquet)."""
    suffix = Path(filename).suffix.lower()
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield pl.from_arrow(batch)  # type: ignore[misc]
        return
    if suffix in {".csv", ".tsv", ".txt"} and magic[:2] != b"\x1f\x8b":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        delimiter = _delimiter(path, "\t" if suffix == ".tsv" else ",")
        with path.open("rb") as handle:
            header = next(
                csv.reader([handle.readline().decode("utf-8-sig", "replace")], delimiter=delimiter)
            )
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=8 * 1024 * 1024),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=True
            ),
        )
        pending: list[pl.DataFrame] = []
        size = 0
        for batch in reader:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a record batch is a frame
            pending.append(frame)
            size += frame.height
            while size >= chunk_rows:
                whole = pl.concat(pending)
                yield whole.head(chunk_rows)
                rest = whole.slice(chunk_rows)
                pending, size = [rest], rest.height
        if size:
            yield pl.concat(pending)
        return
    from narrate.core.data.limits import ReadLimits
    from narrate.core.data.readers import read_table

    limits = ReadLimits(
        max_columns=settings.max_columns,
        max_cells=settings.max_cells,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_json_depth=settings.max_json_depth,
    )
    frame = read_table(path, filename=filename, limits=limits).frame
    for start in range(0, frame.height, chunk_rows):
        yield frame.slice(start, chunk_rows)


# --- checking -----------------------------------------------------------------------------


def prepare_chunk(
    signature: dict[str, Any], chunk: pl.DataFrame, *, filename: str
) -> tuple[pd.DataFrame, pl.Series]:
    """Check a chunk against the input signature, column by column.

    Returns:
        The rows as the model takes them (the signature's columns and types) and each
        row's flags: ``missing``, ``unseen_category``, ``out_of_range`` and ``invalid``
        (a value that is not of the column's type, scored as missing).

    Raises:
        InvalidInput: the file lacks a column the model needs.
    """
    columns = signature.get("columns") or []
    missing = [c["name"] for c in columns if c["name"] not in chunk.columns]
    if missing:
        raise InvalidInput(
            f"'{filename}' has no column {', '.join(repr(m) for m in missing)}, which the "
            "model needs.",
            code="missing_column",
            details={"file": filename, "column": missing[0], "missing_columns": missing},
        )
    n = chunk.height
    values: list[pl.Expr] = []  # one per model column, named as the column
    masks: list[tuple[str, pl.Expr]] = []  # (flag label, where it applies)
    dates: list[str] = []
    for spec in columns:
        name, kind = spec["name"], spec.get("type")
        dtype = chunk.schema[name]
        col = pl.col(name)
        is_text = dtype == pl.String
        blank = col.is_null() | (col.str.strip_chars() == "") if is_text else col.is_null()
        invalid: pl.Expr | None = None
        if kind in {"number", "integer"}:
            number = (col.str.strip_chars() if is_text else col).cast(pl.Float64, strict=False)
            invalid = number.is_null() & ~blank
            values.append(number.alias(name))
            low, high = spec.get("min"), spec.get("max")
            if low is not None and high is not None:
                masks.append(
                    (f"out_of_range:{name}", (number < float(low)) | (number > float(high)))
                )
        elif kind == "boolean":
            if dtype == pl.Boolean:
                values.append(col.alias(name))
            else:
                word = col.cast(pl.String).str.strip_chars().str.to_lowercase()
                flag = (
                    pl.when(word.is_in(list(TRUE_WORDS)))
                    .then(True)
                    .when(word.is_in(list(FALSE_WORDS)))
                    .then(False)
                    .otherwise(None)
                )
                invalid = flag.is_null() & ~blank
                values.append(flag.alias(name))
        elif kind == "datetime":
            dates.append(name)
            values.append(col.cast(pl.String).alias(name))
        else:
            if dtype in (pl.Float32, pl.Float64):
                # "41.0" read from a float column is the category "41" the model knows.
                text = (
                    pl.when(col == col.floor())
                    .then(col.cast(pl.Int64, strict=False).cast(pl.String))
                    .otherwise(col.cast(pl.String))
                )
            else:
                text = col.cast(pl.String, strict=False)
            value = pl.when(blank).then(None).otherwise(text)
            values.append(value.alias(name))
            known = spec.get("categories")
            if kind == "category" and known and not spec.get("categories_truncated"):
                seen = [str(k) for k in known]
                masks.append((f"unseen_category:{name}", ~value.is_in(seen) & value.is_not_null()))
        masks.append((f"missing:{name}", blank if invalid is None else blank & ~invalid))
        if invalid is not None:
            masks.append((f"invalid:{name}", invalid))
    # One pass over the chunk: Polars runs the columns' expressions in parallel.
    out = chunk.select(
        *values, *[m.fill_null(False).alias(f"\x00{i}") for i, (_, m) in enumerate(masks)]
    )
    data: dict[str, Any] = {}
    for spec in columns:
        name, kind = spec["name"], spec.get("type")
        series = out.get_column(name)
        if kind in {"number", "integer"}:
            data[name] = series.to_numpy().astype(float, copy=False)
        elif kind == "boolean":
            data[name] = np.asarray(series.to_list(), dtype=object)
        elif name in dates:
            data[name] = pd.to_datetime(series.to_pandas(), errors="coerce", format="mixed")
        else:  # object strings with None for missing, as check_rows gives single rows
            data[name] = np.asarray(series.to_list(), dtype=object)
    flag_columns = [
        (label, out.get_column(f"\x00{i}").to_numpy()) for i, (label, _) in enumerate(masks)
    ]
    for name in dates:  # dates are parsed by pandas (many formats): flag what it could not read
        unread = data[name].isna().to_numpy() & ~out.get_column(name).is_null().to_numpy()
        if unread.any():
            flag_columns.append((f"invalid:{name}", unread))
    # Explicit dtypes: pandas would otherwise turn object strings into its string dtype.
    frame = pd.DataFrame(
        {
            name: values if isinstance(values, pd.Series) else pd.Series(values, dtype=values.dtype)
            for name, values in data.items()
        }
    )
    return frame, _flag_lists(flag_columns, n)


def _flag_lists(flag_columns: list[tuple[str, np.ndarray]], n: int) -> pl.Series:
    """Each row's flags, sorted, as one list column (built column-wise: no per-row Python).

    The labels are joined as text first and split once: Polars builds lists from
    ``concat_list`` of many columns about ten times slower than it concatenates strings.
    """
    flagged = [
        (label, mask) for label, mask in sorted(flag_columns, key=lambda f: f[0]) if mask.any()
    ]
    if not flagged:
        # n empty lists, made by Polars (a Python list of n lists costs ~0.7 s per 100k rows)
        return pl.Series("flags", [[]], dtype=pl.List(pl.String)).new_from_index(0, n)
    masks = pl.DataFrame({str(i): mask for i, (_, mask) in enumerate(flagged)})
    text = masks.select(
        pl.concat_str(
            [
                pl.when(pl.col(str(i))).then(pl.lit(label + ";")).otherwise(pl.lit(""))
                for i, (label, _) in enumerate(flagged)
            ]
        )
        .str.strip_suffix(";")
        .alias("flags")
    ).get_column("flags")
    empty = pl.lit([], dtype=pl.List(pl.String))
    return pl.select(
        pl.when(text == "").then(empty).otherwise(text.str.split(";")).alias("flags")
    ).get_column("flags")


# --- the job ------------------------------------------------------------------------------


def _output_frame(
    chunk: pl.DataFrame,
    predictor: Any,
    labels: np.ndarray,
    proba: np.ndarray | None,
    ids: list[str],
    flags: pl.Series,
) -> pl.DataFrame:
    out = chunk.with_columns(
        pl.Series("prediction", labels.tolist()),
        pl.Series("prediction_id", ids, dtype=pl.String),
        flags.list.join(";").alias("flags"),
    )
    if proba is not None:
        for j, cls in enumerate(predictor.classes or []):
            out = out.with_columns(pl.Series(f"probability_{cls}", proba[:, j]))
    elif predictor.interval and predictor.interval.get("half_width") is not None:
        half = float(predictor.interval["half_width"])
        out = out.with_columns(
            pl.Series("interval_low", labels.astype(float) - half),
            pl.Series("interval_high", labels.astype(float) + half),
        )
    return out


def _log_chunk(
    ctx: JobContext,
    chunk: pl.DataFrame,
    predictor: Any,
    labels: np.ndarray,
    proba: np.ndarray | None,
    ids: list[str],
    flags: pl.Series,
    latency_ms: float,
    revision: int,
) -> None:
    """Append a chunk to the prediction log as one Parquet file (columnar, no per-row
    Python objects): same columns as the request path writes."""
    at = utcnow()
    inputs = chunk.select(
        pl.struct([pl.col(c) for c in chunk.columns]).struct.json_encode().alias("inputs")
    ).get_column("inputs")
    # The prediction as JSON text, encoded by Polars: '{"p":<json>}' minus its wrapper.
    wrapped = pl.DataFrame({"p": labels}).select(pl.struct("p").struct.json_encode().alias("p"))
    prediction = wrapped.get_column("p").str.slice(5).str.strip_suffix("}").alias("prediction")
    n = chunk.height
    if proba is not None:
        names = [str(c) for c in predictor.classes or []]
        probabilities = (
            pl.DataFrame({name: np.round(proba[:, j], 6) for j, name in enumerate(names)})
            .select(pl.struct(pl.all()).struct.json_encode().alias("p"))
            .get_column("p")
        )
    else:
        probabilities = pl.repeat(None, n, dtype=pl.String, eager=True)

    def same(value: Any, dtype: Any) -> pl.Series:
        return pl.repeat(value, n, dtype=dtype, eager=True)

    frame = pl.DataFrame(
        {
            "prediction_id": pl.Series(ids, dtype=pl.String),
            "at": same(at, pl.Datetime("us", "UTC")),
            "deployment_id": same(ctx.params["deployment_id"], pl.String),
            "deployment_name": same(ctx.params["deployment_name"], pl.String),
            "model_version_id": same(predictor.model_version_id, pl.String),
            "revision": same(revision, pl.Int64),
            "arm": same("batch", pl.String),
            "caller": same(ctx.params["caller"], pl.String),
            "latency_ms": same(latency_ms / max(n, 1), pl.Float64),
            "prediction": prediction,
            "probabilities": probabilities,
            "flags": flags,
            "inputs": inputs,
        }
    )
    import io

    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    blob = ctx.blobs.put_bytes(buffer.getvalue())
    with ctx.db.session() as s:
        s.add(
            PredictionLogFile(
                deployment_id=ctx.params["deployment_id"],
                day=at.strftime("%Y-%m-%d"),
                blob=blob,
                n_rows=n,
                first_at=at,
                last_at=at,
            )
        )


def _new_ids(n: int) -> list[str]:
    """``n`` random 32-hex-digit prediction ids (as ``uuid4().hex`` is, minus the version
    bits), made from one read of the system's random source."""
    text = os.urandom(16 * n).hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


#: From this many rows (a dataset version) or bytes (a file) a batch job compiles the
#: model's trees before scoring instead of beside it.
_COMPILE_NOW_ROWS = 200_000
_COMPILE_NOW_BYTES = 20 * 1024 * 1024


def batch_job(ctx: JobContext) -> dict[str, Any]:
    """Job: score a file or dataset version with a deployment, chunk by chunk."""
    from narrate.services.predict import load_predictor
    from narrate.storage.sql.tables import Deployment

    folder = Path(ctx.params["folder"])
    try:
        container = Container(ctx.settings, ctx.db, ctx.blobs)
        with ctx.db.session() as s:
            d = s.get(Deployment, ctx.params["deployment_id"])
            if d is None or d.deleted_at is not None:
                raise InvalidInput("The deployment was undeployed before the job started.")
            mv_id, revision = d.model_version_id, d.revision
        folder.mkdir(parents=True, exist_ok=True)
        if ctx.params.get("version_id"):
            from narrate.services.datasets import Owner, get_version, load_frame

            version = get_version(container, Owner(ctx.owner_id, False), ctx.params["version_id"])
            source = folder / "input.parquet"
            load_frame(container, version).write_parquet(source)
            filename, total = f"version-{version.id}.parquet", int(version.n_rows)
            big = total >= _COMPILE_NOW_ROWS
        else:
            source = folder / "input.bin"
            filename = ctx.params.get("filename") or "input.csv"
            total = 0
            big = source.exists() and source.stat().st_size >= _COMPILE_NOW_BYTES
        ctx.progress(0.01, "Loading the model")
        # Compiling trees takes seconds once per model and then scores several times
        # faster: worth waiting for before a large input, done on the side otherwise.
        predictor = load_predictor(container, mv_id, compile_trees="now" if big else "background")
        return _score(ctx, predictor, revision, source, filename, total, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _score(
    ctx: JobContext,
    predictor: Any,
    revision: int,
    source: Path,
    filename: str,
    total: int,
    folder: Path,
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out_path = folder / "output.parquet"
    writers: list[pq.ParquetWriter] = []
    done, flagged, started = 0, 0, time.monotonic()
    size = source.stat().st_size
    read_bytes = 0.0
    chunk_rows = ctx.settings.batch_chunk_rows

    def write(chunk: pl.DataFrame, scored: tuple[Any, ...], latency_ms: float) -> None:
        labels, proba, ids, flags = scored
        table = _output_frame(chunk, predictor, labels, proba, ids, flags).to_arrow()
        if not writers:
            writers.append(pq.ParquetWriter(out_path, table.schema, compression="zstd"))
        else:
            table = table.cast(writers[0].schema)
        writers[0].write_table(table)
        _log_chunk(ctx, chunk, predictor, labels, proba, ids, flags, latency_ms, revision)

    # A chunk is written (output file and prediction log) on a second thread while the
    # next one is read, checked and scored; at most one write is in flight, so memory
    # stays at about two chunks.
    pool = ThreadPoolExecutor(1, thread_name_prefix="narrate-batch-write")
    pending: Future[None] | None = None
    try:
        for chunk in _chunks(source, filename, chunk_rows, ctx.settings):
            ctx.check_cancelled()
            scored_at = time.perf_counter()
            frame, flags = prepare_chunk(predictor.signature, chunk, filename=filename)
            labels, proba = predictor.score(frame)
            latency_ms = (time.perf_counter() - scored_at) * 1000
            ids = _new_ids(chunk.height)
            if pending is not None:
                pending.result()  # the previous chunk is written (its error surfaces here)
            pending = pool.submit(write, chunk, (labels, proba, ids, flags), latency_ms)
            done += chunk.height
            flagged += int((flags.list.len() > 0).sum())
            read_bytes = min(size, read_bytes + chunk.estimated_size())
            fraction = done / total if total else min(0.95, read_bytes / max(size, 1))
            ctx.progress(
                0.02 + 0.9 * min(fraction, 1.0), f"Scored {done:,} rows", data={"rows_done": done}
            )
        if pending is not None:
            pending.result()
    finally:
        pool.shutdown(wait=True)  # a write in flight ends before the file is closed
        for writer in writers:
            writer.close()
    if not writers:
        raise InvalidInput(f"'{filename}' has no rows to score.", details={"file": filename})
    ctx.progress(0.95, "Storing the output")
    blob = ctx.blobs.put_file(out_path)
    seconds = time.monotonic() - started
    expires = utcnow() + timedelta(hours=ctx.settings.batch_output_retention_hours)
    return {
        "deployment": ctx.params["deployment_name"],
        "model_version_id": predictor.model_version_id,
        "rows": done,
        "flagged_rows": flagged,
        "output_blob": blob,
        "output_bytes": out_path.stat().st_size,
        "seconds": round(seconds, 3),
        "rows_per_s": round(done / seconds, 1) if seconds > 0 else None,
        "expires_at": expires.isoformat(),
    }


def expire_outputs(container: Container) -> int:
    """Forget batch outputs past their retention; their blobs go with the orphan sweep.

    Returns:
        How many outputs expired.
    """
    from sqlalchemy import select

    now = utcnow()
    expired = 0
    with container.db.session() as s:
        rows = s.scalars(
            select(Job).where(Job.kind == "deployment.batch", Job.status == "succeeded")
        )
        for job in rows:
            result = dict(job.result or {})
            blob, until = result.get("output_blob"), result.get("expires_at")
            if not blob or not until:
                continue
            from datetime import datetime

            if datetime.fromisoformat(until) > now:
                continue
            result.pop("output_blob")
            result["expired"] = True
            job.result = result
            try:
                container.blobs.delete(blob)
            except (NarrateError, OSError):
                log.warning("could not remove expired batch output %s", blob)
            expired += 1
    return expired
