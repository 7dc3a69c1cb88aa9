"""The model registry: list and read models, live training status, evaluations on any
labelled version, refits, comparisons and model cards."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.core.automl import ProblemInfo, TrainConfig, detect_problem, refit_estimator
from narrate.core.evaluation import compare_models, evaluate, render_model_card
from narrate.errors import InvalidInput, InvalidState, NotFound
from narrate.jobs.context import JobContext
from narrate.jobs.records import create_job, get_job, job_events
from narrate.services.datasets import Owner, get_version, load_frame
from narrate.services.training import (
    REFIT_ENTRY,
    load_pipeline,
    model_to_dict,
    model_version_to_dict,
    raw_input_pipeline,
    save_model_version,
    visible_model,
)
from narrate.storage.sql.tables import (
    Dataset,
    DatasetVersion,
    Evaluation,
    Model,
    ModelVersion,
    utcnow,
)
from narrate.storage.sql.visibility import (
    is_visible,
    visible_evaluation,
    visible_filter,
    visible_model_version,
)

__all__ = [
    "compare",
    "delete_model",
    "evaluate_on_version",
    "get_current_evaluation",
    "get_evaluation",
    "get_leaderboard",
    "get_model",
    "get_model_version",
    "list_evaluations",
    "list_models",
    "model_artifact",
    "model_card",
    "refit_job",
    "restore_model",
    "start_refit",
]


def list_models(container: Container, owner: Owner) -> list[dict[str, Any]]:
    """The caller's models, newest first, with the current version's headline metric."""
    with container.db.session() as s:
        q = select(Model).where(visible_filter(Model, owner)).order_by(Model.created_at.desc())
        out = []
        for m in s.scalars(q):
            mv = s.get(ModelVersion, m.current_version_id) if m.current_version_id else None
            out.append(
                {
                    **model_to_dict(m),
                    "family": mv.family if mv else None,
                    "metrics": mv.metrics if mv else {},
                }
            )
        return out


def _live(container: Container, job_id: str | None) -> dict[str, Any] | None:
    if not job_id:
        return None
    job = get_job(container.db, job_id)
    events = job_events(container.db, job_id, limit=10_000)
    latest = next((e["data"] for e in reversed(events) if e.get("data")), None) or {}
    board: list[Any] = next(
        (
            e["data"]["leaderboard"]
            for e in reversed(events)
            if e.get("data") and e["data"].get("leaderboard")
        ),
        [],
    )
    return {
        "job_id": job_id,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "trials_done": latest.get("trials_done", 0),
        "best_score": latest.get("best_score"),
        "time_left_s": latest.get("time_left_s"),
        "leaderboard": board,
        "error": job.error,
    }


def get_model(container: Container, owner: Owner, model_id: str) -> dict[str, Any]:
    """A model with its versions and, while training, the live leaderboard."""
    with container.db.session() as s:
        m = visible_model(s, owner, model_id)
        versions = list(
            s.scalars(
                select(ModelVersion)
                .where(ModelVersion.model_id == m.id)
                .order_by(ModelVersion.number)
            )
        )
        out = model_to_dict(m)
    out["versions"] = [model_version_to_dict(v) for v in versions]
    out["training"] = _live(container, out["job_id"])
    return out


def get_leaderboard(container: Container, owner: Owner, model_id: str) -> dict[str, Any]:
    """The leaderboard of a model: live while it trains, then its current version's."""
    with container.db.session() as s:
        m = visible_model(s, owner, model_id)
        mv = s.get(ModelVersion, m.current_version_id) if m.current_version_id else None
        out = model_to_dict(m)
        stored = (mv.leaderboard or []) if mv else []
        mv_id = mv.id if mv else None
    live = _live(container, out["job_id"])
    training = live is not None and live["status"] in ("queued", "running")
    items = live["leaderboard"] if training and live else stored
    return {
        "model_id": model_id,
        "model_version_id": mv_id,
        "metric": out.get("metric"),
        "status": live["status"] if live else "succeeded",
        "live": training,
        "items": items,
    }


def get_current_evaluation(container: Container, owner: Owner, model_id: str) -> dict[str, Any]:
    """The holdout evaluation of a model's current version.

    Raises:
        NotFound: no such model, or it has no trained version yet (409 would hide that
            the evaluation simply does not exist yet).
    """
    with container.db.session() as s:
        m = visible_model(s, owner, model_id)
        mv_id = m.current_version_id
    if not mv_id:
        raise NotFound(
            f"Model '{model_id}' has no trained version yet, so there is no evaluation.",
            hint="Wait for the training job to finish (GET /api/v1/models/{id}).",
            details={"model_id": model_id},
        )
    version = get_model_version(container, owner, mv_id)
    if version["evaluation"] is None:
        raise NotFound(
            f"Model version '{mv_id}' has no holdout evaluation.",
            details={"model_id": model_id, "model_version_id": mv_id},
        )
    evaluation: dict[str, Any] = version["evaluation"]
    return {**evaluation, "model_id": model_id, "model_version_id": mv_id}


