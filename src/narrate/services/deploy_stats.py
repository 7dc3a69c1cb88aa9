"""Live traffic of a deployment from its prediction log: a per-minute series, each arm's
latency and flags, and how a shadow or canary compares with the primary."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import polars as pl
from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.services.predict import DeploymentRuntime
from narrate.storage.sql.tables import PredictionLogFile, utcnow

__all__ = ["deployment_stats"]

#: Most log files read for one stats answer (the newest first): a bound on its cost.
MAX_FILES = 500


def _window(container: Container, deployment_id: str, hours: float) -> pl.DataFrame:
    since = utcnow() - timedelta(hours=hours)
    with container.db.session() as s:
        rows = list(
            s.scalars(
                select(PredictionLogFile.blob)
                .where(
                    PredictionLogFile.deployment_id == deployment_id,
                    PredictionLogFile.last_at >= since,
                )
                .order_by(PredictionLogFile.last_at.desc())
                .limit(MAX_FILES)
            )
        )
    columns = [
        "prediction_id",
        "at",
        "model_version_id",
        "arm",
        "latency_ms",
        "prediction",
        "flags",
    ]
    frames = [
        pl.read_parquet(io.BytesIO(container.blobs.get_bytes(blob)), columns=columns)
        for blob in rows
    ]
    if not frames:
        return pl.DataFrame()
    frame = pl.concat(frames, how="vertical_relaxed")
    return frame.filter(pl.col("at") >= since)


def _arm(frame: pl.DataFrame, task: str | None) -> dict[str, Any]:
    if frame.is_empty():
        return {
            "model_version_id": None,
            "n": 0,
            "latency_p50_ms": None,
            "latency_p95_ms": None,
            "flagged_share": None,
            "prediction_mean": None,
        }
    latency = frame.get_column("latency_ms")
    flagged = frame.select((pl.col("flags").list.len() > 0).mean()).item()
    if task == "regression":
        values = frame.get_column("prediction").cast(pl.Float64, strict=False)
        mean = values.mean()
    else:
        counts = frame.get_column("prediction").value_counts(sort=True)
        mean = counts.get_column("count")[0] / frame.height if counts.height else None
    return {
        "model_version_id": frame.get_column("model_version_id")[-1],
        "n": frame.height,
        "latency_p50_ms": round(float(latency.quantile(0.5) or 0.0), 4),
        "latency_p95_ms": round(float(latency.quantile(0.95) or 0.0), 4),
        "flagged_share": round(float(flagged), 4) if flagged is not None else None,
        "prediction_mean": float(mean) if isinstance(mean, int | float) else None,
    }


def _agreement(frame: pl.DataFrame, task: str | None) -> float | None:
    primary = frame.filter(pl.col("arm") == "primary").select("prediction_id", "prediction")
    shadow = frame.filter(pl.col("arm") == "shadow").select(
        "prediction_id", pl.col("prediction").alias("shadow")
    )
    pairs = primary.join(shadow, on="prediction_id", how="inner")
    if pairs.is_empty():
        return None
    if task == "regression":
        a = pairs.get_column("prediction").cast(pl.Float64, strict=False)
        b = pairs.get_column("shadow").cast(pl.Float64, strict=False)
        scale = (a.abs() + b.abs()) / 2
        same = ((a - b).abs() <= 0.05 * scale).mean()
    else:
        same = (pairs.get_column("prediction") == pairs.get_column("shadow")).mean()
    return round(float(same or 0.0), 4) if isinstance(same, int | float) else None


def deployment_stats(
    container: Container, runtime: DeploymentRuntime, hours: float
) -> dict[str, Any]:
    """Traffic of the last ``hours``: per-minute counts and median latency, each arm's
    statistics and, for a shadow, how often it agrees with the primary."""
    task = runtime.primary.task
    frame = _window(container, runtime.deployment_id, hours)
    if frame.is_empty():
        return {
            "deployment": runtime.name,
            "window_hours": hours,
            "total": 0,
            "series": [],
            "arms": {"primary": _arm(frame, task)},
            "agreement_rate": None,
        }
    served = frame.filter(pl.col("arm") != "shadow")
    series = (
        served.group_by(pl.col("at").dt.truncate("1m").alias("minute"))
        .agg(pl.len().alias("n"), pl.col("latency_ms").median().alias("latency_p50_ms"))
        .sort("minute")
        .tail(24 * 60)
    )
    arms = {
        arm: _arm(frame.filter(pl.col("arm") == arm), task)
        for arm in ("primary", "canary", "shadow", "batch")
        if arm == "primary" or not frame.filter(pl.col("arm") == arm).is_empty()
    }
    return {
        "deployment": runtime.name,
        "window_hours": hours,
        "total": served.height,
        "series": [
            {
                "minute": row["minute"].isoformat(),
                "n": row["n"],
                "latency_p50_ms": round(float(row["latency_p50_ms"] or 0.0), 4),
            }
            for row in series.iter_rows(named=True)
        ],
        "arms": arms,
        "agreement_rate": _agreement(frame, task) if "shadow" in arms else None,
    }
