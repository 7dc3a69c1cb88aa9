"""Live performance of a deployment: its logged predictions scored against their actuals,
per time window, compared with the deployed version's holdout evaluation.

A prediction counts in the window its ``at`` (when it was answered) falls in, once an
actual was posted for it. The windows and the degradation check use the answers the
callers got (primary and canary arms); shadow answers count only in the ``by=version`` and
``by=arm`` breakdowns, where they show how the shadow would have done on the same traffic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import orjson
import polars as pl
from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.core.monitor.performance import (
    BOOTSTRAP_REPEATS,
    BOOTSTRAP_SEED,
    LEVEL,
    MAX_WINDOWS,
    Degradation,
    Labelled,
    assign_windows,
    compute_metrics,
    find_degradation,
    primary_metric,
    tile_windows,
)
from narrate.core.narrative.performance import describe_performance
from narrate.errors import InvalidInput
from narrate.services.actuals import Target, deployment_target, logged_frame
from narrate.services.drift import parse_window
from narrate.storage.sql.tables import ModelVersion, PredictionActual, utcnow
from narrate.storage.sql.visibility import Owner, visible_deployment

__all__ = ["DEFAULT_WINDOWS", "deployment_performance"]

DEFAULT_WINDOWS = 12
"""Windows shown when ``since`` is not given."""
_LOG_COLUMNS = ("prediction_id", "at", "model_version_id", "arm", "prediction", "probabilities")
By = Literal["version", "arm"]
_CHUNK = 1000


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            f"'{name}' must carry a time zone (e.g. 2026-01-31T00:00:00Z); got "
            f"{value.isoformat()}.",
            details={"parameter": name},
        )
    return value


def _windows(
    window: str, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[timedelta, list[tuple[datetime, datetime]]]:
    span = parse_window(window)
    end = _aware("until", until) or now
    start = _aware("since", since) or end - DEFAULT_WINDOWS * span
    if start >= end:
        raise InvalidInput(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()}).",
            details={"parameter": "since"},
        )
    try:
        return span, tile_windows(start, end, span)
    except ValueError as exc:
        raise InvalidInput(
            f"window '{window}' cuts since..until into more than {MAX_WINDOWS} windows.",
            hint="Pick a longer window or a shorter range.",
            details={"parameter": "window", "value": window, "max_windows": MAX_WINDOWS},
        ) from exc


def _labelled_frame(
    container: Container, deployment_id: str, since: datetime, until: datetime
) -> pl.DataFrame:
    """Logged predictions in [since, until) that have an actual, with the actual."""
    logged = logged_frame(container, deployment_id, since=since, until=until, columns=_LOG_COLUMNS)
    pa = PredictionActual
    # By the logged ids (the unique index), not by when actuals arrived: an actual may be
    # posted before a running batch job logs its prediction.
    ids = logged["prediction_id"].unique().to_list()
    rows: list[Any] = []
    with container.db.session() as s:
        for start in range(0, len(ids), _CHUNK):
            query = select(pa.prediction_id, pa.actual).where(
                pa.deployment_id == deployment_id,
                pa.prediction_id.in_(ids[start : start + _CHUNK]),
            )
            rows += s.execute(query).all()
    actuals = pl.DataFrame(
        {
            "prediction_id": [r[0] for r in rows],
            "actual": [orjson.dumps(r[1]).decode() for r in rows],
        },
        schema={"prediction_id": pl.String, "actual": pl.String},
    )
    return logged.join(actuals, on="prediction_id", how="inner")


def _arrays(frame: pl.DataFrame, target: Target) -> tuple[Labelled, np.ndarray]:
    """The labelled data of every row of ``frame`` and each row's time in microseconds."""
    actual = [orjson.loads(v) for v in frame["actual"].to_list()]
    predicted = [orjson.loads(v) for v in frame["prediction"].to_list()]
    times = frame["at"].dt.epoch("us").to_numpy()
    if target.is_regression:
        data = Labelled(
            target.task,
            np.asarray(actual, dtype=float),
            np.asarray([np.nan if v is None else v for v in predicted], dtype=float),
        )
        return data, times
    classes = list(target.classes)
    proba: np.ndarray | None = np.full((frame.height, len(classes)), np.nan)
    for i, text in enumerate(frame["probabilities"].to_list()):
        if text is not None and proba is not None:
            probs = orjson.loads(text)
            proba[i] = [float(probs.get(c, 0.0)) for c in classes]
    data = Labelled(
        target.task,
        np.asarray([str(v) for v in actual], dtype=object),
        np.asarray([str(v) for v in predicted], dtype=object),
        proba,
        tuple(classes),
        target.positive_class,
    )
    return data, times


def _window_rows(
    data: Labelled,
    rows: np.ndarray,
    where: np.ndarray,
    windows: list[tuple[datetime, datetime]],
    now: datetime,
) -> list[dict[str, Any]]:
    out = []
    for k, (start, end) in enumerate(windows):
        index = rows[where[rows] == k]
        metrics, intervals = compute_metrics(data.subset(index))
        out.append(
            {
                "start": start,
                "end": end,
                "is_complete": end <= now,
                "n": len(index),
                "metrics": metrics,
                "intervals": intervals,
            }
        )
    return out