def _visible_version(container: Container, owner: Owner, mv_id: str) -> ModelVersion:
    with container.db.session() as s:
        return visible_model_version(s, owner, mv_id)


def get_model_version(container: Container, owner: Owner, mv_id: str) -> dict[str, Any]:
    """A model version with its holdout evaluation."""
    mv = _visible_version(container, owner, mv_id)
    out = model_version_to_dict(mv)
    evals = list_evaluations(container, owner, mv_id)
    holdout = next((e for e in evals if e["kind"] == "holdout"), None)
    out["evaluation"] = _evaluation_body(container, holdout["id"]) if holdout else None
    return out


def _evaluation_body(container: Container, evaluation_id: str) -> dict[str, Any]:
    with container.db.session() as s:
        ev = s.get(Evaluation, evaluation_id)
        assert ev is not None  # noqa: S101 - listed just before
    body: dict[str, Any] = json.loads(container.blobs.get_bytes(ev.blob))
    return {
        **body,
        "id": ev.id,
        "kind": ev.kind,
        "narrative": ev.narrative,
        "narrative_facts": body.get("narrative_facts", []),
        "dataset_version_id": ev.dataset_version_id,
    }


def get_evaluation(container: Container, owner: Owner, evaluation_id: str) -> dict[str, Any]:
    """One stored evaluation in full (metrics, charts data, narrative)."""
    with container.db.session() as s:
        visible_evaluation(s, owner, evaluation_id)
    return _evaluation_body(container, evaluation_id)


def list_evaluations(container: Container, owner: Owner, mv_id: str) -> list[dict[str, Any]]:
    """Evaluations stored for a model version that the caller may see, oldest first.

    Evaluations run on a version of a since-deleted dataset are left out.
    """
    with container.db.session() as s:
        visible_model_version(s, owner, mv_id)
        rows = [
            e
            for e in s.scalars(
                select(Evaluation)
                .where(Evaluation.model_version_id == mv_id)
                .order_by(Evaluation.created_at)
            )
            if is_visible(s, owner, e)
        ]
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "dataset_version_id": e.dataset_version_id,
                "summary": e.summary,
                "narrative": e.narrative,
                "n_rows": e.n_rows,
                "created_at": e.created_at.isoformat(),
            }
            for e in rows
        ]


def evaluate_on_version(
    container: Container, owner: Owner, model_id: str, dataset_version_id: str
) -> dict[str, Any]:
    """Evaluate a model's current version on any labelled dataset version and store it.

    Raises:
        InvalidInput: the version lacks the target or a feature column.
    """
    from narrate.core.narrative.model import model_narrative

    with container.db.session() as s:
        m = visible_model(s, owner, model_id)
        mv_id, target = m.current_version_id, m.target
    if mv_id is None:
        raise InvalidInput("This model has no trained version yet.", code="not_trained")
    mv = _visible_version(container, owner, mv_id)
    version = get_version(container, owner, dataset_version_id)
    df = load_frame(container, version).to_pandas()
    if target not in df.columns:
        raise InvalidInput(
            f"Version {dataset_version_id} has no '{target}' column, so it can't be used to "
            "evaluate this model.",
            code="missing_target",
            details={"column": target},
        )
    df = df[df[target].notna()]
    problem = _trained_problem(mv, df, target)
    pipeline = load_pipeline(container, mv)
    sensitive = [c for c in (mv.config or {}).get("sensitive_columns", []) if c in df.columns]
    try:
        body = evaluate(
            pipeline,
            df.drop(columns=[target]),
            df[target],
            problem,
            threshold=mv.threshold,
            sensitive=df[sensitive] if sensitive else None,
            seed=mv.seed,
        )
    except (KeyError, ValueError) as exc:
        raise InvalidInput(
            f"The model can't score version {dataset_version_id}: {exc}",
            code="incompatible_data",
            details={"version_id": dataset_version_id},
        ) from exc
    told = model_narrative(
        {**mv.details, "leaderboard": mv.leaderboard, "n_train": 0, "n_holdout": body["n_rows"]},
        body,
    )
    narrative, body["narrative_facts"] = told["text"], told["facts"]
    blob = container.blobs.put_bytes(json.dumps(body, allow_nan=False).encode())
    with container.db.session() as s:
        ev = Evaluation(
            owner_id=mv.owner_id,
            model_version_id=mv.id,
            dataset_version_id=version.id,
            kind="external",
            blob=blob,
            summary=body.get("metrics", {}),
            narrative=narrative,
            n_rows=int(body["n_rows"]),
        )
        s.add(ev)
        s.flush()
        ev_id = ev.id
    return _evaluation_body(container, ev_id)


