"""Actuals: the true outcomes of a deployment's logged predictions, posted later.

Each actual names a ``prediction_id`` of the deployment's prediction log and the value
the model should have predicted: a class label the model knows (classification) or a
number (regression). Every item is checked before anything is written, so a request
with one bad item writes nothing (one transaction).

Posting an actual again for the same prediction replaces it and keeps the record: the
row's ``replaced`` count goes up and the value it replaced is appended to ``previous``
with the time it had been received (see :class:`PredictionActual`). Actuals whose
prediction id is not (yet) in the log are stored as well and reported as unmatched: a
batch job may still be writing those predictions, and once they are logged the actuals
count.
"""

from __future__ import annotations

import io
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from narrate.bootstrap import Container
from narrate.errors import Conflict, InvalidInput, TooLarge
from narrate.services.prediction_log import export_predictions
from narrate.services.spool import spool_dir
from narrate.storage.sql.tables import (
    Deployment,
    Model,
    ModelVersion,
    PredictionActual,
    new_id,
    utcnow,
)
from narrate.storage.sql.visibility import Owner, visible_deployment

__all__ = [
    "MAX_ACTUALS",
    "UNMATCHED_EXAMPLES",
    "Target",
    "deployment_id_for",
    "deployment_target",
    "logged_frame",
    "parse_actuals_csv",
    "parse_actuals_json",
    "record_actuals",
]

MAX_ACTUALS = 100_000
"""Most actuals one request may carry (more: 413)."""
UNMATCHED_EXAMPLES = 20
"""How many unmatched prediction ids a response lists."""
_MAX_ID = 64
_CHUNK = 1000


@dataclass(frozen=True)
class Target:
    """What an actual must be: the model's task and, for classification, its classes."""

    task: str
    column: str
    classes: tuple[str, ...] = ()
    positive_class: str | None = None

    @property
    def is_regression(self) -> bool:
        """Actuals are numbers."""
        return self.task == "regression"


def deployment_id_for(container: Container, owner: Owner, name: str) -> str:
    """The id of a deployment the caller may see.

    Raises:
        NotFound: no such deployment for this caller, or it is undeployed.
    """
    with container.db.session() as s:
        return visible_deployment(s, owner, name).id


def deployment_target(container: Container, deployment_id: str) -> Target:
    """The target the deployment's model predicts, with the classes of every version it
    serves (primary, canary and shadow are versions of the same model)."""
    with container.db.session() as s:
        d = s.get(Deployment, deployment_id)
        assert d is not None  # noqa: S101 - resolved by the caller
        model = s.get(Model, d.model_id)
        assert model is not None  # noqa: S101 - a deployed model cannot be deleted
        served = [d.model_version_id, d.canary_model_version_id, d.shadow_model_version_id]
        classes: list[str] = []
        positive: str | None = None
        for mv_id in served:
            mv = s.get(ModelVersion, mv_id) if mv_id else None
            problem = (mv.details or {}).get("problem") or {} if mv is not None else {}
            classes += [str(c) for c in problem.get("classes") or [] if str(c) not in classes]
            if mv_id == d.model_version_id:
                positive = problem.get("positive_class")
        task, column, primary = model.task, model.target, d.model_version_id
    if task != "regression" and not classes:
        # Versions trained before the problem was stored: the loaded model knows them.
        from narrate.services.predict import load_predictor

        classes = [str(c) for c in load_predictor(container, primary).classes or []]
    return Target(task, column, tuple(classes), None if positive is None else str(positive))


# --- checking -------------------------------------------------------------------------------


def _where(row: int, field: str, column: str | None) -> dict[str, Any]:
    if column is None:
        return {"row": row, "field": field}
    return {"row": row, "line": row + 2, "field": field, "column": column}


def _as_class(value: Any, classes: frozenset[str]) -> str | None:
    """The class label ``value`` names, or None."""
    if isinstance(value, bool):
        candidates = [str(value), str(value).lower(), str(int(value))]
    elif isinstance(value, int):
        candidates = [str(value)]
    elif isinstance(value, float):
        whole = value.is_integer()
        candidates = [str(int(value)), str(value)] if whole else [str(value)]
    elif isinstance(value, str):
        candidates = [value, value.strip()]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if number.is_integer():
            candidates.append(str(int(number)))
    else:
        return None
    return next((c for c in candidates if c in classes), None)


