"""Datasets and their immutable versions: ingest, list, read rows, rename, delete, restore.

An upload is parsed and validated completely before anything is stored; then the original
file and the Parquet table go to the blob store and the rows to the database in one unit
of work. A failure leaves neither rows nor new blobs behind.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrate.bootstrap import Container
from narrate.core.data.expressions import filter_rows
from narrate.core.data.readers import ReadLimits, ReadOptions, read_table
from narrate.core.data.types import apply_type_overrides, infer_types
from narrate.core.text import check_plain_text
from narrate.errors import InvalidInput, NotFound
from narrate.services.new_blobs import NewBlobs
from narrate.services.profiles import build_profile
from narrate.storage.sql.tables import Dataset, DatasetVersion, new_id, utcnow
from narrate.storage.sql.visibility import (
    Owner,
    visible_dataset,
    visible_dataset_version,
    visible_filter,
)

__all__ = [
    "Owner",
    "clean_filename",
    "dataset_to_dict",
    "delete_dataset",
    "get_dataset",
    "ingest_file",
    "list_datasets",
    "load_frame",
    "read_limits",
    "restore_dataset",
    "store_version",
    "update_dataset",
    "version_to_dict",
]


def frame_to_parquet(df: pl.DataFrame, dest: Path) -> Path:
    """Write a frame as Parquet the same way every time (the bytes are hashed)."""
    df.write_parquet(dest, compression="zstd", statistics=True)
    return dest


def _columns_record(df: pl.DataFrame, kinds: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "kind": str(kinds.get(name, "")), "dtype": str(dtype)}
        for name, dtype in df.schema.items()
    ]


def _profile_json(profile: dict[str, Any]) -> bytes:
    return json.dumps(profile, allow_nan=False).encode()


def store_version(
    container: Container,
    s: Session,
    dataset: Dataset,
    df: pl.DataFrame,
    kinds: dict[str, Any],
    *,
    created_by: str,
    parent_id: str | None = None,
    recipe: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    original: tuple[Path, str] | None = None,
    fitted_recipe: dict[str, Any] | None = None,
    note: str = "",
) -> DatasetVersion:
    """Write a frame as a new version (blob + profile + row) inside the caller's session.

    Blobs this call creates are removed again if the caller's unit of work rolls back
    (here or in a later step); blobs that were already stored are left alone.

    Profiling, writing the Parquet file and storing blobs all happen before this call's
    first statement, and pending changes of the session are flushed only after them: a
    caller that has not written yet holds no database write lock during that CPU work
    (on SQLite a held lock makes every other write, logins included, wait and fail).
    """
    blobs = NewBlobs(container, s)
    # Profiling and writing the Parquet file both run in Polars, which releases the GIL:
    # overlapping them saves the shorter of the two on a multi-core machine.
    with ThreadPoolExecutor(max_workers=1) as pool:
        profiling = pool.submit(build_profile, df, kinds, name=dataset.name, target=dataset.target)
        with tempfile.TemporaryDirectory(prefix="narrate-version-") as tmp:
            parquet = frame_to_parquet(df, Path(tmp) / "data.parquet")
            blob = blobs.put_file(parquet)
        original_blob = blobs.put_file(original[0]) if original else None
        profile = profiling.result()
    profile_blob = blobs.put_bytes(_profile_json(profile))
    fitted_blob = blobs.put_bytes(json.dumps(fitted_recipe).encode()) if fitted_recipe else None
    number = (
        s.scalar(
            select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == dataset.id)
        )
        or 0
    ) + 1
    version = DatasetVersion(
        dataset_id=dataset.id,
        owner_id=dataset.owner_id,
        number=number,
        parent_version_id=parent_id,
        blob=blob,
        content_hash=blob,
        original_blob=original_blob,
        original_filename=original[1] if original else None,
        n_rows=df.height,
        n_columns=df.width,
        columns=_columns_record(df, kinds),
        warnings=list(warnings or []),
        source={**(source or {}), "created_by": created_by},
        recipe=recipe,
        fitted_recipe_blob=fitted_blob,
        profile_blob=profile_blob,
        privacy={"pii": profile.get("pii", [])},
        note=note,
    )
    s.add(version)
    s.flush()
    dataset.current_version_id = version.id
    dataset.updated_at = utcnow()
    return version


def clean_filename(filename: str) -> str:
    """An upload's name without directories (``/`` or ``\\``) or control characters.

    Clients send Windows paths, ``../`` parts or NUL bytes (refused by PostgreSQL text).
    The name is shown and read for its extension, never used as a path.

    Args:
        filename: The name as the client sent it.

    Returns:
        The cleaned name, or "upload" when nothing is left.
    """
    last = re.split(r"[\\/]", filename)[-1]
    cleaned = "".join(c for c in last if unicodedata.category(c) != "Cc").strip()
    return cleaned if cleaned not in {"", ".", ".."} else "upload"


def ingest_file(
    container: Container,
    owner_id: str,
    path: Path,
    *,
    filename: str,
    name: str | None = None,
    description: str = "",
    target: str | None = None,
    options: ReadOptions | None = None,
) -> dict[str, Any]:
    """Parse, validate and store an uploaded file as a new dataset with its first version.

    Raises:
        DataProblem, UnsupportedMediaType, InvalidInput: the file cannot be used; nothing
            is stored.
    """
    filename = clean_filename(filename)
    check_plain_text(name or "", parameter="name")
    check_plain_text(description, parameter="description")
    result = read_table(path, filename=filename, options=options, limits=read_limits(container))
    df, kinds = infer_types(result.frame, in_place=True)
    if target is not None and target not in df.columns:
        target = None
    source = {
        "filename": filename,
        "format": result.format,
        "encoding": result.encoding,
        "delimiter": result.delimiter,
        "sheet": result.sheet,
        "sheets": result.sheets,
        "skipped_lines": result.skipped_lines,
        "renamed_columns": result.renamed_columns,
    }
    with container.db.session() as s:
        # Not flushed here: store_version profiles first and inserts both rows after, so
        # the write transaction lasts only as long as the inserts.
        dataset = Dataset(
            id=new_id(),
            owner_id=owner_id,
            name=(name or Path(filename).stem).strip()[:200] or "dataset",
            description=description,
            target=target,
        )
        s.add(dataset)
        version = store_version(
            container,
            s,
            dataset,
            df,
            kinds,
            created_by=owner_id,
            source=source,
            warnings=result.warnings,
            original=(path, filename),
            note="Uploaded",
        )
        return {**dataset_to_dict(dataset), "version": version_to_dict(version)}


def read_limits(container: Container) -> ReadLimits:
    """The upload limits configured in the container's settings.

    Args:
        container: The wired application.

    Returns:
        Columns, cells, decompressed size and JSON depth limits for ``read_table``.
    """
    settings = container.settings
    return ReadLimits(
        max_columns=settings.max_columns,
        max_cells=settings.max_cells,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_json_depth=settings.max_json_depth,
    )


def dataset_to_dict(d: Dataset) -> dict[str, Any]:
    """The API view of a dataset."""
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "target": d.target,
        "owner_id": d.owner_id,
        "version_id": d.current_version_id,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "deleted": d.deleted_at is not None,
    }


def version_to_dict(v: DatasetVersion) -> dict[str, Any]:
    """The API view of a dataset version."""
    return {
        "id": v.id,
        "version_id": v.id,
        "dataset_id": v.dataset_id,
        "number": v.number,
        "parent_version_id": v.parent_version_id,
        "content_hash": v.content_hash,
        "n_rows": v.n_rows,
        "n_columns": v.n_columns,
        "columns": v.columns,
        "warnings": v.warnings,
        "source": v.source,
        "recipe": v.recipe,
        "note": v.note,
        "created_at": v.created_at.isoformat(),
    }


def get_dataset(container: Container, owner: Owner, dataset_id: str) -> dict[str, Any]:
    """A dataset with its current version."""
    with container.db.session() as s:
        d = visible_dataset(s, owner, dataset_id)
        v = s.get(DatasetVersion, d.current_version_id) if d.current_version_id else None
        return {**dataset_to_dict(d), "version": version_to_dict(v) if v else None}


def list_datasets(
    container: Container, owner: Owner, *, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """The caller's datasets (everyone's for admins), newest first, paginated."""
    with container.db.session() as s:
        q = select(Dataset).where(visible_filter(Dataset, owner))
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(Dataset.updated_at.desc()).offset(offset).limit(limit))
        items = []
        for d in rows:
            v = s.get(DatasetVersion, d.current_version_id) if d.current_version_id else None
            items.append(
                {
                    **dataset_to_dict(d),
                    "n_rows": v.n_rows if v else 0,
                    "n_columns": v.n_columns if v else 0,
                }
            )
        return {"items": items, "total": total, "offset": offset, "limit": limit}


def get_version(container: Container, owner: Owner, version_id: str) -> DatasetVersion:
    """A version the caller may see (see :mod:`narrate.storage.sql.visibility`).

    Raises:
        NotFound: no such version for this caller, or it or its dataset is deleted.
    """
    with container.db.session() as s:
        return visible_dataset_version(s, owner, version_id)


def load_frame(container: Container, version: DatasetVersion) -> pl.DataFrame:
    """Read a version's table from the blob store."""
    with container.blobs.open(version.blob) as fh:
        return pl.read_parquet(io.BytesIO(fh.read()))