def _trained_problem(mv: ModelVersion, df: Any, target: str) -> ProblemInfo:
    """The problem as the model was trained on it (classes, positive class), sized to ``df``.

    Re-detecting on the new rows could flip the positive class (it is the minority class)
    or lose a class the new rows happen not to contain.
    """
    stored = (mv.details or {}).get("problem")
    if not stored:
        return detect_problem(df, target)
    known = set(ProblemInfo.__dataclass_fields__)
    return ProblemInfo(**{**{k: v for k, v in stored.items() if k in known}, "n_rows": len(df)})


def _model_inside(artifact: Any) -> Any:
    """The trained model without the recipe steps that ``raw_input_pipeline`` put first."""
    steps = getattr(artifact, "steps", None) or []
    if len(steps) > 1 and all(name.startswith("recipe_") for name, _ in steps[:-1]):
        return steps[-1][1]
    return artifact


def start_refit(
    container: Container, owner: Owner, model_id: str, dataset_version_id: str | None
) -> dict[str, Any]:
    """Retrain the current pipeline with its found hyperparameters on a newer version."""
    with container.db.session() as s:
        m = visible_model(s, owner, model_id)
        if m.current_version_id is None:
            raise InvalidInput("This model has no trained version to refit.", code="not_trained")
        dataset = s.get(Dataset, m.dataset_id)
        vid = dataset_version_id or (dataset.current_version_id if dataset else None)
    version = get_version(container, owner, vid or "")
    job_id = create_job(
        container.db,
        owner.user_id,
        "model.refit",
        {"model_id": model_id, "version_id": version.id, "is_admin": owner.is_admin},
    )
    with container.db.session() as s:
        row = s.get(Model, model_id)
        assert row is not None  # noqa: S101 - read above
        row.job_id, row.status = job_id, "training"
    if container.executor is None:
        raise InvalidInput("No job executor is running.", code="no_executor")
    container.executor.submit(job_id, REFIT_ENTRY)
    return {"model_id": model_id, "job_id": job_id}


def refit_job(ctx: JobContext) -> dict[str, Any]:
    """Job: rebuild the current model version's pipeline on a new dataset version."""
    from narrate.core.narrative.model import describe_model
    from narrate.services.training import holdout_split_evaluation

    container = Container(ctx.settings, ctx.db, ctx.blobs)
    owner = Owner(ctx.owner_id, bool(ctx.params.get("is_admin")))
    with container.db.session() as s:
        m = visible_model(s, owner, ctx.params["model_id"])
        source_id = m.current_version_id
    source = _visible_version(container, owner, source_id or "")
    version = get_version(container, owner, ctx.params["version_id"])
    ctx.progress(0.05, "Loading the data")
    df = load_frame(container, version).to_pandas()
    config = TrainConfig.model_validate(source.config)
    trained = _model_inside(load_pipeline(container, source))
    ctx.progress(0.2, f"Refitting {source.family} with its tuned settings")
    started = time.monotonic()
    evaluation = holdout_split_evaluation(df, config, trained)
    ctx.progress(0.7, "Fitting on all rows")
    final = refit_estimator(trained, df, config)
    summary = {
        **source.details,
        "leaderboard": source.leaderboard,
        "config": source.config,
        "duration_s": round(time.monotonic() - started, 3),
        "refit_of": source.id,
    }
    narrative = describe_model(summary, evaluation)
    artifact = raw_input_pipeline(container, version, final)
    mv = save_model_version(
        container,
        m.id,
        version,
        artifact,
        summary,
        evaluation,
        narrative,
        family=source.family,
        params=source.params,
        parent_id=source.id,
    )
    return {"model_id": m.id, "model_version_id": mv}


