"""Drift reports: a reference compared with a current sample, computed by a job and stored.

Two kinds of report:

- **version vs version**: any two dataset versions the caller may see;
- **a deployment's live traffic**: current = the inputs (and predictions) the deployment
  answered in a window of its prediction log (shadow answers left out: they repeat the
  primary's inputs); reference = the dataset version its served model version was
  trained on, or any version the caller names. The reference's predictions come from
  scoring a sample of it with the served model version.

Each side is sampled to at most :data:`MAX_SAMPLE_ROWS` rows (uniformly, seed 0); the
report states both the rows there were and the rows compared. The starting call checks
everything it can (versions, columns, window, thresholds) before any job is queued; the
job writes the full report as a JSON blob, then marks the row ``ready`` with a summary.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.core.data.parsing import FALSE_WORDS, TRUE_WORDS
from narrate.core.monitor.drift import LEVELS, Kind, compute_drift, thresholds_from_dict
from narrate.core.narrative.drift import describe_drift
from narrate.errors import InvalidInput, InvalidState, NotFound
from narrate.jobs.context import JobContext
from narrate.jobs.records import create_job
from narrate.services.alerts import after_drift_report
from narrate.services.datasets import get_version, load_frame
from narrate.services.spool import spool_dir
from narrate.storage.sql.tables import DatasetVersion, Deployment, DriftReport, ModelVersion, utcnow
from narrate.storage.sql.visibility import Owner, visible_deployment, visible_drift_report

__all__ = [
    "DRIFT_ENTRY",
    "MAX_SAMPLE_ROWS",
    "MAX_WINDOW",
    "PREDICTION_SAMPLE_ROWS",
    "drift_job",
    "get_report",
    "list_deployment_reports",
    "parse_window",
    "start_deployment_drift",
    "start_version_drift",
]

DRIFT_ENTRY = "narrate.services.drift:drift_job"
MAX_SAMPLE_ROWS = 1_000_000
"""Most rows compared on each side; larger samples are drawn uniformly (seed 0)."""
PREDICTION_SAMPLE_ROWS = 100_000
"""Most reference rows scored by the model to get the reference's predictions."""
MAX_WINDOW = timedelta(days=366)
PREDICTION = "prediction"
"""The name of the predictions in a deployment report (not an input column)."""

_WINDOW = re.compile(r"^\s*(\d{1,4})\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(text: str) -> timedelta:
    """Read a window like ``30m``, ``24h``, ``7d`` or ``2w``.

    Raises:
        InvalidInput: not of that form, zero, or longer than :data:`MAX_WINDOW`.
    """
    found = _WINDOW.match(text or "")
    window = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))}) if found else None
    if window is None or not timedelta(0) < window <= MAX_WINDOW:
        raise InvalidInput(
            f"window '{text}' is not a window Narrate reads: use a number and a unit, "
            "m (minutes), h (hours), d (days) or w (weeks), up to 366 days, like '7d'.",
            details={"parameter": "window", "value": text},
        )
    return window


def _check_columns(columns: list[str] | None, *versions: DatasetVersion) -> None:
    if columns is None:
        return
    if not columns:
        raise InvalidInput(
            "columns is empty; leave it out to compare every shared column.",
            details={"parameter": "columns"},
        )
    for version in versions:
        names = [c["name"] for c in version.columns or []]
        for column in columns:
            if column not in names:
                raise InvalidInput(
                    f"Column '{column}' is not in dataset version '{version.id}'.",
                    hint=f"Its columns are {', '.join(names[:20])}.",
                    details={"parameter": "columns", "column": column, "version_id": version.id},
                )


def _describe_version(v: DatasetVersion, kind: str = "dataset_version") -> dict[str, Any]:
    return {"kind": kind, "version_id": v.id, "dataset_id": v.dataset_id, "rows": int(v.n_rows)}


