"""Answering predictions: loaded models kept warm, the input contract, shadow and canary
arms, and the prediction log.

A :class:`Predictor` is one model version ready to score: its serving copy (NumPy and
Treelite, no scikit-learn) or, when it has none, its joblib pipeline. A
:class:`DeploymentRuntime` is what one deployment serves at one revision. The
:class:`RuntimeCache` keeps both in memory: predictors bounded by an estimate of their
size (least recently used go first), runtimes re-checked against the database at most
once per ``deploy_refresh_s`` so that a change made by another server process is served
within that time, and at once in the process that made it.

A request takes the runtime reference once and uses it to the end, so a switch of
version (PATCH, rollback, a stage change) never fails a request in flight: it is
answered wholly by the old or wholly by the new version.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.errors import InvalidInput, NotFound
from narrate.storage.sql.tables import Deployment, Evaluation, Model, ModelVersion, utcnow
from narrate.storage.sql.visibility import SYSTEM, Owner, visible_deployment

__all__ = [
    "DeploymentRuntime",
    "PredictionResult",
    "Predictor",
    "RuntimeCache",
    "load_predictor",
    "model_signature",
    "predict_rows",
    "runtime_cache",
]

log = logging.getLogger(__name__)

#: Prediction rows scored in the event loop; larger requests go to a worker thread.
INLINE_ROWS = 64


@dataclass
class Predictor:
    """One model version, loaded and ready to score raw rows."""

    model_version_id: str
    task: str
    classes: list[Any] | None
    signature: dict[str, Any]
    engine: str
    engine_note: str | None
    model: Any
    threshold: float | None = None
    positive_class: str | None = None
    interval: dict[str, float] | None = None
    size_bytes: int = 0

    def score(
        self, frame: pd.DataFrame | Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (or values) and class probabilities (None for regression), one pass.

        Args:
            frame: The rows as the model takes them: a DataFrame, or one array per column
                (``CheckedRows.columns``; the serving copy then skips pandas).

        Labels follow the tuned threshold exactly as the evaluation does.
        """
        if self.engine == "serving":
            out = self.model.predict_output(frame)
            if self.task == "regression":
                return np.asarray(out, dtype=float), None
            return np.asarray(self.model.labels_from_output(out)), np.asarray(out, dtype=float)
        from narrate.core.automl.search import predict_scores

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(dict(frame))
        classes = [str(c) for c in self.classes or []]
        scores = predict_scores(self.model, frame, self.task, classes)
        if self.task == "regression":
            return np.asarray(scores, dtype=float), None
        if self.task == "binary":
            positive = classes.index(str(self.positive_class or classes[1]))
            threshold = 0.5 if self.threshold is None else self.threshold
            chosen = scores[:, positive] >= threshold
            labels = np.where(chosen, classes[positive], classes[1 - positive])
        else:
            labels = np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]
        return np.asarray(labels), scores


@dataclass
class DeploymentRuntime:
    """What one deployment serves at one revision."""

    deployment_id: str
    name: str
    owner_id: str
    revision: int
    primary: Predictor
    shadow: Predictor | None = None
    canary: Predictor | None = None
    canary_fraction: float = 0.0
    checked_at: float = field(default_factory=time.monotonic)


@dataclass
class PredictionResult:
    """The answer to one predict request, ready to serialise."""

    body: dict[str, Any]
    n_rows: int


def model_signature(container: Container, mv: ModelVersion) -> dict[str, Any]:
    """A model version's input signature; built (and stored) for versions trained before
    signatures existed, from the raw rows of the dataset version it was trained on."""
    stored = (mv.details or {}).get("signature")
    if stored:
        return dict(stored)
    from narrate.core.signature import build_signature
    from narrate.services.training import raw_training_frame

    with container.db.session() as s:
        model = s.get(Model, mv.model_id)
        target = model.target if model else ""
    frame = raw_training_frame(container, mv.dataset_version_id, target)
    columns = _model_columns(container, mv) or [str(c) for c in frame.columns]
    signature = build_signature(frame, [c for c in columns if c in frame.columns])
    with container.db.session() as s:
        row = s.get(ModelVersion, mv.id)
        if row is not None:
            row.details = {**(row.details or {}), "signature": signature}
    return signature


def _model_columns(container: Container, mv: ModelVersion) -> list[str] | None:
    serving = (mv.details or {}).get("serving") or {}
    if not serving.get("available"):
        return None
    from narrate.core.serving import load_serving

    with tempfile.TemporaryDirectory() as tmp:
        path = container.blobs.copy_to(serving["blob"], Path(tmp) / "model.serving")
        return list(load_serving(path).columns)