def delete_model(container: Container, owner: Owner, model_id: str) -> None:
    """Soft-delete a model (restorable): its versions, evaluations and artifacts are
    hidden with it.

    Raises:
        NotFound: no such model for this caller, or it is already deleted.
        InvalidState: a deployment serves one of its versions.
    """
    from narrate.services.deployments import deployments_serving

    with container.db.session() as s:
        model = visible_model(s, owner, model_id)
        serving = deployments_serving(s, model.id)
        if serving:
            raise InvalidState(
                f"Model '{model_id}' is deployed as {', '.join(repr(n) for n in serving)}; "
                "undeploy it first.",
                code="model_deployed",
                hint="DELETE /api/v1/deployments/{name}, then delete the model.",
                details={"model_id": model_id, "deployments": serving},
            )
        model.deleted_at = utcnow()


def restore_model(container: Container, owner: Owner, model_id: str) -> dict[str, Any]:
    """Undo a model's soft delete.

    Raises:
        NotFound: no such model for this caller, or it is not deleted.
    """
    with container.db.session() as s:
        visible_model(s, owner, model_id, deleted=True).deleted_at = None
    return get_model(container, owner, model_id)


def compare(container: Container, owner: Owner, model_version_ids: list[str]) -> dict[str, Any]:
    """Side-by-side metrics of two or more model versions (holdout evaluations)."""
    if len(model_version_ids) < 2:
        raise InvalidInput(
            "Compare needs at least two model versions.", details={"parameter": "model_version_ids"}
        )
    evaluations = []
    for mv_id in model_version_ids:
        detail = get_model_version(container, owner, mv_id)
        if detail["evaluation"] is None:
            raise InvalidInput(f"Model version {mv_id} has no evaluation yet.")
        evaluations.append(
            {
                **detail["evaluation"],
                "name": f"{detail['family']} v{detail['number']}",
                "model_version_id": mv_id,
            }
        )
    return compare_models(evaluations)


def model_artifact(container: Container, owner: Owner, mv_id: str, fmt: str) -> tuple[bytes, str]:
    """A model version's saved model: ``joblib`` (the fitted scikit-learn pipeline) or
    ``serving`` (the same model, loadable without scikit-learn; see
    :mod:`narrate.core.serving`). Returns the bytes and a file name."""
    if fmt not in {"joblib", "serving"}:
        raise InvalidInput(
            f"Format '{fmt}' is not offered; use joblib or serving.",
            details={"parameter": "format"},
        )
    mv = _visible_version(container, owner, mv_id)
    if fmt == "joblib":
        return container.blobs.get_bytes(mv.blob), f"model-{mv_id}.joblib"
    serving = (mv.details or {}).get("serving") or {}
    if not serving.get("available"):
        why = serving.get("reason") or "it was trained before the serving format existed"
        raise InvalidState(
            f"Model version {mv_id} has no serving copy: {why}. Download format=joblib instead.",
            details={"model_version_id": mv_id, "parameter": "format"},
        )
    return container.blobs.get_bytes(serving["blob"]), f"model-{mv_id}.serving"


def _serving_summary(serving: dict[str, Any] | None) -> str:
    if not serving:
        return "none (trained before the serving format existed)"
    if serving.get("available"):
        return f"{serving['size_bytes']:,} bytes, loads without scikit-learn"
    return f"none: {serving.get('reason', 'unknown reason')}"


def model_card(container: Container, owner: Owner, mv_id: str, fmt: str) -> str:
    """The downloadable model card (HTML or Markdown) of a model version."""
    if fmt not in {"html", "md"}:
        raise InvalidInput(
            f"Format '{fmt}' is not offered; use html or md.", details={"parameter": "format"}
        )
    detail = get_model_version(container, owner, mv_id)
    with container.db.session() as s:
        m = s.get(Model, detail["model_id"])
        # The model stays usable after its training dataset is deleted; the card then
        # says so instead of describing data the caller can no longer see.
        version = s.get(DatasetVersion, detail["dataset_version_id"])
        if not is_visible(s, owner, version):
            version = None
        dataset = s.get(Dataset, version.dataset_id) if version else None
    result = {**detail["details"], "leaderboard": detail["leaderboard"], "config": detail["config"]}
    context = {
        "title": f"Model card: {m.name if m else detail['model_id']} (version {detail['number']})",
        "result": result,
        "evaluation": detail["evaluation"] or {},
        "narrative": detail["narrative"],
        "data_summary": {
            "dataset": dataset.name if dataset else "(deleted)",
            "dataset version": version.number if version else "",
            "rows": version.n_rows if version else "",
            "columns": version.n_columns if version else "",
            "model family": detail["family"],
            "model size (bytes)": detail["size_bytes"],
            "serving copy": _serving_summary(detail["details"].get("serving")),
        },
    }
    return render_model_card(context, fmt="md" if fmt == "md" else "html")