def _queue(container: Container, owner: Owner, report: DriftReport, params: dict[str, Any]) -> str:
    """Store the report row, queue its job and return the job id."""
    with container.db.session() as s:
        s.add(report)
        s.flush()
        report_id = report.id
    job_id = create_job(
        container.db,
        owner.user_id,
        "drift.report",
        {**params, "report_id": report_id, "is_admin": owner.is_admin},
    )
    with container.db.session() as s:
        row = s.get(DriftReport, report_id)
        assert row is not None  # noqa: S101 - written above
        row.job_id = job_id
    if container.executor is None:
        raise InvalidInput("No job executor is running.", code="no_executor")
    container.executor.submit(job_id, DRIFT_ENTRY)
    return job_id


def _started(job_id: str, report_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "status_url": f"/api/v1/jobs/{job_id}", "created_id": report_id}


def start_version_drift(
    container: Container,
    owner: Owner,
    *,
    reference_version_id: str,
    current_version_id: str,
    columns: list[str] | None = None,
    thresholds: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """Queue a report comparing two dataset versions.

    Returns:
        The ``JobStarted`` body; ``created_id`` is the report's id.

    Raises:
        NotFound: a version the caller may not see.
        InvalidInput: an unknown column or bad thresholds.
    """
    checked = thresholds_from_dict(thresholds)
    reference = get_version(container, owner, reference_version_id)
    current = get_version(container, owner, current_version_id)
    _check_columns(columns, reference, current)
    report = DriftReport(
        owner_id=owner.user_id,
        reference=_describe_version(reference),
        current=_describe_version(current),
    )
    params = {
        "mode": "versions",
        "reference_version_id": reference.id,
        "current_version_id": current.id,
        "columns": columns,
        "thresholds": checked.to_dict(),
    }
    job_id = _queue(container, owner, report, params)
    return _started(job_id, report.id)


def start_deployment_drift(
    container: Container,
    owner: Owner,
    name: str,
    *,
    window: str,
    reference_version_id: str | None = None,
    thresholds: dict[str, list[float]] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Queue a report on a deployment's traffic in the last ``window``.

    Returns:
        The ``JobStarted`` body; ``created_id`` is the report's id.

    Raises:
        NotFound: no such deployment or reference version for the caller.
        InvalidInput: a bad window or thresholds.
        InvalidState: the deployment answered nothing in the window.
    """
    from narrate.services.prediction_log import count_predictions

    span = parse_window(window)
    checked = thresholds_from_dict(thresholds)
    until = now or utcnow()
    since = until - span
    with container.db.session() as s:
        deployment = visible_deployment(s, owner, name)
        deployment_id, mv_id = deployment.id, deployment.model_version_id
        if thresholds is None:  # the deployment's own levels, else the defaults
            checked = thresholds_from_dict(deployment.drift_thresholds)
        mv = s.get(ModelVersion, mv_id)
        trained_on = mv.dataset_version_id if mv is not None else None
    reference = get_version(container, owner, reference_version_id or trained_on or "")
    if count_predictions(container.db, deployment_id, since=since) == 0:
        raise InvalidState(
            f"Deployment '{name}' logged no predictions in the last {window}.",
            hint="Pick a longer window, or send some predictions first.",
            details={"deployment": name, "window": window},
        )
    kind = "dataset_version" if reference_version_id else "training_data"
    report = DriftReport(
        owner_id=owner.user_id,
        deployment_id=deployment_id,
        reference={**_describe_version(reference, kind), "model_version_id": mv_id},
        current={
            "kind": "prediction_log",
            "deployment": name,
            "window": window,
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
    )
    params = {
        "mode": "deployment",
        "deployment_id": deployment_id,
        "model_version_id": mv_id,
        "reference_version_id": reference.id,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "thresholds": checked.to_dict(),
    }
    job_id = _queue(container, owner, report, params)
    return _started(job_id, report.id)


# --- the job ------------------------------------------------------------------------------


def _sample(frame: pl.DataFrame, limit: int) -> pl.DataFrame:
    return frame.sample(n=limit, seed=0) if frame.height > limit else frame


def _as_signature(frame: pl.DataFrame, columns: list[dict[str, Any]]) -> pl.DataFrame:
    """The signature's columns, each read the way the model reads it: numbers as floats,
    booleans as ``true``/``false``, dates as microseconds since 1970, everything else as
    text (a float that is a whole number as ``41``, not ``41.0``; blank text missing)."""
    out = []
    for spec in columns:
        name, kind = spec["name"], spec.get("type")
        col = pl.col(name)
        dtype = frame.schema[name]
        if kind in {"number", "integer"}:
            expr = (
                col.cast(pl.Float64)
                if dtype.is_numeric()
                else _text(col).cast(pl.Float64, strict=False)
            )
        elif kind == "boolean":
            text = col.cast(pl.String).str.strip_chars().str.to_lowercase()
            expr = (
                pl.when(text.is_in(list(TRUE_WORDS)))
                .then(pl.lit("true"))
                .when(text.is_in(list(FALSE_WORDS)))
                .then(pl.lit("false"))
                .otherwise(None)
            )
        elif kind == "datetime":
            expr = pl.lit(_epoch(frame.get_column(name)))
        elif dtype.is_float():
            expr = pl.when(col == col.floor()).then(col.cast(pl.Int64).cast(pl.String))
            expr = expr.otherwise(col.cast(pl.String))
        else:
            expr = _text(col)
        out.append(expr.alias(name))
    return frame.select(out)


def _epoch(series: pl.Series) -> pl.Series:
    """Dates and times as microseconds since 1970 (UTC), however they were written."""
    if not series.dtype.is_temporal():
        import pandas as pd

        text = series.cast(pl.String).to_pandas()
        parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
        series = pl.Series(series.name, parsed)
    return series.dt.epoch("us").cast(pl.Float64).alias(series.name)


def _text(col: pl.Expr) -> pl.Expr:
    text = col.cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _kinds(columns: list[dict[str, Any]]) -> dict[str, Kind]:
    return {
        c["name"]: "numeric"
        if c.get("type") in {"number", "integer", "datetime"}
        else "categorical"
        for c in columns
    }


def _window_frame(ctx: JobContext, params: dict[str, Any], folder: Path) -> pl.DataFrame:
    """The logged rows of the window (shadow answers left out), inputs still JSON."""
    from narrate.services.prediction_log import export_predictions

    path = folder / "window.parquet"
    export_predictions(
        ctx.db,
        ctx.blobs,
        params["deployment_id"],
        since=datetime.fromisoformat(params["since"]),
        until=datetime.fromisoformat(params["until"]),
        fmt="parquet",
        out_path=path,
    )
    return (
        pl.scan_parquet(path)
        .filter(pl.col("arm") != "shadow")
        .select("inputs", "prediction")
        .collect()
    )


def _deployment_frames(
    ctx: JobContext, container: Container, reference: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """(reference, current, notes) for a deployment report, predictions included."""
    from narrate.services.batch import prepare_chunk
    from narrate.services.predict import load_predictor

    params = ctx.params
    predictor = load_predictor(container, params["model_version_id"])
    columns = [
        c for c in predictor.signature.get("columns") or [] if c["name"] in reference.columns
    ]
    folder = Path(tempfile.mkdtemp(prefix="narrate-drift-", dir=spool_dir(ctx.settings)))
    try:
        ctx.progress(0.2, "Reading the prediction log")
        logged = _sample(_window_frame(ctx, params, folder), MAX_SAMPLE_ROWS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if logged.height == 0:
        raise InvalidState("The window holds no predictions any more (they were deleted).")
    struct = pl.Struct({c["name"]: pl.String for c in columns})
    inputs = logged.select(pl.col("inputs").str.json_decode(struct)).unnest("inputs")
    regression = predictor.task == "regression"
    predicted = logged.select(
        pl.col("prediction").str.json_decode(pl.Float64 if regression else pl.String)
    )
    current = _as_signature(inputs, columns).with_columns(predicted.get_column("prediction"))
    ctx.progress(0.4, "Scoring the reference with the served model")
    scored = _sample(reference, PREDICTION_SAMPLE_ROWS)
    frame, _ = prepare_chunk(predictor.signature, scored, filename="reference")
    labels, _ = predictor.score(frame)
    values = labels.astype(float) if regression else labels.astype(str)
    ref = _as_signature(reference, columns)
    ref_predictions = pl.Series(PREDICTION, values.tolist())
    notes = {"scored_rows": scored.height, "current_rows": logged.height}
    return ref, current, {"kinds": _kinds(columns), "predictions": ref_predictions, **notes}


def drift_job(ctx: JobContext) -> dict[str, Any]:
    """Job: compute a drift report and store it; a failure marks the report failed at
    once (the recovery sweep does it for a worker that died)."""
    try:
        return _run(ctx)
    except BaseException:
        with ctx.db.session() as s:
            row = s.get(DriftReport, ctx.params["report_id"])
            if row is not None and row.status != "ready":
                row.status = "failed"
        raise


def _run(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    container = Container(ctx.settings, ctx.db, ctx.blobs)
    owner = Owner(ctx.owner_id, bool(params.get("is_admin")))
    with ctx.db.session() as s:
        row = s.get(DriftReport, params["report_id"])
        if row is None:
            raise NotFound("The drift report was removed before its job ran.")
        row.status = "running"
        reference_info, current_info = dict(row.reference), dict(row.current)
    ctx.progress(0.05, "Loading the reference")
    reference_version = get_version(container, owner, params["reference_version_id"])
    reference_all = load_frame(container, reference_version)
    thresholds = thresholds_from_dict(params["thresholds"])
    if params["mode"] == "versions":
        current_version = get_version(container, owner, params["current_version_id"])
        current_all = load_frame(container, current_version)
        ref = _sample(reference_all, MAX_SAMPLE_ROWS)
        cur = _sample(current_all, MAX_SAMPLE_ROWS)
        ctx.progress(0.5, "Comparing the distributions")
        report = compute_drift(ref, cur, columns=params.get("columns"), thresholds=thresholds)
        current_info["sampled_rows"] = cur.height
    else:
        ref, cur, notes = _deployment_frames(ctx, container, reference_all)
        # Score a sample, but compare the inputs on the whole (capped) reference: the
        # predictions are compared as their own pair of samples.
        ref = _sample(ref, MAX_SAMPLE_ROWS)
        ctx.progress(0.6, "Comparing the distributions")
        report = compute_drift(
            ref, cur.drop(PREDICTION), kinds=notes["kinds"], thresholds=thresholds
        )
        predictions = compute_drift(
            notes["predictions"].to_frame(), cur.select(PREDICTION), thresholds=thresholds
        )
        report["prediction"] = predictions["columns"][0]
        report["overall"]["prediction_level"] = report["prediction"]["level"]
        report["overall"]["level"] = max(
            report["overall"]["level"], report["prediction"]["level"], key=LEVELS.index
        )
        current_info["rows"] = notes["current_rows"]
        current_info["sampled_rows"] = cur.height
        reference_info["scored_rows"] = notes["scored_rows"]
    reference_info["sampled_rows"] = ref.height
    importance = _importance_ranks(ctx, params.get("model_version_id"))
    for entry in report["columns"]:
        entry["importance_rank"] = importance.get(entry["column"])
    ctx.progress(0.9, "Storing the report")
    return _store(ctx, report, reference_info, current_info, importance)


def _importance_ranks(ctx: JobContext, mv_id: str | None) -> dict[str, int]:
    """Each input's rank by the model version's stored permutation importance (1 = most
    important), when they were computed (``GET /model-versions/{id}/importances``);
    they are not computed here, which would take minutes on large data."""
    if mv_id is None:
        return {}
    with ctx.db.session() as s:
        mv = s.get(ModelVersion, mv_id)
        stored = ((mv.details or {}).get("importances") or {}) if mv is not None else {}
    columns = [c for c in stored.get("columns") or [] if c.get("importance") is not None]
    ranked = sorted(columns, key=lambda c: -float(c["importance"]))
    return {str(c["column"]): i for i, c in enumerate(ranked, start=1)}


def _store(
    ctx: JobContext,
    report: dict[str, Any],
    reference_info: dict[str, Any],
    current_info: dict[str, Any],
    importance: dict[str, int],
) -> dict[str, Any]:
    narrative = describe_drift(report, importance=importance)
    full = {**report, "narrative": narrative, "reference": reference_info, "current": current_info}
    blob = ctx.blobs.put_bytes(orjson.dumps(full, option=orjson.OPT_SERIALIZE_NUMPY))
    summary = {
        "overall": report["overall"],
        "narrative": narrative["text"],
        "top": [
            {"column": e["column"], "psi": e["psi"], "level": e["level"]}
            for e in report["columns"][:10]
        ],
    }
    with ctx.db.session() as s:
        row = s.get(DriftReport, ctx.params["report_id"])
        assert row is not None  # noqa: S101 - read at the start of the job
        row.blob, row.summary, row.status = blob, summary, "ready"
        row.reference, row.current = reference_info, current_info
    after_drift_report(Container(ctx.settings, ctx.db, ctx.blobs), ctx.params.get("deployment_id"))
    return {"report_id": ctx.params["report_id"], "level": report["overall"]["level"]}


# --- reading ------------------------------------------------------------------------------


def _deployment_name(container: Container, deployment_id: str | None) -> str | None:
    if deployment_id is None:
        return None
    with container.db.session() as s:
        d = s.get(Deployment, deployment_id)
        return d.name if d is not None else None


def _row_dict(row: DriftReport, deployment: str | None) -> dict[str, Any]:
    summary = row.summary or {}
    return {
        "report_id": row.id,
        "status": row.status,
        "created_at": row.created_at,
        "job_id": row.job_id,
        "deployment": deployment,
        "reference": row.reference,
        "current": row.current,
        "overall": summary.get("overall"),
        "narrative_text": summary.get("narrative"),
    }


def get_report(container: Container, owner: Owner, report_id: str) -> dict[str, Any]:
    """A drift report: its descriptors and status, and once ready its columns, overall
    summary, predictions and narrative.

    Raises:
        NotFound: no such report for the caller (or its deployment is undeployed).
    """
    with container.db.session() as s:
        row = visible_drift_report(s, owner, report_id)
        s.expunge(row)
    out = _row_dict(row, _deployment_name(container, row.deployment_id))
    out.update({"columns": [], "prediction": None, "narrative": None, "thresholds": None})
    if row.status == "ready" and row.blob:
        full = orjson.loads(container.blobs.get_bytes(row.blob))
        for key in ("columns", "prediction", "overall", "narrative", "thresholds"):
            out[key] = full.get(key)
    out.pop("narrative_text")
    return out


def list_deployment_reports(
    container: Container, owner: Owner, name: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A deployment's drift reports, newest first, as summaries.

    Returns:
        (items, total).

    Raises:
        NotFound: no such deployment for the caller.
    """
    with container.db.session() as s:
        deployment = visible_deployment(s, owner, name)
        where = (DriftReport.deployment_id == deployment.id) & DriftReport.deleted_at.is_(None)
        ids = s.scalars(
            select(DriftReport.id)
            .where(where)
            .order_by(DriftReport.created_at.desc(), DriftReport.id)
        ).all()
        # The rule also hides a report whose compared dataset is deleted; a deployment
        # has few reports, so each is checked by the one rule rather than in SQL.
        rows = []
        for report_id in ids:
            try:
                rows.append(visible_drift_report(s, owner, report_id))
            except NotFound:
                continue
        items = [_row_dict(r, name) for r in rows[offset : offset + limit]]
        total = len(rows)
    for item in items:
        item["narrative"] = item.pop("narrative_text")
    return items, total