def _baselines(container: Container, mv_ids: list[str]) -> dict[str, dict[str, float]]:
    """Each version's holdout metrics: name → value."""
    with container.db.session() as s:
        rows = s.scalars(select(ModelVersion).where(ModelVersion.id.in_(mv_ids))).all()
        return {
            mv.id: {
                name: float(entry["value"])
                for name, entry in (mv.metrics or {}).items()
                if isinstance(entry, dict) and entry.get("value") is not None
            }
            for mv in rows
        }


def _groups(
    frame: pl.DataFrame,
    data: Labelled,
    where: np.ndarray,
    windows: list[tuple[datetime, datetime]],
    by: By,
    baselines: dict[str, dict[str, float]],
    now: datetime,
) -> dict[str, Any]:
    column = "model_version_id" if by == "version" else "arm"
    keys = frame[column].to_numpy()
    groups = []
    for key in sorted(set(keys.tolist())):
        rows = np.flatnonzero((keys == key) & (where >= 0))
        metrics, intervals = compute_metrics(data.subset(rows))
        group: dict[str, Any] = {
            "key": key,
            "n": len(rows),
            "metrics": metrics,
            "intervals": intervals,
            "windows": _window_rows(data, rows, where, windows, now),
        }
        if by == "version":
            group["baseline"] = baselines.get(key, {})
        groups.append(group)
    return {"kind": by, "groups": groups}


def _judge(
    container: Container, target: Target, rows: list[dict[str, Any]], baseline: dict[str, float]
) -> tuple[int | None, str, Degradation | None]:
    """The newest complete window's index, the primary metric and its degradation."""
    complete = [k for k, w in enumerate(rows) if w["is_complete"]]
    latest = rows[complete[-1]] if complete else None
    primary = primary_metric(target.task, list((latest or {}).get("metrics") or baseline))
    if latest is None:
        return None, primary, None
    found = find_degradation(
        primary,
        baseline.get(primary),
        latest["metrics"].get(primary),
        latest["n"],
        drop=container.settings.performance_drop,
        min_rows=container.settings.performance_min_rows,
    )
    return complete[-1], primary, found


def deployment_performance(
    container: Container,
    owner: Owner,
    name: str,
    *,
    window: str = "1d",
    since: datetime | None = None,
    until: datetime | None = None,
    by: By | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A deployment's live performance per window against its holdout baseline.

    Args:
        container: The services.
        owner: The caller.
        name: The deployment.
        window: Window length (``1d``, ``7d``, ``30d`` or any ``parse_window`` form).
        since: Start of the range (default: :data:`DEFAULT_WINDOWS` windows before
            ``until``); the oldest window starts at or before it.
        until: End of the range (default: now); the newest window ends here.
        by: Also break the range down by model ``version`` or by ``arm``.
        now: The current time (windows ending after it are incomplete).

    Returns:
        ``{"baseline", "primary_metric", "window", "since", "until", "windows", "by"?,
        "degraded", "degradation"?, "interval_method", "narrative"}``.

    Raises:
        NotFound: no such deployment for this caller.
        InvalidInput: a bad window, a naive or reversed range, too many windows.
    """
    now = now or utcnow()
    _, windows = _windows(window, since, until, now)
    with container.db.session() as s:
        deployment = visible_deployment(s, owner, name)
        deployment_id, mv_id = deployment.id, deployment.model_version_id
    target = deployment_target(container, deployment_id)
    frame = _labelled_frame(container, deployment_id, windows[0][0], windows[-1][1])
    data, times = _arrays(frame, target)
    where = assign_windows(times, windows)
    served = np.flatnonzero(frame["arm"].to_numpy() != "shadow")
    mv_ids = sorted({mv_id, *frame["model_version_id"].unique().to_list()})
    baselines = _baselines(container, mv_ids)
    baseline = baselines.get(mv_id, {})
    rows = _window_rows(data, served, where, windows, now)
    latest_index, primary, found = _judge(container, target, rows, baseline)
    latest = rows[latest_index] if latest_index is not None else None
    drop, min_rows = container.settings.performance_drop, container.settings.performance_min_rows
    out: dict[str, Any] = {
        "deployment": name,
        "model_version_id": mv_id,
        "task": target.task,
        "window": window,
        "since": windows[0][0],
        "until": windows[-1][1],
        "baseline": baseline,
        "primary_metric": primary,
        "windows": rows,
        "labelled": int(sum(w["n"] for w in rows)),
        "degraded": found is not None,
        "degradation": found.to_dict() if found is not None else None,
        "settings": {"performance_drop": drop, "performance_min_rows": min_rows},
        "interval_method": {
            "level": LEVEL,
            "accuracy": "wilson",
            "others": "percentile bootstrap",
            "repeats": BOOTSTRAP_REPEATS,
            "seed": BOOTSTRAP_SEED,
        },
    }
    if by is not None:
        out["by"] = _groups(frame, data, where, windows, by, baselines, now)
    out["narrative"] = describe_performance(
        primary=primary,
        baseline=baseline,
        latest=latest,
        latest_index=latest_index,
        labelled=out["labelled"],
        drop=drop,
        min_rows=min_rows,
        deployment=name,
    )
    return out
