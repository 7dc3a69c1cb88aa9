"""The Transform stage: validate, preview and apply recipes; versions, lineage, diff.

Applying a recipe runs as a job on the full data and creates a new immutable version
holding the exact recipe, its parent and the fitted parameters. The same parent and the
same recipe give the same content hash, and then the existing version is reused.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import polars as pl
from sqlalchemy import select

from narrate.bootstrap import Container
from narrate.core.data.types import apply_type_overrides
from narrate.core.narrative.recipe import describe_recipe_impact, frame_summary
from narrate.core.recipes import (
    FittedRecipe,
    Recipe,
    check_data_loss,
    diff_frames,
    fit_recipe,
    load_document,
    preview_recipe,
    step_catalog,
    validate_recipe,
)
from narrate.errors import Conflict, DataProblem, InvalidInput, NotFound
from narrate.jobs.context import JobContext
from narrate.jobs.records import create_job
from narrate.services.datasets import (
    Owner,
    cached_frame,
    get_version,
    load_frame,
    store_version,
    version_to_dict,
)
from narrate.storage.sql.tables import Dataset, DatasetVersion, Model, ModelVersion, utcnow
from narrate.storage.sql.visibility import (
    visible_dataset,
    visible_dataset_version,
    visible_filter,
)

__all__ = [
    "APPLY_ENTRY",
    "apply_recipe_job",
    "compare_versions",
    "create_apply_job",
    "lineage",
    "list_steps",
    "parse_recipe",
    "preview",
    "read_recipe_document",
    "reproduce_version",
    "restore_version",
    "start_apply",
    "validate",
]

APPLY_ENTRY = "narrate.services.recipes:apply_recipe_job"
TYPE_OVERRIDE_STEP = "cast_kinds"
_SEED = 0


def list_steps() -> list[dict[str, Any]]:
    """Every step type with its JSON schema and description."""
    return step_catalog()


def parse_recipe(recipe: dict[str, Any] | str) -> Recipe:
    """Parse a recipe document (JSON object, JSON text or YAML text)."""
    return Recipe.parse(recipe)


def read_recipe_document(text: str, syntax: Literal["json", "yaml"]) -> dict[str, Any]:
    """Read a request body holding a recipe document (``steps`` plus options) as a dict.

    Raises:
        InvalidInput: A syntax error naming the line and column (``details.line``,
            ``details.column``), or a document that is not a mapping.
    """
    data = load_document(text, syntax=syntax)
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict):
        raise InvalidInput(
            f'A recipe document is a mapping with a "steps" list; this {syntax.upper()} '
            f"document is a {type(data).__name__}.",
            code="invalid_recipe",
            hint="For example:  steps: [{step: drop_columns, columns: [id]}]",
        )
    return data


def _usable_target(target: str | None, columns: list[str]) -> str | None:
    """The dataset's target if this version still has that column (a recipe may drop it)."""
    return target if target in columns else None


def _base(
    container: Container, owner: Owner, dataset_id: str, version_id: str | None
) -> tuple[Dataset, DatasetVersion]:
    with container.db.session() as s:
        dataset = visible_dataset(s, owner, dataset_id)
        vid = version_id or dataset.current_version_id
    version = get_version(container, owner, vid or "")
    if version.dataset_id != dataset_id:
        raise NotFound(
            f"Version '{vid}' does not belong to dataset '{dataset_id}'.",
            details={"parameter": "version_id"},
        )
    return dataset, version


def validate(
    container: Container,
    owner: Owner,
    dataset_id: str,
    recipe: dict[str, Any] | str,
    *,
    version_id: str | None = None,
) -> dict[str, Any]:
    """Check a whole recipe against the version's columns without running it."""
    dataset, version = _base(container, owner, dataset_id, version_id)
    parsed = parse_recipe(recipe)
    schema = cached_frame(container, version).schema
    target = _usable_target(dataset.target, list(schema.names()))
    issues = validate_recipe(parsed, schema, target=target)
    return {
        "valid": not issues,
        "issues": [i.to_dict() for i in issues],
        "steps": [s.describe() for s in parsed.steps],
        "recipe": parsed.model_dump(mode="json", exclude_unset=True),
    }