def update_dataset(
    container: Container,
    owner: Owner,
    dataset_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    target: str | None = None,
    column_types: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Rename, describe, set the target, or override column types (a new version).

    A new target re-profiles the current version, so the target summary, the leakage
    and class-imbalance warnings and the narrative follow it.
    """
    if name is not None and not check_plain_text(name, parameter="name").strip():
        raise InvalidInput("A dataset name can't be empty.", details={"parameter": "name"})
    if description is not None:
        check_plain_text(description, parameter="description")
    with container.db.session() as s, s.no_autoflush:
        # Nothing is flushed until the profiling below is done: a pending change flushed
        # early would hold SQLite's write lock (and stall every login) during CPU work.
        d = visible_dataset(s, owner, dataset_id)
        current = s.get(DatasetVersion, d.current_version_id) if d.current_version_id else None
        if name is not None:
            d.name = name.strip()[:200]
        if description is not None:
            d.description = description
        if target is not None and current is not None:
            _check_column(current, target, parameter="target")
            is_new_target = d.target != target
            d.target = target
            if is_new_target and not column_types:
                _reprofile(container, s, d, current)
        if column_types and current is not None:
            _retype(container, s, owner, d, current, column_types)
        s.flush()
    return get_dataset(container, owner, dataset_id)


def _check_column(version: DatasetVersion, column: str, *, parameter: str) -> None:
    names = [c["name"] for c in version.columns]
    if column not in names:
        raise InvalidInput(
            f"Column '{column}' is not in this dataset; columns are: {', '.join(names[:20])}.",
            code="unknown_column",
            details={"parameter": parameter, "column": column},
        )


def _retype(
    container: Container,
    s: Session,
    owner: Owner,
    dataset: Dataset,
    current: DatasetVersion,
    column_types: dict[str, str],
) -> None:
    """Store a new version with some columns' types overridden."""
    df = load_frame(container, current)
    kinds = {c["name"]: c["kind"] for c in current.columns}
    unknown = [c for c in column_types if c not in df.columns]
    if unknown:
        raise InvalidInput(
            f"Column '{unknown[0]}' is not in this dataset.",
            code="unknown_column",
            details={"parameter": "column_types", "column": unknown[0]},
        )
    new_df, new_kinds = apply_type_overrides(df, column_types)
    kinds.update({k: str(v) for k, v in new_kinds.items()})
    store_version(
        container,
        s,
        dataset,
        new_df,
        kinds,
        created_by=owner.user_id,
        parent_id=current.id,
        recipe={"steps": [{"step": "cast_kinds", "columns": column_types}]},
        note="Column types changed",
    )


def _reprofile(container: Container, s: Session, dataset: Dataset, version: DatasetVersion) -> None:
    """Profile a version again for the dataset's target (summary, leakage, balance, text)."""
    df = cached_frame(container, version)
    kinds = {c["name"]: c["kind"] for c in version.columns}
    profile = build_profile(df, kinds, name=dataset.name, target=dataset.target)
    version.profile_blob = NewBlobs(container, s).put_bytes(_profile_json(profile))
    version.privacy = {"pii": profile.get("pii", [])}


def delete_dataset(container: Container, owner: Owner, dataset_id: str) -> None:
    """Soft-delete a dataset (restorable)."""
    with container.db.session() as s:
        visible_dataset(s, owner, dataset_id).deleted_at = utcnow()


def restore_dataset(container: Container, owner: Owner, dataset_id: str) -> dict[str, Any]:
    """Undo a soft delete."""
    with container.db.session() as s:
        visible_dataset(s, owner, dataset_id, deleted=True).deleted_at = None
    return get_dataset(container, owner, dataset_id)


def iter_csv(df: pl.DataFrame, chunk_rows: int = 50_000) -> Iterator[bytes]:
    """Stream a frame as CSV bytes, header first."""
    for start in range(0, max(df.height, 1), chunk_rows):
        buf = io.BytesIO()
        df.slice(start, chunk_rows).write_csv(buf, include_header=start == 0)
        yield buf.getvalue()


_FRAME_CACHE: dict[str, pl.DataFrame] = {}
_PROFILE_CACHE: dict[str, bytes] = {}
_CACHE_SIZE = 4


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def cached_frame(container: Container, version: DatasetVersion) -> pl.DataFrame:
    """A version's frame, kept in a small in-process cache (versions are immutable)."""
    frame = _FRAME_CACHE.get(version.blob)
    if frame is None:
        frame = load_frame(container, version)
        _remember(_FRAME_CACHE, version.blob, frame)
    return frame


def profile_bytes(container: Container, version: DatasetVersion) -> bytes:
    """The stored profile JSON of a version, served without re-parsing."""
    if version.profile_blob is None:
        raise NotFound(f"Version {version.id} has no profile yet.")
    data = _PROFILE_CACHE.get(version.profile_blob)
    if data is None:
        data = container.blobs.get_bytes(version.profile_blob)
        _remember(_PROFILE_CACHE, version.profile_blob, data)
    return data


def list_versions(container: Container, owner: Owner, dataset_id: str) -> list[dict[str, Any]]:
    """A dataset's versions, oldest first."""
    with container.db.session() as s:
        visible_dataset(s, owner, dataset_id)
        rows = s.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.number)
        )
        return [version_to_dict(v) for v in rows]