def _as_number(value: Any, from_text: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif from_text and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def check_actuals(
    items: Sequence[tuple[Any, Any]],
    target: Target,
    *,
    id_column: str | None = None,
    actual_column: str | None = None,
) -> list[tuple[str, str | float]]:
    """Check every item and return ``(prediction_id, actual)`` with actuals as stored:
    the class label's text, or a float.

    Args:
        items: ``(prediction_id, actual)`` pairs in request order.
        target: What actuals must be.
        id_column: The CSV column the ids came from (None for JSON).
        actual_column: The CSV column the actuals came from (None for JSON).

    Raises:
        InvalidInput: no items, an id that is not a text of 1 to 64 characters, or an
            actual that is not a known class (a number, for regression); the details
            name the row (and the CSV line and column).
        TooLarge: more than :data:`MAX_ACTUALS` items.
    """
    if not items:
        raise InvalidInput(
            "There are no actuals to record.",
            code="no_actuals",
            hint='Send {"actuals": [{"prediction_id": "...", "actual": ...}, ...]}.',
            details={"parameter": "actuals"},
        )
    if len(items) > MAX_ACTUALS:
        raise TooLarge(
            f"{len(items):,} actuals were sent; one request takes at most {MAX_ACTUALS:,}.",
            code="too_many_actuals",
            hint="Split them into several requests.",
            details={"parameter": "actuals", "count": len(items), "max": MAX_ACTUALS},
        )
    classes = frozenset(target.classes)
    from_text = id_column is not None
    out: list[tuple[str, str | float]] = []
    for row, (pid, value) in enumerate(items):
        if not isinstance(pid, str) or not 0 < len(pid.strip()) <= _MAX_ID:
            raise InvalidInput(
                f"Row {row}: prediction_id must be a text of 1 to {_MAX_ID} characters "
                f"(the id a prediction answered with); got {str(pid)[:80]!r}.",
                code="invalid_prediction_id",
                details=_where(row, "prediction_id", id_column),
            )
        checked: str | float | None = (
            _as_number(value, from_text) if target.is_regression else _as_class(value, classes)
        )
        if checked is None:
            raise _bad_actual(row, value, target, actual_column)
        out.append((pid.strip(), checked))
    return out


def _bad_actual(row: int, value: Any, target: Target, column: str | None) -> InvalidInput:
    shown = str(value)[:80] if value is not None else "nothing"
    details = {**_where(row, "actual", column), "target": target.column}
    if target.is_regression:
        return InvalidInput(
            f"Row {row}: the actual must be a number ('{target.column}' is a regression "
            f"target); got {shown!r}.",
            code="invalid_actual",
            details=details,
        )
    allowed = sorted(target.classes)
    return InvalidInput(
        f"Row {row}: the actual {shown!r} is not a class of '{target.column}' the model "
        f"knows; allowed: {', '.join(allowed[:20])}.",
        code="invalid_actual",
        hint="Send the label as it appeared in the training data.",
        details={**details, "allowed": allowed[:100]},
    )


def parse_actuals_json(body: Any) -> list[tuple[Any, Any]]:
    """Read ``(prediction_id, actual)`` pairs from ``{"actuals": [{"prediction_id",
    "actual"}, ...]}``.

    Raises:
        InvalidInput: another shape; the details name the row and field that is wrong.
    """
    items = body.get("actuals") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise InvalidInput(
            'Send a JSON object {"actuals": [{"prediction_id": "...", "actual": ...}, ...]}.',
            code="invalid_actuals",
            details={"parameter": "actuals"},
        )
    out: list[tuple[Any, Any]] = []
    for row, item in enumerate(items):
        for field in ("prediction_id", "actual"):
            if not isinstance(item, dict) or field not in item:
                raise InvalidInput(
                    f"Row {row}: each actual is an object with 'prediction_id' and 'actual'; "
                    f"'{field}' is missing.",
                    code="invalid_actuals",
                    details=_where(row, field, None),
                )
        out.append((item["prediction_id"], item["actual"]))
    return out


def parse_actuals_csv(data: bytes, *, id_column: str, actual_column: str) -> list[tuple[Any, Any]]:
    """Read ``(prediction_id, actual)`` pairs from a CSV file with a header row; every
    value is read as text (empty cells as None).

    Raises:
        InvalidInput: not a readable CSV, or a named column is missing.
    """
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"The file is not a CSV file Narrate can read: {str(exc)[:200]}",
            code="invalid_csv",
            hint="Upload a UTF-8 CSV file with a header row.",
            details={"parameter": "file"},
        ) from exc
    for parameter, column in (("id_column", id_column), ("actual_column", actual_column)):
        if column not in frame.columns:
            raise InvalidInput(
                f"Column '{column}' ({parameter}) is not in the file; its columns are "
                f"{', '.join(frame.columns[:20])}.",
                code="missing_column",
                details={"parameter": parameter, "column": column},
            )
    return list(zip(frame[id_column].to_list(), frame[actual_column].to_list(), strict=True))


# --- the log ---------------------------------------------------------------------------------