def preview(
    container: Container,
    owner: Owner,
    dataset_id: str,
    recipe: dict[str, Any] | str,
    *,
    version_id: str | None = None,
    sample_rows: int = 10_000,
) -> dict[str, Any]:
    """Run the recipe on a sample (stratified by the target) and describe the effect."""
    dataset, version = _base(container, owner, dataset_id, version_id)
    target = _usable_target(dataset.target, [c["name"] for c in version.columns])
    sample = _preview_sample(container, version, target, sample_rows)
    result = preview_recipe(sample, recipe, target=target, sample_rows=sample.height, seed=_SEED)
    result["rows"]["total"] = version.n_rows
    result["rows"]["sampled"] = sample.height < version.n_rows
    result["version_id"] = version.id
    return result


_SAMPLES: dict[tuple[str, str | None, int], pl.DataFrame] = {}


def _preview_sample(
    container: Container, version: DatasetVersion, target: str | None, rows: int
) -> pl.DataFrame:
    """The seeded (stratified) preview sample of a version, drawn once and kept.

    Versions are immutable, so the same sample serves every preview a person makes while
    editing a recipe; drawing it from a large frame is most of a preview's cost.
    """
    from narrate.core.recipes.sampling import sample_rows

    key = (version.blob, target, rows)
    sample = _SAMPLES.get(key)
    if sample is None:
        frame = cached_frame(container, version)
        sample = sample_rows(frame, n=rows, stratify=target, seed=_SEED)
        if len(_SAMPLES) >= 8:
            _SAMPLES.pop(next(iter(_SAMPLES)))
        _SAMPLES[key] = sample
    return sample


def start_apply(
    container: Container,
    owner: Owner,
    dataset_id: str,
    recipe: dict[str, Any] | str,
    *,
    version_id: str | None = None,
    confirm_data_loss: bool = False,
) -> str:
    """Create the apply job (see :func:`create_apply_job`) and submit it to the executor."""
    if container.executor is None:
        raise InvalidInput("No job executor is running.", code="no_executor")
    job_id = create_apply_job(
        container,
        owner,
        dataset_id,
        recipe,
        version_id=version_id,
        confirm_data_loss=confirm_data_loss,
    )
    container.executor.submit(job_id, APPLY_ENTRY)
    return job_id


def create_apply_job(
    container: Container,
    owner: Owner,
    dataset_id: str,
    recipe: dict[str, Any] | str,
    *,
    version_id: str | None = None,
    confirm_data_loss: bool = False,
) -> str:
    """Validate, check for data loss on a sample, then queue the apply job.

    Raises:
        InvalidInput: the recipe is invalid (``details.issues``).
        Conflict: the recipe would remove > 50% of rows or the target, and
            ``confirm_data_loss`` is false (``code="confirm_data_loss"``); nothing is created.
        DataProblem: the recipe would leave no rows.
    """
    dataset, version = _base(container, owner, dataset_id, version_id)
    parsed = parse_recipe(recipe)
    target = _usable_target(dataset.target, [c["name"] for c in version.columns])
    drawn = _preview_sample(container, version, target, 10_000)
    sample = preview_recipe(drawn, parsed, target=target, sample_rows=drawn.height, seed=_SEED)
    _guard_data_loss(sample.get("warnings", []), confirm_data_loss)
    return create_job(
        container.db,
        owner.user_id,
        "recipe.apply",
        {
            "dataset_id": dataset_id,
            "version_id": version.id,
            "recipe": parsed.model_dump(mode="json"),
            "confirm_data_loss": confirm_data_loss,
            "is_admin": owner.is_admin,
        },
    )


def _guard_data_loss(warnings: list[dict[str, Any]], confirmed: bool) -> None:
    codes = {w["code"] for w in warnings}
    if "empty_result" in codes:
        first = next(w for w in warnings if w["code"] == "empty_result")
        raise DataProblem(first["message"], code="empty_result", details=first.get("details"))
    if "data_loss" in codes and not confirmed:
        messages = " ".join(w["message"] for w in warnings if w["code"] == "data_loss")
        raise Conflict(
            messages,
            code="confirm_data_loss",
            hint='Send "confirm_data_loss": true to apply it anyway.',
            details={"warnings": [w for w in warnings if w["code"] == "data_loss"]},
        )


