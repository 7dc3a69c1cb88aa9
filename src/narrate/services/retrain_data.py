"""The labelled data of the retraining loop: a deployment's logged inputs joined with their
actuals, as rows the model trains on and rows it is scored on.

Only answers callers got count (primary and canary arms): a shadow's answer shares its
primary's prediction id and inputs, so counting it would count the case twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import polars as pl
from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.core.monitor.performance import Labelled
from narrate.errors import DataProblem
from narrate.services.actuals import Target, logged_frame
from narrate.storage.sql.tables import PredictionActual

__all__ = ["count_labelled", "labelled_log", "score_window", "training_rows"]

_CHUNK = 1000
_LOG_COLUMNS = ("prediction_id", "at", "inputs")


def _actuals(container: Container, deployment_id: str, ids: list[str]) -> pl.DataFrame:
    pa = PredictionActual
    rows: list[Any] = []
    with container.db.session() as s:
        for start in range(0, len(ids), _CHUNK):
            query = select(pa.prediction_id, pa.actual).where(
                pa.deployment_id == deployment_id,
                pa.prediction_id.in_(ids[start : start + _CHUNK]),
            )
            rows += s.execute(query).all()
    return pl.DataFrame(
        {
            "prediction_id": [r[0] for r in rows],
            "actual": [orjson.dumps(r[1]).decode() for r in rows],
        },
        schema={"prediction_id": pl.String, "actual": pl.String},
    )


def labelled_log(
    container: Container, deployment_id: str, columns: tuple[str, ...] = _LOG_COLUMNS
) -> pl.DataFrame:
    """The deployment's answered predictions that have an actual, oldest first, with
    ``actual`` (JSON text) next to the logged ``columns``."""
    logged = logged_frame(
        container, deployment_id, since=None, until=None, columns=[*columns, "arm"]
    )
    logged = logged.filter(pl.col("arm") != "shadow").unique("prediction_id", keep="first")
    ids = logged["prediction_id"].to_list()
    joined = logged.join(_actuals(container, deployment_id, ids), on="prediction_id")
    return joined.sort("at", "prediction_id")


def count_labelled(container: Container, deployment_id: str) -> int:
    """How many answered predictions of the deployment have an actual."""
    return labelled_log(container, deployment_id, ("prediction_id", "at")).height


def _inputs(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The logged inputs as text columns named ``names`` (a missing key is null)."""
    struct = pl.Struct(dict.fromkeys(names, pl.String))
    return frame.select(pl.col("inputs").str.json_decode(struct)).unnest("inputs")


def _cast(values: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Text read from the log, as ``dtype`` (a value that does not fit becomes null)."""
    if dtype == pl.String:
        return values
    if dtype.is_numeric():
        return values.cast(pl.Float64, strict=False).cast(dtype, strict=False)
    if dtype == pl.Boolean:
        text = values.str.to_lowercase()
        return text.replace_strict({"true": True, "false": False}, default=None)
    if dtype.is_temporal():
        parsed = values.str.to_datetime(strict=False, time_zone="UTC")
        if dtype == pl.Date:
            return parsed.dt.date()
        zone = getattr(dtype, "time_zone", None)
        return (parsed if zone else parsed.dt.replace_time_zone(None)).cast(dtype, strict=False)
    return values.cast(dtype, strict=False)


def training_rows(
    frame: pl.DataFrame, schema: pl.Schema, target: str, raw_columns: list[str]
) -> pl.DataFrame:
    """Labelled log rows in the raw training frame's ``schema``, the actual as ``target``.

    Args:
        frame: Rows of :func:`labelled_log`.
        schema: The schema of the raw rows the model was trained on (target included).
        target: The target column.
        raw_columns: The inputs the model takes.

    Raises:
        DataProblem: an actual that does not fit the target's type.
    """
    inputs = _inputs(frame, raw_columns)
    # As text first: actuals of one target may mix ints and floats (or labels and numbers).
    values = [orjson.loads(v) for v in frame["actual"].to_list()]
    actual = pl.Series(target, [None if v is None else str(v) for v in values], pl.String)
    out: dict[str, pl.Series] = {}
    for name, dtype in schema.items():
        if name == target:
            out[name] = _cast(actual, dtype)
            if out[name].null_count() > actual.null_count():
                raise DataProblem(
                    f"Some actuals do not fit the target '{target}' ({dtype}).",
                    code="retrain_bad_actual",
                    details={"column": target},
                )
        elif name in inputs.columns:
            out[name] = _cast(inputs[name], dtype)
        else:
            out[name] = pl.Series(name, [None] * frame.height, dtype=dtype)
    return pl.DataFrame(out)


def score_window(container: Container, mv_id: str, frame: pl.DataFrame, target: Target) -> Labelled:
    """Score logged inputs with a model version and pair them with their actuals.

    Both models of a run are scored this one way, so they compare like for like.
    """
    from narrate.services.batch import prepare_chunk
    from narrate.services.predict import load_predictor

    predictor = load_predictor(container, mv_id)
    names = [c["name"] for c in predictor.signature.get("columns") or []]
    rows, _ = prepare_chunk(predictor.signature, _inputs(frame, names), filename="the log")
    labels, scores = predictor.score(rows)
    actual = [orjson.loads(v) for v in frame["actual"].to_list()]
    if target.is_regression:
        return Labelled(
            target.task, np.asarray(actual, dtype=float), np.asarray(labels, dtype=float)
        )
    classes = [str(c) for c in predictor.classes or target.classes]
    return Labelled(
        target.task,
        np.asarray([str(v) for v in actual], dtype=object),
        np.asarray([str(v) for v in labels], dtype=object),
        None if scores is None else np.asarray(scores, dtype=float),
        classes,
        predictor.positive_class or target.positive_class,
    )
