"""Who may see a record: the one visibility rule behind every lookup by id.

A record is visible to a caller when

1. the caller owns it or is an admin, and
2. neither the record nor any of its parents is soft-deleted.

The parents are: a dataset version's dataset; a model version's model; an external
evaluation's model version (and model) *and* the dataset version it was run on (and that
version's dataset). A holdout evaluation is part of its model version, made from the
training rows when the model was trained.

A model is deliberately *not* a child of the dataset it was trained on: a model trained
on a dataset that is later deleted stays usable (its page, versions, evaluation, artifact
and card). Everything that reads the deleted dataset's rows — evaluating on one of its
versions, refitting onto it, training on it — looks the dataset version up here and so
answers 404.

A record that fails the ownership check raises the same :class:`NotFound` as one that
does not exist, so other users cannot learn that it exists. Its owner (or an admin) is
told that it, or a parent, is deleted and how to restore it. Soft-deleted records are
reachable only by the restore routes (``deleted=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from narrate.errors import NotFound
from narrate.storage.sql.tables import (
    Dataset,
    DatasetVersion,
    Deployment,
    DriftReport,
    Evaluation,
    Job,
    Model,
    ModelVersion,
)


class _Caller(Protocol):
    """An authenticated caller (``narrate.services.auth.Principal``)."""

    @property
    def user_id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


__all__ = [
    "SYSTEM",
    "Owner",
    "is_visible",
    "visible_dataset",
    "visible_dataset_version",
    "visible_deployment",
    "visible_drift_report",
    "visible_evaluation",
    "visible_filter",
    "visible_job",
    "visible_model",
    "visible_model_version",
]

Record = Dataset | DatasetVersion | Model | ModelVersion | Evaluation | Job | Deployment
RecordT = TypeVar(
    "RecordT", Dataset, DatasetVersion, Model, ModelVersion, Evaluation, Job, Deployment
)

#: What each kind of record is called in messages, and its id's key in ``details``.
_NAMES: dict[type[Any], tuple[str, str]] = {
    Dataset: ("dataset", "dataset_id"),
    DatasetVersion: ("dataset version", "version_id"),
    Model: ("model", "model_id"),
    ModelVersion: ("model version", "model_version_id"),
    Evaluation: ("evaluation", "evaluation_id"),
    Job: ("job", "job_id"),
    Deployment: ("deployment", "deployment"),
}
#: Where a deleted record (or parent) can be brought back.
_RESTORE: dict[type[Any], str] = {
    Dataset: "POST /api/v1/datasets/{id}/restore",
    Model: "POST /api/v1/models/{id}/restore",
    Deployment: "POST /api/v1/deployments/{id}/restore",
}


@dataclass(frozen=True)
class Owner:
    """Who acts: the user id and whether they may see everything."""

    user_id: str
    is_admin: bool = False

    @classmethod
    def of(cls, principal: _Caller) -> Owner:
        """The owner view of an authenticated caller."""
        return cls(principal.user_id, principal.is_admin)


#: The application itself (jobs reading their own inputs, internal look-ups): sees every
#: user's records, but soft-deleted ones stay hidden like for anyone else.
SYSTEM = Owner("", is_admin=True)


def _may_see(owner: Owner, row: Record) -> bool:
    return owner.is_admin or row.owner_id == owner.user_id


Parent = tuple[type[Any], str, Record | None]


def _parents(s: Session, row: Record) -> list[Parent]:
    """The records ``row`` depends on, nearest first, as (kind, id, row or None)."""
    if isinstance(row, DatasetVersion):
        return [(Dataset, row.dataset_id, s.get(Dataset, row.dataset_id))]
    if isinstance(row, ModelVersion):
        return [(Model, row.model_id, s.get(Model, row.model_id))]
    if isinstance(row, Evaluation):
        mv = s.get(ModelVersion, row.model_version_id)
        chain: list[Parent] = [(ModelVersion, row.model_version_id, mv)]
        chain += _parents(s, mv) if mv else []
        if row.kind != "holdout":
            dv = s.get(DatasetVersion, row.dataset_version_id)
            chain += [(DatasetVersion, row.dataset_version_id, dv)]
            chain += _parents(s, dv) if dv else []
        return chain
    return []


def _hidden_parent(s: Session, row: Record) -> tuple[type[Any], str] | None:
    """The first parent that is missing or soft-deleted, if any."""
    for kind, parent_id, parent in _parents(s, row):
        if parent is None or parent.deleted_at is not None:
            return kind, parent_id
    return None


def is_visible(s: Session, owner: Owner, row: Record | None) -> bool:
    """Whether ``owner`` may see ``row`` (see the module docstring for the rule).

    Args:
        s: An open session.
        owner: The caller.
        row: The record, or None (never visible).

    Returns:
        True when the caller owns it or is admin and neither it nor a parent is deleted.
    """
    return (
        row is not None
        and _may_see(owner, row)
        and row.deleted_at is None
        and _hidden_parent(s, row) is None
    )


def visible_filter(
    kind: type[Dataset] | type[Model] | type[Job] | type[Deployment], owner: Owner
) -> Any:
    """The SQL condition of the rule for listing records that have no parents.

    Args:
        kind: The table listed (datasets, models, jobs and deployments have no parents).
        owner: The caller.

    Returns:
        A condition for ``select(kind).where(...)``.
    """
    mine: ColumnElement[bool] = true() if owner.is_admin else kind.owner_id == owner.user_id
    return mine & kind.deleted_at.is_(None)


def _require(
    s: Session, owner: Owner, kind: type[RecordT], record_id: str, *, deleted: bool = False
) -> RecordT:
    """Load a record by id and apply the rule; ``deleted=True`` is for restore routes."""
    name, key = _NAMES[kind]
    if kind is Deployment:  # addressed by its name, which is unique
        found: Any = s.scalar(select(Deployment).where(Deployment.name == record_id))
        row: RecordT | None = found
    else:
        row = s.get(kind, record_id) if record_id else None
    if row is None or not _may_see(owner, row):
        raise NotFound(f"No {name} with id '{record_id}'.", details={key: record_id})
    label = name[0].upper() + name[1:]
    if deleted:
        if row.deleted_at is None:
            raise NotFound(f"{label} '{record_id}' is not deleted.", details={key: record_id})
        return row
    if row.deleted_at is not None:
        raise NotFound(
            f"{label} '{record_id}' is deleted.",
            hint=_restore_hint(kind, record_id),
            details={key: record_id},
        )
    hidden = _hidden_parent(s, row)
    if hidden is not None:
        parent_kind, parent_id = hidden
        parent_name, parent_key = _NAMES[parent_kind]
        raise NotFound(
            f"{label} '{record_id}' belongs to {parent_name} '{parent_id}', which is deleted.",
            hint=_restore_hint(parent_kind, parent_id),
            details={key: record_id, parent_key: parent_id},
        )
    return row


def _restore_hint(kind: type[Any], record_id: str) -> str | None:
    route = _RESTORE.get(kind)
    return f"Restore it first: {route.format(id=record_id)}." if route else None


def visible_dataset(s: Session, owner: Owner, dataset_id: str, *, deleted: bool = False) -> Dataset:
    """A dataset the caller may see.

    Args:
        s: An open session.
        owner: The caller.
        dataset_id: The dataset's id.
        deleted: Look up a soft-deleted dataset instead (the restore route only).

    Returns:
        The dataset row.

    Raises:
        NotFound: no such dataset for this caller, or it is (not) deleted.
    """
    return _require(s, owner, Dataset, dataset_id, deleted=deleted)


def visible_dataset_version(s: Session, owner: Owner, version_id: str) -> DatasetVersion:
    """A dataset version the caller may see (its dataset is not deleted).

    Raises:
        NotFound: no such version for this caller, or it or its dataset is deleted.
    """
    return _require(s, owner, DatasetVersion, version_id)


def visible_model(s: Session, owner: Owner, model_id: str, *, deleted: bool = False) -> Model:
    """A model the caller may see; it stays visible when its training dataset is deleted.

    Args:
        s: An open session.
        owner: The caller.
        model_id: The model's id.
        deleted: Look up a soft-deleted model instead (the restore route only).

    Returns:
        The model row.

    Raises:
        NotFound: no such model for this caller, or it is (not) deleted.
    """
    return _require(s, owner, Model, model_id, deleted=deleted)


def visible_model_version(s: Session, owner: Owner, mv_id: str) -> ModelVersion:
    """A model version the caller may see (its model is not deleted).

    Raises:
        NotFound: no such model version for this caller, or it or its model is deleted.
    """
    return _require(s, owner, ModelVersion, mv_id)


def visible_evaluation(s: Session, owner: Owner, evaluation_id: str) -> Evaluation:
    """An evaluation the caller may see: its model version is visible and, for one run on
    another dataset version, that dataset version is visible too.

    Raises:
        NotFound: no such evaluation for this caller, or it or a parent is deleted.
    """
    return _require(s, owner, Evaluation, evaluation_id)


def visible_job(s: Session, owner: Owner, job_id: str) -> Job:
    """A job the caller may see.

    A job is the record of something the caller did; it has no parents, so the job of a
    training run stays readable (and cancellable) after its dataset is deleted.

    Raises:
        NotFound: no such job for this caller, or it is deleted.
    """
    return _require(s, owner, Job, job_id)


def visible_deployment(s: Session, owner: Owner, name: str, *, deleted: bool = False) -> Deployment:
    """A deployment the caller may see, by its name.

    A deployment has no parents: a model that is deployed cannot be deleted (the model
    delete route refuses), so what it serves stays readable.

    Args:
        s: An open session.
        owner: The caller.
        name: The deployment's name.
        deleted: Look up an undeployed (soft-deleted) one instead (the restore route only).

    Returns:
        The deployment row.

    Raises:
        NotFound: no such deployment for this caller, or it is (not) deleted.
    """
    return _require(s, owner, Deployment, name, deleted=deleted)


def visible_drift_report(s: Session, owner: Owner, report_id: str) -> DriftReport:
    """A drift report the caller may see: its own (or any, for an admin), not deleted,
    and none of its parents deleted: the deployment it is on (undeployed) and the dataset
    versions it compares (their datasets), since it holds their distributions.

    Raises:
        NotFound: no such report for this caller, or it or a parent is deleted.
    """
    row = s.get(DriftReport, report_id) if report_id else None
    if row is None or not (owner.is_admin or row.owner_id == owner.user_id):
        raise NotFound(f"No drift report with id '{report_id}'.", details={"report_id": report_id})
    if row.deleted_at is not None:
        raise NotFound(f"Drift report '{report_id}' is deleted.", details={"report_id": report_id})
    parents: list[Parent] = []
    if row.deployment_id is not None:
        deployment = s.get(Deployment, row.deployment_id)
        name = deployment.name if deployment is not None else row.deployment_id
        parents.append((Deployment, name, deployment))
    for side in (row.reference or {}, row.current or {}):
        version_id = side.get("version_id")
        if version_id:
            version = s.get(DatasetVersion, version_id)
            parents.append((DatasetVersion, version_id, version))
            parents += _parents(s, version) if version is not None else []
    for kind, parent_id, parent in parents:
        if parent is None or parent.deleted_at is not None:
            parent_name, parent_key = _NAMES[kind]
            raise NotFound(
                f"Drift report '{report_id}' belongs to {parent_name} '{parent_id}', "
                "which is deleted.",
                hint=_restore_hint(kind, parent_id),
                details={"report_id": report_id, parent_key: parent_id},
            )
    return row