def apply_recipe_job(ctx: JobContext) -> dict[str, Any]:
    """Job: fit the recipe on the full version and store the result as a new version.

    Cancelling is honoured at every progress report — after loading, after each step —
    and a last time just before anything is written, so a cancelled job leaves no blob
    and no version behind. The target used is stored in the fitted recipe, which is what
    :func:`reproduce_version` replays with.
    """
    p = ctx.params
    container = Container(ctx.settings, ctx.db, ctx.blobs)
    owner = Owner(ctx.owner_id, bool(p.get("is_admin")))
    dataset, version = _base(container, owner, p["dataset_id"], p["version_id"])
    ctx.progress(0.02, "Loading the data")
    frame = load_frame(container, version)
    target = _usable_target(dataset.target, frame.columns)
    ctx.check_cancelled()
    out, fitted = fit_recipe(
        frame,
        p["recipe"],
        target=target,
        seed=_SEED,
        progress=lambda f, msg: ctx.progress(0.05 + 0.8 * f, msg),
    )
    removed = [c for c in frame.columns if c not in out.columns]
    _guard_data_loss(
        check_data_loss(frame.height, out.height, removed, target),
        bool(p.get("confirm_data_loss")),
    )
    # the data makes this report reach the database (and read the cancel flag) now
    ctx.progress(0.88, "Saving the new version", {"rows": out.height, "columns": out.width})
    impact = describe_recipe_impact(
        fitted.recipe.to_dict()["steps"], frame_summary(frame), frame_summary(out)
    )
    new = _store_result(
        container, dataset, version, out, fitted, created_by=ctx.owner_id, impact=impact
    )
    return {
        "dataset_id": dataset.id,
        "version_id": new["id"],
        "reused": new["reused"],
        "recipe_impact": (new.get("source") or {}).get("recipe_impact", impact),
    }


def _kinds_from(version: DatasetVersion, out: pl.DataFrame) -> dict[str, Any]:
    from narrate.core.data.types import classify_kinds

    known = {c["name"]: c["kind"] for c in version.columns}
    new_columns = [c for c in out.columns if c not in known]
    fresh = classify_kinds(out.select(new_columns)) if new_columns else {}
    return {c: known.get(c) or str(fresh.get(c, "")) for c in out.columns}


def _store_result(
    container: Container,
    dataset: Dataset,
    parent: DatasetVersion,
    out: pl.DataFrame,
    fitted: FittedRecipe,
    *,
    created_by: str,
    impact: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store ``out`` as a child of ``parent``, or reuse the child that already holds it.

    ``impact`` (the recipe-impact narrative) is kept in the new version's
    ``source["recipe_impact"]``.

    The Parquet file is written and hashed once, by ``store_version``. When a sibling
    version already has that content hash (same parent + same recipe), the new row is
    dropped again before the unit of work commits and the sibling becomes the working
    version; blobs are content-addressed, so nothing is stored twice.
    """
    with container.db.session() as s:
        ds = s.get(Dataset, dataset.id)
        assert ds is not None  # noqa: S101 - loaded above in this job
        # store_version profiles the frame with the dataset's target; a confirmed recipe
        # may have removed that column, so profile this version without one (the dataset
        # keeps its target for its other versions).
        kept_target = ds.target
        if kept_target is not None and kept_target not in out.columns:
            ds.target = None
        try:
            new = store_version(
                container,
                s,
                ds,
                out,
                _kinds_from(parent, out),
                created_by=created_by,
                parent_id=parent.id,
                recipe=fitted.recipe.model_dump(mode="json"),
                fitted_recipe=json.loads(fitted.model_dump_json()),
                note=f"Recipe of {len(fitted.recipe.steps)} step(s) applied",
                source={"recipe_impact": impact} if impact is not None else None,
            )
        finally:
            ds.target = kept_target
        existing = s.scalar(
            select(DatasetVersion).where(
                DatasetVersion.parent_version_id == parent.id,
                DatasetVersion.content_hash == new.content_hash,
                DatasetVersion.id != new.id,
            )
        )
        if existing is None:
            return {**version_to_dict(new), "reused": False}
        ds.current_version_id, ds.updated_at = existing.id, utcnow()
        s.flush()
        s.delete(new)
        return {**version_to_dict(existing), "reused": True}


def lineage(container: Container, owner: Owner, version_id: str) -> dict[str, Any]:
    """The graph of a version's dataset: versions as nodes, recipes as edges."""
    version = get_version(container, owner, version_id)
    with container.db.session() as s:
        dataset = s.get(Dataset, version.dataset_id)
        rows = list(
            s.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == version.dataset_id)
                .order_by(DatasetVersion.number)
            )
        )
    nodes = [
        {
            "id": v.id,
            "type": "version",
            "label": f"v{v.number}",
            "n_rows": v.n_rows,
            "n_columns": v.n_columns,
            "note": v.note,
            "created_at": v.created_at.isoformat(),
            "is_current": dataset is not None and dataset.current_version_id == v.id,
            "is_selected": v.id == version_id,
        }
        for v in rows
    ]
    edges = [
        {
            "from": v.parent_version_id,
            "to": v.id,
            "type": "recipe",
            "steps": [st.get("step") for st in (v.recipe or {}).get("steps", [])],
        }
        for v in rows
        if v.parent_version_id
    ]
    models = _model_children(container, owner, [v.id for v in rows])
    nodes += models["nodes"]
    edges += models["edges"]
    return {"dataset_id": version.dataset_id, "nodes": nodes, "edges": edges}