def _interval(container: Container, mv: ModelVersion) -> dict[str, float] | None:
    """The 90% prediction interval of a regression model: its holdout residuals' quantile
    (split conformal), when the holdout evaluation recorded it."""
    with container.db.session() as s:
        ev = s.scalar(
            select(Evaluation).where(
                Evaluation.model_version_id == mv.id, Evaluation.kind == "holdout"
            )
        )
        blob = ev.blob if ev else None
    if blob is None:
        return None
    body = orjson.loads(container.blobs.get_bytes(blob))
    found = body.get("prediction_interval")
    return dict(found) if isinstance(found, dict) else None


CompileTrees = Literal["use", "background", "now"]


def load_predictor(
    container: Container, mv_id: str, *, compile_trees: CompileTrees = "background"
) -> Predictor:
    """Load a model version for serving: its serving copy, else the joblib pipeline.

    Args:
        compile_trees: What to do about tree ensembles not yet compiled to native code
            (see :mod:`narrate.core.compiled_trees`): ``use`` only what is compiled,
            compile in a ``background`` thread (the predictor switches when it is done),
            or compile ``now`` (a batch job about to score many rows).

    Raises:
        NotFound: the model version does not exist.
    """
    with container.db.session() as s:
        mv = s.get(ModelVersion, mv_id)
        model = s.get(Model, mv.model_id) if mv else None
        if mv is None or model is None:
            raise NotFound(f"No model version '{mv_id}'.", details={"model_version_id": mv_id})
        s.expunge(mv)
        task = model.task
    details = mv.details or {}
    problem = details.get("problem") or {}
    serving = details.get("serving") or {}
    signature = model_signature(container, mv)
    interval = _interval(container, mv) if task == "regression" else None
    if serving.get("available"):
        from narrate.core.serving import load_serving

        with tempfile.TemporaryDirectory() as tmp:
            path = container.blobs.copy_to(serving["blob"], Path(tmp) / "model.serving")
            model_obj: Any = load_serving(path)
        if container.settings.compile_trees:
            _compile_trees(container, model_obj, compile_trees)
        classes = list(model_obj.classes_) if model_obj.classes_ is not None else None
        engine, note, size = "serving", None, int(serving.get("size_bytes") or 0)
    else:
        from narrate.services.training import load_pipeline

        model_obj = load_pipeline(container, mv)
        classes = [str(c) for c in problem.get("classes") or []] or None
        why = serving.get("reason") or "it was trained before the serving format existed"
        engine, note, size = (
            "joblib",
            f"No serving copy ({why}): the scikit-learn pipeline answers instead.",
            int(mv.size_bytes),
        )
    return Predictor(
        model_version_id=mv.id,
        task=task,
        classes=classes,
        signature=signature,
        engine=engine,
        engine_note=note,
        model=model_obj,
        threshold=mv.threshold,
        positive_class=problem.get("positive_class"),
        interval=interval,
        size_bytes=size,
    )


_compiling: set[int] = set()
_compiling_lock = threading.Lock()


def _compile_trees(container: Container, model: Any, mode: CompileTrees) -> None:
    """Attach compiled trees to a serving model; compile what is missing as ``mode`` says."""
    folder = container.settings.data_dir / "compiled"
    if mode == "now" or not model.has_trees:
        model.use_compiled_trees(folder, compile_missing=mode == "now")
        return
    if model.use_compiled_trees(folder, compile_missing=False) == len(model.tree_models):
        return
    if mode == "use":
        return
    with _compiling_lock:  # one compile per model at a time in this process
        if id(model) in _compiling:
            return
        _compiling.add(id(model))

    def run() -> None:
        try:
            model.use_compiled_trees(folder, compile_missing=True)
        finally:
            with _compiling_lock:
                _compiling.discard(id(model))

    threading.Thread(target=run, name="narrate-compile-trees", daemon=True).start()