def logged_frame(
    container: Container,
    deployment_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    columns: Sequence[str],
) -> pl.DataFrame:
    """``columns`` of the deployment's logged predictions in ``[since, until)``.

    The log is streamed to a temporary Parquet file (one stored file in memory at a
    time) and only the named columns are read back.
    """
    folder = Path(tempfile.mkdtemp(prefix="narrate-actuals-", dir=spool_dir(container.settings)))
    try:
        path = folder / "log.parquet"
        export_predictions(
            container.db,
            container.blobs,
            deployment_id,
            since=since,
            until=until,
            fmt="parquet",
            out_path=path,
        )
        return pl.read_parquet(path, columns=list(columns))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _logged_ids(container: Container, deployment_id: str, ids: set[str]) -> set[str]:
    frame = logged_frame(
        container, deployment_id, since=None, until=None, columns=["prediction_id"]
    )
    found = frame.filter(pl.col("prediction_id").is_in(list(ids)))
    return set(found["prediction_id"].unique().to_list())


# --- writing ---------------------------------------------------------------------------------


def record_actuals(
    container: Container,
    deployment_id: str,
    items: Sequence[tuple[Any, Any]],
    *,
    id_column: str | None = None,
    actual_column: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check and store actuals for a deployment the caller was allowed to reach.

    Args:
        container: The services.
        deployment_id: The deployment (already checked visible, or reached with its key).
        items: ``(prediction_id, actual)`` pairs; a later pair for the same id replaces
            an earlier one, with a record, like a later request does.
        id_column: The CSV column of the ids (names it in errors), or None for JSON.
        actual_column: The CSV column of the actuals, or None for JSON.
        now: The time recorded as ``received_at`` (default: the current time).

    Returns:
        ``{"received", "matched", "replaced", "unmatched": {"count", "examples"}}``.

    Raises:
        InvalidInput: see :func:`check_actuals`; nothing is written.
        TooLarge: more than :data:`MAX_ACTUALS` items.
        Conflict: a concurrent request inserted the same new prediction id first.
    """
    target = deployment_target(container, deployment_id)
    checked = check_actuals(items, target, id_column=id_column, actual_column=actual_column)
    ids = {pid for pid, _ in checked}
    logged = _logged_ids(container, deployment_id, ids)
    try:
        replaced = _write(container, deployment_id, checked, now or utcnow())
    except IntegrityError as exc:
        # Two requests inserted an actual for the same new prediction id at once.
        raise Conflict(
            "Another request stored actuals for some of the same predictions at the same "
            "time; nothing of this request was written.",
            code="actuals_conflict",
            hint="Send it again: the actuals already stored will be replaced, with a record.",
            details={"deployment_id": deployment_id},
        ) from exc
    unmatched = [pid for pid in dict.fromkeys(pid for pid, _ in checked) if pid not in logged]
    return {
        "received": len(checked),
        "matched": sum(1 for pid, _ in checked if pid in logged),
        "replaced": replaced,
        "unmatched": {"count": len(unmatched), "examples": unmatched[:UNMATCHED_EXAMPLES]},
    }


def _existing(
    s: Any, deployment_id: str, ids: list[str], at: datetime
) -> dict[str, dict[str, Any]]:
    """The stored actuals of ``ids`` as update rows (by primary key), ``received_at`` as
    text for the record they may become."""
    pa = PredictionActual
    columns = (pa.id, pa.prediction_id, pa.actual, pa.received_at, pa.replaced, pa.previous)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(*columns).where(
            pa.deployment_id == deployment_id, pa.prediction_id.in_(ids[start : start + _CHUNK])
        )
        for row_id, pid, actual, received, count, previous in s.execute(query):
            found[pid] = {
                "id": row_id,
                "actual": actual,
                "received_at": received,
                "replaced": count,
                "previous": list(previous or []),
                "updated_at": at,
            }
    return found


def _write(
    container: Container,
    deployment_id: str,
    checked: list[tuple[str, str | float]],
    at: datetime,
) -> int:
    """Insert new actuals and replace existing ones (bulk, by primary key) in one
    transaction; returns how many replaced an earlier actual."""
    pa = PredictionActual
    replaced = 0
    with container.db.session() as s:
        owner_id = s.get(Deployment, deployment_id).owner_id  # type: ignore[union-attr]
        stored = _existing(s, deployment_id, list(dict.fromkeys(p for p, _ in checked)), at)
        changed: dict[str, dict[str, Any]] = {}
        new: dict[str, dict[str, Any]] = {}
        for pid, actual in checked:
            row = changed.get(pid) or new.get(pid) or stored.get(pid)
            if row is None:
                new[pid] = {
                    "id": new_id(),
                    "deployment_id": deployment_id,
                    "prediction_id": pid,
                    "actual": actual,
                    "received_at": at,
                    "replaced": 0,
                    "previous": [],
                    "owner_id": owner_id,
                    "deleted_at": None,
                    "created_at": at,
                    "updated_at": at,
                }
                continue
            earlier = {"actual": row["actual"], "received_at": row["received_at"].isoformat()}
            row["previous"] = [*row["previous"], earlier]
            row["replaced"] += 1
            row["actual"], row["received_at"] = actual, at
            replaced += 1
            if pid not in new:
                changed[pid] = row
        if new:
            s.execute(insert(pa), list(new.values()))
        if changed:
            s.execute(update(pa), list(changed.values()))
    return replaced