def _model_children(
    container: Container, owner: Owner, version_ids: list[str]
) -> dict[str, list[Any]]:
    """Model versions trained on these dataset versions that the caller may see."""
    with container.db.session() as s:
        rows = s.execute(
            select(ModelVersion, Model.name)
            .join(Model, Model.id == ModelVersion.model_id)
            .where(ModelVersion.dataset_version_id.in_(version_ids), visible_filter(Model, owner))
            .order_by(ModelVersion.created_at)
        ).all()
    nodes = [
        {
            "id": mv.id,
            "type": "model",
            "label": f"{name} v{mv.number}",
            "model_id": mv.model_id,
            "family": mv.family,
            "note": f"{mv.family} model",
            "created_at": mv.created_at.isoformat(),
        }
        for mv, name in rows
    ]
    edges = [
        {"from": mv.dataset_version_id, "to": mv.id, "type": "trained", "steps": []}
        for mv, _ in rows
    ]
    return {"nodes": nodes, "edges": edges}


def compare_versions(
    container: Container, owner: Owner, version_a: str, version_b: str
) -> dict[str, Any]:
    """Schema changes, row counts, per-column stat deltas and a sample of changed rows."""
    a, b = get_version(container, owner, version_a), get_version(container, owner, version_b)
    diff = diff_frames(cached_frame(container, a), cached_frame(container, b))
    return {"a": version_to_dict(a), "b": version_to_dict(b), "diff": diff}


def _recorded_fit(container: Container, version: DatasetVersion) -> tuple[str | None, int]:
    """The target and seed a version's recipe was fitted with, as stored at apply time.

    Versions made before fitted recipes were stored fall back to the dataset's target.
    """
    if version.fitted_recipe_blob:
        fitted = json.loads(container.blobs.get_bytes(version.fitted_recipe_blob))
        return fitted.get("target"), int(fitted.get("seed", _SEED))
    with container.db.session() as s:
        dataset = s.get(Dataset, version.dataset_id)
        return (dataset.target if dataset else None), _SEED


def _replay(container: Container, chain: list[DatasetVersion]) -> pl.DataFrame:
    frame = load_frame(container, chain[0])
    for v in chain[1:]:
        steps = (v.recipe or {}).get("steps", [])
        if steps and steps[0].get("step") == TYPE_OVERRIDE_STEP:
            frame, _ = apply_type_overrides(frame, steps[0]["columns"])
            continue
        target, seed = _recorded_fit(container, v)
        target = _usable_target(target, frame.columns)
        frame, _ = fit_recipe(frame, v.recipe or {"steps": []}, target=target, seed=seed)
    return frame


def reproduce_version(container: Container, owner: Owner, version_id: str) -> dict[str, Any]:
    """Rebuild a version from its root upload by replaying recipes; compare the hash."""
    import tempfile
    from pathlib import Path

    from narrate.services.datasets import frame_to_parquet
    from narrate.storage.blobs import hash_file

    chain = [get_version(container, owner, version_id)]
    while chain[0].parent_version_id:
        chain.insert(0, get_version(container, owner, chain[0].parent_version_id))
    frame = _replay(container, chain)
    with tempfile.TemporaryDirectory() as tmp:
        digest = hash_file(frame_to_parquet(frame, Path(tmp) / "r.parquet"))
    target = chain[-1]
    return {
        "version_id": target.id,
        "expected_hash": target.content_hash,
        "reproduced_hash": digest,
        "matches": digest == target.content_hash,
        "replayed_versions": [v.id for v in chain],
    }


def restore_version(container: Container, owner: Owner, version_id: str) -> dict[str, Any]:
    """Make an older version the dataset's working version (nothing is deleted)."""
    with container.db.session() as s:
        version = visible_dataset_version(s, owner, version_id)
        dataset = visible_dataset(s, owner, version.dataset_id)
        dataset.current_version_id, dataset.updated_at = version.id, utcnow()
    return version_to_dict(version)