class RuntimeCache:
    """Loaded predictors and deployment runtimes of this process.

    Args:
        container: Services.
        max_mb: Memory the loaded models may take (estimated as 4x their file size).
        refresh_s: How stale a runtime or key may be before the database is asked again.
    """

    def __init__(self, container: Container, *, max_mb: int, refresh_s: float) -> None:
        self.container = container
        self.max_bytes = max_mb * 1024 * 1024
        self.refresh_s = refresh_s
        self._predictors: OrderedDict[str, Predictor] = OrderedDict()
        self._runtimes: dict[str, DeploymentRuntime] = {}
        self._keys: dict[str, tuple[Any, float]] = {}
        self._lock = threading.RLock()
        self._loading: dict[str, threading.Lock] = {}
        self.shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    # -- predictors --------------------------------------------------------------------
    def predictor(self, mv_id: str) -> Predictor:
        """A loaded model version (loaded once even when many requests ask at once)."""
        with self._lock:
            found = self._predictors.get(mv_id)
            if found is not None:
                self._predictors.move_to_end(mv_id)
                return found
            gate = self._loading.setdefault(mv_id, threading.Lock())
        with gate:
            with self._lock:
                found = self._predictors.get(mv_id)
            if found is not None:
                return found
            loaded = load_predictor(self.container, mv_id)
            with self._lock:
                self._predictors[mv_id] = loaded
                self._evict()
                self._loading.pop(mv_id, None)
            return loaded

    def _evict(self) -> None:
        in_use = {
            p.model_version_id
            for r in self._runtimes.values()
            for p in (r.primary, r.shadow, r.canary)
            if p is not None
        }
        total = sum(4 * p.size_bytes for p in self._predictors.values())
        for mv_id in list(self._predictors):
            if total <= self.max_bytes:
                break
            if mv_id in in_use:
                continue
            total -= 4 * self._predictors.pop(mv_id).size_bytes

    # -- runtimes ------------------------------------------------------------------------
    def cached(self, name: str) -> DeploymentRuntime | None:
        """The runtime when it is loaded and fresh enough to use without a database read."""
        runtime = self._runtimes.get(name)
        if runtime is None or time.monotonic() - runtime.checked_at > self.refresh_s:
            return None
        return runtime

    def runtime(self, name: str, owner: Owner = SYSTEM) -> DeploymentRuntime:
        """The runtime of a deployment the owner may see, loading what changed.

        Raises:
            NotFound: no such deployment for this caller, or it is undeployed.
        """
        with self.container.db.session() as s:
            d = visible_deployment(s, owner, name)
            state = (
                d.id,
                d.owner_id,
                d.revision,
                d.model_version_id,
                d.shadow_model_version_id,
                d.canary_model_version_id,
                d.canary_fraction,
            )
        current = self._runtimes.get(name)
        if (
            current is not None
            and current.revision == state[2]
            and current.deployment_id == state[0]
        ):
            current.checked_at = time.monotonic()
            return current
        deployment_id, owner_id, revision, primary_id, shadow_id, canary_id, fraction = state
        runtime = DeploymentRuntime(
            deployment_id=deployment_id,
            name=name,
            owner_id=owner_id,
            revision=revision,
            primary=self.predictor(primary_id),
            shadow=self.predictor(shadow_id) if shadow_id else None,
            canary=self.predictor(canary_id) if canary_id else None,
            canary_fraction=fraction,
        )
        with self._lock:
            self._runtimes[name] = runtime  # one reference swap: in-flight requests keep theirs
            self._evict()
        return runtime

    def invalidate(self, name: str) -> None:
        """Forget a deployment's runtime (after a change in this process)."""
        with self._lock:
            self._runtimes.pop(name, None)

    def refresh(self, name: str) -> None:
        """Load a deployment's new state now, so the next request does not wait for it."""
        self.invalidate(name)
        with contextlib.suppress(NotFound):
            self.runtime(name)

    def forget_keys(self) -> None:
        """Drop cached key look-ups (after a key was revoked in this process)."""
        with self._lock:
            self._keys.clear()

    def key(self, token: str) -> Any:
        """The :class:`~narrate.services.deployments.KeyGrant` of a deployment key, or None."""
        from narrate.services.deployments import resolve_key

        digest = hashlib.sha256(token.encode()).hexdigest()
        hit = self._keys.get(digest)
        if hit is not None and time.monotonic() - hit[1] <= self.refresh_s:
            return hit[0]
        grant = resolve_key(self.container, token)
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (grant, time.monotonic())
        return grant

    def warm(self) -> int:
        """Load every active deployment (at start-up); returns how many loaded."""
        with self.container.db.session() as s:
            names = list(s.scalars(select(Deployment.name).where(Deployment.deleted_at.is_(None))))
        loaded = 0
        for name in names:
            try:
                self.runtime(name)
                loaded += 1
            except Exception:  # one broken deployment must not stop the server starting
                log.warning("could not load deployment %s at start", name, exc_info=True)
        return loaded

    def close(self) -> None:
        """Stop the shadow worker (its queued work is finished first)."""
        self.shadow_pool.shutdown(wait=True)


