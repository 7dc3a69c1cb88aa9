"""The retraining loop of a deployment: start a run, read runs, promote or reject.

A run trains a challenger on the newest labelled data and scores it against the deployed
champion on the same recent labelled window (the job is in
:mod:`narrate.services.retrain_job`). By default a person decides; promoting updates the
deployment to the challenger as a new revision with the reason ``retrain run <id>``, so a
rollback goes back to the champion in one step.

Triggers: a click or the API (``manual``), a schedule (``schedule``), or an alert of kind
``drift`` or ``performance`` (:func:`retrain_on_alert`; the trigger is the alert's kind
and ``trigger_ref`` its id).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import func, select

from narrate.bootstrap import Container
from narrate.errors import InvalidInput, InvalidState, NotFound
from narrate.jobs.records import create_job
from narrate.services.deployments import update_deployment
from narrate.services.retrain_data import count_labelled
from narrate.services.retrain_job import RETRAIN_ENTRY
from narrate.storage.sql.tables import Alert, Deployment, RetrainRun, User, utcnow
from narrate.storage.sql.visibility import Owner, visible_deployment

__all__ = [
    "DECISIONS",
    "MAX_BUDGET_S",
    "MAX_MARGIN",
    "POLICIES",
    "TRIGGERS",
    "check_alert",
    "decide",
    "get_run",
    "list_runs",
    "retrain_on_alert",
    "run_dict",
    "start_retrain",
]

TRIGGERS = ("drift", "performance", "schedule", "manual")
POLICIES = ("refit", "search")
DECISIONS = ("promote", "reject")
ACTIVE = ("queued", "running")
MAX_MARGIN = 1000.0
MAX_BUDGET_S = 24 * 3600
_REASON_MAX = 500
Decision = Literal["promote", "reject"]


def _check(policy: str, trigger: str, margin: float, budget_s: float | None) -> None:
    if policy not in POLICIES:
        raise InvalidInput(
            f"policy must be one of {', '.join(POLICIES)}; got '{policy}'.",
            details={"parameter": "policy", "allowed": list(POLICIES)},
        )
    if trigger not in TRIGGERS:
        raise InvalidInput(
            f"trigger must be one of {', '.join(TRIGGERS)}; got '{trigger}'.",
            details={"parameter": "trigger", "allowed": list(TRIGGERS)},
        )
    if not 0 <= margin <= MAX_MARGIN:
        raise InvalidInput(
            f"margin must be between 0 and {MAX_MARGIN:g}; got {margin}.",
            details={"parameter": "margin"},
        )
    if budget_s is not None and not 1 <= budget_s <= MAX_BUDGET_S:
        raise InvalidInput(
            f"budget_s must be between 1 and {MAX_BUDGET_S:,} seconds; got {budget_s}.",
            details={"parameter": "budget_s"},
        )


def start_retrain(
    container: Container,
    owner: Owner,
    deployment_name: str,
    trigger: str = "manual",
    *,
    trigger_ref: str | None = None,
    policy: str = "refit",
    auto_promote: bool = False,
    margin: float = 0.01,
    budget_s: float | None = None,
) -> dict[str, Any]:
    """Queue a retrain run on a deployment the caller may see.

    Args:
        container: Services.
        owner: The caller (the run's owner is the deployment's owner).
        deployment_name: The deployment.
        trigger: ``manual``, ``schedule``, ``drift`` or ``performance``.
        trigger_ref: The alert or schedule behind the run.
        policy: ``refit`` (the deployed pipeline, newer data) or ``search`` (AutoML again).
        auto_promote: Decide at once: promote when the challenger wins by ``margin``.
        margin: Absolute margin on the primary metric (direction-aware).
        budget_s: Time budget of a ``search`` (default: the champion's).

    Returns:
        The ``JobStarted`` body; ``created_id`` is the run's id.

    Raises:
        NotFound: no such deployment for the caller.
        InvalidInput: a bad policy, trigger, margin or budget.
        InvalidState: ``too_few_labels`` (fewer labelled predictions than the evaluation
            window needs) or ``retrain_running`` (a run of the deployment is under way).
    """
    _check(policy, trigger, margin, budget_s)
    with container.db.session() as s:
        d = visible_deployment(s, owner, deployment_name)
        deployment_id, champion, run_owner = d.id, d.model_version_id, d.owner_id
        active = s.scalar(
            select(RetrainRun.id).where(
                RetrainRun.deployment_id == d.id, RetrainRun.status.in_(ACTIVE)
            )
        )
    if active is not None:
        raise InvalidState(
            f"Retrain run {active} of deployment '{deployment_name}' is still under way.",
            code="retrain_running",
            hint=f"Wait for it: GET /api/v1/retrain-runs/{active}.",
            details={"deployment": deployment_name, "retrain_run_id": active},
        )
    needed = container.settings.retrain_min_eval_rows
    have = count_labelled(container, deployment_id)
    if have < needed:
        raise InvalidState(
            f"Deployment '{deployment_name}' has {have:,} logged predictions with an actual; "
            f"retraining needs at least {needed:,} (the evaluation window).",
            code="too_few_labels",
            hint=f"Post more actuals: POST /api/v1/deployments/{deployment_name}/actuals.",
            details={"deployment": deployment_name, "labelled": have, "needed": needed},
        )
    options = {"budget_s": budget_s} if budget_s is not None else {}
    with container.db.session() as s:
        run = RetrainRun(
            owner_id=run_owner,
            deployment_id=deployment_id,
            trigger=trigger,
            trigger_ref=trigger_ref,
            policy=policy,
            options=options,
            champion_version_id=champion,
            margin=float(margin),
            auto_promote=bool(auto_promote),
        )
        s.add(run)
        s.flush()
        run_id = run.id
    job_id = create_job(
        container.db,
        owner.user_id,
        "deployment.retrain",
        {"run_id": run_id, "deployment": deployment_name, "is_admin": owner.is_admin},
    )
    with container.db.session() as s:
        row = s.get(RetrainRun, run_id)
        assert row is not None  # noqa: S101 - written above
        row.job_id = job_id
    if container.executor is None:
        raise InvalidInput("No job executor is running.", code="no_executor")
    container.executor.submit(job_id, RETRAIN_ENTRY)
    return {"job_id": job_id, "status_url": f"/api/v1/jobs/{job_id}", "created_id": run_id}


def retrain_on_alert(container: Container, alert_id: str, **options: Any) -> dict[str, Any]:
    """Start a run for an alert of kind ``drift`` or ``performance`` (trigger = the kind,
    ``trigger_ref`` = the alert), as the alert's owner.

    Raises:
        NotFound: no such alert.
        InvalidInput: ``not_a_retrain_trigger`` for an alert of another kind.
        InvalidState: see :func:`start_retrain`.
    """
    with container.db.session() as s:
        alert = s.get(Alert, alert_id)
        d = s.get(Deployment, alert.deployment_id) if alert is not None else None
        if alert is None or d is None:
            raise NotFound(f"No alert with id '{alert_id}'.", details={"alert_id": alert_id})
        kind, name, owner = alert.kind, d.name, Owner(alert.owner_id)
    if kind not in ("drift", "performance"):
        raise InvalidInput(
            f"Alert {alert_id} is a '{kind}' alert; only drift and performance alerts start a "
            "retrain run.",
            code="not_a_retrain_trigger",
            details={"parameter": "alert_id", "kind": kind},
        )
    return start_retrain(container, owner, name, kind, trigger_ref=alert_id, **options)


def check_alert(container: Container, owner: Owner, alert_id: str, deployment_name: str) -> None:
    """Check that the caller may see the alert and that it is on ``deployment_name``.

    Raises:
        NotFound: no such deployment for the caller.
        InvalidInput: ``unknown_alert`` or ``alert_of_other_deployment``, naming
            ``alert_id``.
    """
    with container.db.session() as s:
        visible_deployment(s, owner, deployment_name)  # 404 first, like every route
        alert = s.get(Alert, alert_id)
        if alert is None or not (owner.is_admin or alert.owner_id == owner.user_id):
            raise InvalidInput(
                f"No alert with id '{alert_id}' that you may see.",
                code="unknown_alert",
                details={"parameter": "alert_id"},
            )
        d = s.get(Deployment, alert.deployment_id)
        if d is None or d.name != deployment_name:
            raise InvalidInput(
                f"Alert {alert_id} is on deployment '{d.name if d else '?'}', not "
                f"'{deployment_name}'.",
                code="alert_of_other_deployment",
                details={"parameter": "alert_id"},
            )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_dict(run: RetrainRun, deployment: str) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "retrain_run_id": run.id,
        "deployment": deployment,
        "status": run.status,
        "trigger": run.trigger,
        "trigger_ref": run.trigger_ref,
        "policy": run.policy,
        "budget_s": (run.options or {}).get("budget_s"),
        "auto_promote": run.auto_promote,
        "margin": run.margin,
        "job_id": run.job_id,
        "champion_version_id": run.champion_version_id,
        "challenger_version_id": run.challenger_version_id,
        "dataset_version_id": run.dataset_version_id,
        "window": {"start": _iso(run.window_start), "end": _iso(run.window_end)},
        "n_train_rows": run.n_train_rows,
        "n_eval_rows": run.n_eval_rows,
        "metric": run.metric,
        "metrics": run.metrics or None,
        "decision": run.decision,
        "decided_by": run.decided_by,
        "decided_at": run.decided_at,
        "reason": run.reason,
        "narrative": run.narrative or None,
        "error": run.error,
        "created_at": run.created_at,
        "owner_id": run.owner_id,
    }


def _visible_run(s: Any, owner: Owner, run_id: str) -> tuple[RetrainRun, Deployment]:
    run = s.get(RetrainRun, run_id) if run_id else None
    if (
        run is None
        or run.deleted_at is not None
        or not (owner.is_admin or run.owner_id == owner.user_id)
    ):
        raise NotFound(f"No retrain run with id '{run_id}'.", details={"retrain_run_id": run_id})
    d = s.get(Deployment, run.deployment_id)
    if d is None or d.deleted_at is not None:
        name = d.name if d is not None else run.deployment_id
        raise NotFound(
            f"Retrain run '{run_id}' belongs to deployment '{name}', which is undeployed.",
            hint=f"Restore it first: POST /api/v1/deployments/{name}/restore.",
            details={"retrain_run_id": run_id, "deployment": name},
        )
    return run, d


def get_run(container: Container, owner: Owner, run_id: str) -> dict[str, Any]:
    """One run the caller may see (its owner's, or any for an admin).

    Raises:
        NotFound: no such run for the caller, or its deployment is undeployed.
    """
    with container.db.session() as s:
        run, d = _visible_run(s, owner, run_id)
        return run_dict(run, d.name)


def list_runs(
    container: Container, owner: Owner, deployment_name: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A deployment's runs, newest first, and how many there are.

    Raises:
        NotFound: no such deployment for the caller.
    """
    with container.db.session() as s:
        d = visible_deployment(s, owner, deployment_name)
        where = (RetrainRun.deployment_id == d.id, RetrainRun.deleted_at.is_(None))
        total = int(s.scalar(select(func.count()).select_from(RetrainRun).where(*where)) or 0)
        rows = s.scalars(
            select(RetrainRun)
            .where(*where)
            .order_by(RetrainRun.created_at.desc(), RetrainRun.id)
            .offset(offset)
            .limit(limit)
        )
        return [run_dict(r, d.name) for r in rows], total


def decide(
    container: Container,
    owner: Owner,
    run_id: str,
    decision: str,
    *,
    decided_by: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Promote or reject a run's challenger.

    Promoting updates the deployment to the challenger (a new revision whose reason names
    the run; roll back to return to the champion). Rejecting keeps the champion; the
    challenger stays in the registry as a model version.

    Raises:
        NotFound: no such run for the caller.
        InvalidInput: a bad decision or a reason over 500 characters.
        InvalidState: ``retrain_not_awaiting`` unless the run awaits a decision.
    """
    if decision not in DECISIONS:
        raise InvalidInput(
            f"decision must be one of {', '.join(DECISIONS)}; got '{decision}'.",
            details={"parameter": "decision"},
        )
    if reason is not None and len(reason) > _REASON_MAX:
        raise InvalidInput(
            f"reason is {len(reason)} characters long; at most {_REASON_MAX} are allowed.",
            details={"parameter": "reason", "max": _REASON_MAX},
        )
    with container.db.session() as s:
        run, d = _visible_run(s, owner, run_id)
        if run.status != "awaiting_decision":
            raise InvalidState(
                f"Retrain run {run_id} is {run.status}; only a run awaiting a decision can be "
                "promoted or rejected.",
                code="retrain_not_awaiting",
                details={"retrain_run_id": run_id, "status": run.status},
            )
        # Claim the decision first so two clicks cannot both promote.
        run.status = "promoting" if decision == "promote" else "rejected"
        name, challenger = d.name, run.challenger_version_id
    if decision == "promote":
        try:
            update_deployment(
                container,
                owner,
                name,
                model_version_id=challenger,
                reason=f"retrain run {run_id}" + (f": {reason}" if reason else ""),
            )
        except BaseException:
            with container.db.session() as s:
                row = s.get(RetrainRun, run_id)
                if row is not None:
                    row.status = "awaiting_decision"
            raise
    return _record(container, run_id, decision, decided_by or owner.user_id, reason)


def _record(
    container: Container, run_id: str, decision: str, decided_by: str, reason: str | None
) -> dict[str, Any]:
    from narrate.storage.sql.tables import Model, ModelVersion

    with container.db.session() as s:
        run = s.get(RetrainRun, run_id)
        d = s.get(Deployment, run.deployment_id) if run is not None else None
        assert run is not None  # noqa: S101 - claimed above
        assert d is not None  # noqa: S101 - claimed above
        run.status = "promoted" if decision == "promote" else "rejected"
        run.decision, run.decided_by, run.decided_at = decision, decided_by, utcnow()
        run.reason = reason
        if decision == "promote" and run.challenger_version_id:
            mv = s.get(ModelVersion, run.challenger_version_id)
            model = s.get(Model, mv.model_id) if mv is not None else None
            if model is not None:
                model.current_version_id = mv.id if mv is not None else model.current_version_id
        if decided_by != "auto" and run.narrative:
            # The question the narrative asked now has its answer, in the same record.
            user = s.get(User, decided_by)
            who = user.username if user is not None else decided_by
            verb = "Promoted" if decision == "promote" else "Rejected"
            why = f": {reason}" if reason else ""
            text = f"{run.narrative.get('text', '')} {verb} by {who}{why}."
            run.narrative = {**run.narrative, "text": text}
        s.flush()
        return run_dict(run, d.name)