def _sorted(df: pl.DataFrame, sort: str) -> pl.DataFrame:
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    if column not in df.columns:
        raise InvalidInput(
            f"Can't sort by '{column}': there is no such column.",
            code="unknown_column",
            details={"parameter": "sort", "column": column},
        )
    return df.sort(column, descending=descending, nulls_last=True)


def get_rows(
    container: Container,
    owner: Owner,
    dataset_id: str,
    *,
    version_id: str | None,
    offset: int,
    limit: int,
    sort: str | None,
    where: str | None,
) -> dict[str, Any]:
    """A page of a version's rows, optionally filtered and sorted."""
    with container.db.session() as s:
        d = visible_dataset(s, owner, dataset_id)
        vid = version_id or d.current_version_id
        v = s.get(DatasetVersion, vid) if vid else None
        if v is None or v.dataset_id != dataset_id:
            raise NotFound(
                f"Dataset '{dataset_id}' has no version '{vid}'.",
                details={"parameter": "version", "version_id": vid},
            )
    df = cached_frame(container, v)
    if where:
        df = filter_rows(df, where, parameter="filter")
    if sort:
        df = _sorted(df, sort)
    page = df.slice(offset, limit)
    return {
        "version_id": v.id,
        "total": df.height,
        "offset": offset,
        "limit": limit,
        "columns": page.columns,
        "rows": json.loads(page.write_json()),
    }