def runtime_cache(container: Container) -> RuntimeCache:
    """The container's runtime cache, made on first use."""
    cache = container.extras.get("runtime_cache")
    if cache is None:
        cache = RuntimeCache(
            container,
            max_mb=container.settings.deploy_cache_mb,
            refresh_s=container.settings.deploy_refresh_s,
        )
        container.extras["runtime_cache"] = cache
    return cache  # type: ignore[no-any-return]


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(
    predictor: Predictor,
    labels: np.ndarray,
    proba: np.ndarray | None,
    flags: list[list[str]],
    ids: list[str],
    arm: str,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    label_list = labels.tolist()
    if proba is not None:
        names = [str(c) for c in predictor.classes or []]
        rounded = np.round(proba, 6).tolist()
        for i, label in enumerate(label_list):
            out.append(
                {
                    "prediction_id": ids[i],
                    "prediction": label,
                    "probabilities": dict(zip(names, rounded[i], strict=True)),
                    "flags": flags[i],
                    "arm": arm,
                }
            )
        return out
    half = (predictor.interval or {}).get("half_width")
    level = (predictor.interval or {}).get("level")
    for i, value in enumerate(label_list):
        record: dict[str, Any] = {
            "prediction_id": ids[i],
            "prediction": value,
            "flags": flags[i],
            "arm": arm,
        }
        if half is not None:
            record["interval"] = {"low": value - half, "high": value + half, "level": level}
        out.append(record)
    return out


def _log(
    container: Container,
    runtime: DeploymentRuntime,
    predictor: Predictor,
    rows: list[Any],
    records: list[dict[str, Any]],
    latency_ms: float,
    caller: str,
    at: datetime,
) -> None:
    sink = container.extras.get("prediction_log")
    if sink is None:
        return
    from narrate.services.prediction_log import PredictionRecord

    per_row = latency_ms / max(len(records), 1)
    sink.extend(
        PredictionRecord(
            prediction_id=r["prediction_id"],
            deployment_id=runtime.deployment_id,
            deployment_name=runtime.name,
            model_version_id=predictor.model_version_id,
            at=at,
            latency_ms=per_row,
            caller=caller,
            arm=r["arm"],
            inputs=row,
            prediction=r["prediction"],
            probabilities=r.get("probabilities"),
            flags=r["flags"],
            revision=runtime.revision,
        )
        for row, r in zip(rows, records, strict=True)
    )


def _shadow(
    container: Container,
    runtime: DeploymentRuntime,
    rows: list[Any],
    ids: list[str],
    caller: str,
    at: datetime,
) -> None:
    """Score the same rows with the shadow version and log them under the same ids."""
    shadow = runtime.shadow
    if shadow is None:
        return
    from narrate.core.signature import check_rows

    try:
        started = time.perf_counter()
        checked = check_rows(shadow.signature, rows)
        labels, proba = shadow.score(checked.columns)
        latency = (time.perf_counter() - started) * 1000
        records = _records(shadow, labels, proba, checked.flags, ids, "shadow")
        _log(container, runtime, shadow, rows, records, latency, caller, at)
    except Exception:  # the shadow never affects callers; its failures are only logged
        log.warning(
            "shadow version %s failed on deployment %s",
            shadow.model_version_id,
            runtime.name,
            exc_info=True,
        )


def predict_rows(
    container: Container, runtime: DeploymentRuntime, rows: Any, caller: str
) -> PredictionResult:
    """Score raw rows with what a deployment serves, log them, and build the answer.

    Raises:
        InvalidInput: not a list of 1 to ``max_predict_rows`` rows, or a row breaks the
            input contract (missing column, wrong type, unparseable value: 422 naming the
            row index and column).
    """
    from narrate.core.signature import check_rows

    limit = container.settings.max_predict_rows
    if not isinstance(rows, list) or not 1 <= len(rows) <= limit:
        n = len(rows) if isinstance(rows, list) else None
        raise InvalidInput(
            f"Send 'rows' as a list of 1 to {limit:,} objects"
            + (f" (got {n:,})." if n is not None else "."),
            code="invalid_rows",
            hint="Score more rows at once with a batch job: POST .../batch with a file.",
            details={"parameter": "rows", "limit": limit},
        )
    arm, predictor = "primary", runtime.primary
    if runtime.canary is not None and random.random() < runtime.canary_fraction:  # noqa: S311 - traffic split, not security
        arm, predictor = "canary", runtime.canary
    started = time.perf_counter()
    checked = check_rows(predictor.signature, rows)
    labels, proba = predictor.score(checked.columns)
    latency_ms = (time.perf_counter() - started) * 1000
    ids = [uuid.uuid4().hex for _ in range(len(rows))]
    records = _records(predictor, labels, proba, checked.flags, ids, arm)
    at = utcnow()
    _log(container, runtime, predictor, rows, records, latency_ms, caller, at)
    if runtime.shadow is not None:
        runtime_cache(container).shadow_pool.submit(
            _shadow, container, runtime, rows, ids, caller, at
        )
    body: dict[str, Any] = {
        "deployment": runtime.name,
        "revision": runtime.revision,
        "model_version_id": predictor.model_version_id,
        "arm": arm,
        "engine": predictor.engine,
        "predictions": records,
        "extra_columns": checked.extra_columns,
    }
    if predictor.engine_note:
        body["engine_note"] = predictor.engine_note
    return PredictionResult(body, len(rows))


def dumps(body: dict[str, Any]) -> bytes:
    """The answer as JSON bytes (orjson; NumPy scalars and NaN handled)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=_json_value)
