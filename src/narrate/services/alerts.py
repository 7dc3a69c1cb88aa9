"""Alerts: evaluating rules, grouping what they find into alerts, and the alert history.

What each kind watches (on the rule's deployment):

- ``drift``: the newest ready drift report of the deployment is at ``level`` or above.
- ``error_rate``: in the last ``window_minutes``, the share of answered rows that carried a
  flag (a value outside the training range, an unknown category, a value that could not be
  read) is at or above ``threshold``. Refused requests are not logged, so not counted.
- ``latency_p95``: the 95th percentile of the served rows' latency in the window, in ms.
- ``job_failures``: batch and drift jobs of the deployment that failed since the rule was
  last checked (at least ``threshold`` of them).
- ``performance``: the live performance service reports degradation (when installed).

Traffic kinds count online answers (primary and canary; shadow and batch rows are left out),
and a window with fewer than :data:`MIN_ROWS` of them does not fire. When a rule fires and it has
an alert that is not resolved, that alert **groups** the occurrence (``count`` grows when
the evidence is new, ``last_at`` moves) instead of a second alert. A new alert is sent over
the rule's channels, unless the rule delivered within its ``cooldown_s`` (a flapping
condition is sent once per cool-down; the suppressed alert is sent at the first check after
the cool-down if it is still open). When the condition clears, the open alert is
**resolved automatically** (``resolved_by: "auto"``); acknowledging keeps it open.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, or_, select, update

from narrate.bootstrap import Container
from narrate.core.monitor.drift import LEVELS
from narrate.errors import NarrateError
from narrate.services.alert_delivery import dispatch
from narrate.services.alert_rules import visible_rule
from narrate.storage.sql.tables import (
    Alert,
    AlertRule,
    Deployment,
    DriftReport,
    Job,
    PredictionLogFile,
    utcnow,
)
from narrate.storage.sql.visibility import SYSTEM, Owner

__all__ = [
    "MIN_ROWS",
    "after_drift_report",
    "check_all",
    "check_rule",
    "evaluate",
]

log = logging.getLogger(__name__)
MIN_ROWS = 5
"""Fewest served rows in a window for ``error_rate`` and ``latency_p95`` to judge it."""
_JOB_KINDS = ("deployment.batch", "drift.report")
Finding = dict[str, Any]


# --- what each kind finds -----------------------------------------------------------------


def _drift(container: Container, rule: AlertRule) -> Finding:
    with container.db.session() as s:
        report = s.scalar(
            select(DriftReport)
            .where(
                DriftReport.deployment_id == rule.deployment_id,
                DriftReport.status == "ready",
                DriftReport.deleted_at.is_(None),
            )
            .order_by(DriftReport.created_at.desc(), DriftReport.id)
            .limit(1)
        )
        if report is None:
            return {"firing": False, "message": "No drift report yet.", "facts": {}}
        overall = (report.summary or {}).get("overall") or {}
        level = str(overall.get("level", "none"))
        facts = {
            "report_id": report.id,
            "level": level,
            "most_drifted": list(overall.get("most_drifted") or [])[:5],
            "share_drifted": overall.get("share_drifted"),
        }
    firing = LEVELS.index(level) >= LEVELS.index(rule.level or "medium")
    columns = ", ".join(str(c) for c in overall.get("most_drifted") or []) or "no single column"
    message = (
        f"Drift is {level} (rule: {rule.level} or above); moved most: {columns}."
        if firing
        else f"Drift is {level}, below {rule.level}."
    )
    return {"firing": firing, "message": message, "facts": facts, "evidence": report.id}


def _served(container: Container, deployment_id: str, since: datetime) -> pl.DataFrame:
    """Latency and flags of the rows the deployment answered online since ``since``."""
    with container.db.session() as s:
        blobs = list(
            s.scalars(
                select(PredictionLogFile.blob).where(
                    PredictionLogFile.deployment_id == deployment_id,
                    PredictionLogFile.last_at >= since,
                )
            )
        )
    columns = ["at", "arm", "latency_ms", "flags"]
    frames = [
        pl.read_parquet(io.BytesIO(container.blobs.get_bytes(b)), columns=columns) for b in blobs
    ]
    if not frames:
        return pl.DataFrame(schema={"latency_ms": pl.Float64, "flags": pl.List(pl.String)})
    frame = pl.concat(frames, how="vertical_relaxed")
    # Online answers only: shadow rows repeat the primary's, batch rows are not requests.
    return frame.filter((pl.col("at") >= since) & pl.col("arm").is_in(["primary", "canary"]))


def _traffic(container: Container, rule: AlertRule, now: datetime) -> Finding:
    since = now - timedelta(minutes=rule.window_minutes)
    frame = _served(container, rule.deployment_id, since)
    window = f"the last {rule.window_minutes} min"
    if frame.height < MIN_ROWS:
        few: dict[str, Any] = {"rows": frame.height, "window_minutes": rule.window_minutes}
        return {"firing": False, "message": f"Too few rows in {window} to judge.", "facts": few}
    threshold = float(rule.threshold or 0.0)
    if rule.kind == "error_rate":
        value = float(frame.select((pl.col("flags").list.len() > 0).mean()).item() or 0.0)
        what = f"{value:.1%} of {frame.height:,} rows in {window} were flagged"
        limit = f"{threshold:.1%}"
    else:
        value = float(frame.get_column("latency_ms").quantile(0.95) or 0.0)
        what = f"latency p95 was {value:,.1f} ms over {frame.height:,} rows in {window}"
        limit = f"{threshold:,.1f} ms"
    firing = value >= threshold
    facts = {
        "value": round(value, 6),
        "threshold": threshold,
        "rows": frame.height,
        "window_minutes": rule.window_minutes,
    }
    message = f"{what[0].upper()}{what[1:]} ({'at or above' if firing else 'below'} {limit})."
    return {"firing": firing, "message": message, "facts": facts, "evidence": now.isoformat()}


def _job_failures(container: Container, rule: AlertRule, now: datetime) -> Finding:
    since = rule.last_checked_at or rule.created_at
    with container.db.session() as s:
        failed = s.scalars(
            select(Job).where(
                Job.status == "failed",
                Job.kind.in_(_JOB_KINDS),
                Job.finished_at >= since,
                Job.finished_at < now,
            )
        ).all()
        ids = [j.id for j in failed if (j.params or {}).get("deployment_id") == rule.deployment_id]
    threshold = int(rule.threshold or 1)
    firing = len(ids) >= threshold
    message = (
        f"{len(ids)} batch or drift job(s) of the deployment failed since {since.isoformat()}."
    )
    facts = {"failed_jobs": ids[:20], "count": len(ids), "threshold": threshold}
    return {"firing": firing, "message": message, "facts": facts, "evidence": ",".join(ids)}


def _performance(container: Container, rule: AlertRule, now: datetime) -> Finding:
    """Live performance (``narrate.services.performance``) over windows of the rule's
    ``window_minutes``; the rule's ``threshold`` replaces ``NARRATE_PERFORMANCE_DROP``."""
    from importlib import import_module

    performance = import_module("narrate.services.performance")
    settings = container.settings
    if rule.threshold is not None:
        settings = settings.model_copy(update={"performance_drop": rule.threshold})
    with container.db.session() as s:
        deployment = s.get(Deployment, rule.deployment_id)
        name = deployment.name if deployment is not None else ""
    found = performance.deployment_performance(
        Container(settings, container.db, container.blobs),
        SYSTEM,
        name,
        window=f"{rule.window_minutes}m",
        now=now,
    )
    degradation = found.get("degradation") or {}
    complete = [w for w in found.get("windows") or [] if w.get("is_complete")]
    narrative = found.get("narrative")
    text = narrative.get("text") if isinstance(narrative, dict) else narrative
    facts = {
        "primary_metric": found.get("primary_metric"),
        "baseline": (found.get("baseline") or {}).get(str(found.get("primary_metric"))),
        "labelled": found.get("labelled"),
        "degradation": degradation,
    }
    return {
        "firing": bool(found.get("degraded")),
        "message": str(text or "Live performance checked."),
        "facts": facts,
        "evidence": str(complete[-1]["end"]) if complete else None,
    }


def evaluate(container: Container, rule: AlertRule, now: datetime) -> Finding:
    """Whether ``rule``'s condition holds now, with a sentence and the facts behind it."""
    if rule.kind == "drift":
        return _drift(container, rule)
    if rule.kind in {"error_rate", "latency_p95"}:
        return _traffic(container, rule, now)
    if rule.kind == "job_failures":
        return _job_failures(container, rule, now)
    return _performance(container, rule, now)


# --- grouping, cool-down, auto-resolve ----------------------------------------------------


def _open_alert(s: Any, rule_id: str) -> Alert | None:
    found: Alert | None = s.scalar(
        select(Alert)
        .where(Alert.rule_id == rule_id, Alert.status != "resolved")
        .order_by(Alert.first_at.desc())
        .limit(1)
    )
    return found


def _apply(container: Container, rule_id: str, finding: Finding, now: datetime) -> dict[str, Any]:
    """Record a finding: open, group or resolve an alert; say whether to deliver it."""
    with container.db.session() as s:
        rule = s.get(AlertRule, rule_id)
        assert rule is not None  # noqa: S101 - checked by the caller
        alert = _open_alert(s, rule_id)
        action = "none"
        if finding["firing"]:
            if alert is None:
                alert = Alert(
                    owner_id=rule.owner_id,
                    rule_id=rule.id,
                    deployment_id=rule.deployment_id,
                    kind=rule.kind,
                    severity=rule.severity,
                    first_at=now,
                    last_at=now,
                    message=finding["message"],
                    facts={**finding["facts"], "evidence": finding.get("evidence")},
                )
                s.add(alert)
                action = "opened"
            else:
                if finding.get("evidence") != (alert.facts or {}).get("evidence"):
                    alert.count += 1
                alert.last_at, alert.message = now, finding["message"]
                alert.facts = {**finding["facts"], "evidence": finding.get("evidence")}
                action = "grouped"
            cooled = rule.last_delivered_at is None or now - rule.last_delivered_at >= timedelta(
                seconds=rule.cooldown_s
            )
            deliver = alert.notified_at is None and cooled
            if deliver:
                alert.notified_at = rule.last_delivered_at = now
            elif alert.notified_at is None:
                action += ", held by the cool-down"
        else:
            deliver = False
            if alert is not None:
                alert.status, alert.resolved_at, alert.resolved_by = "resolved", now, "auto"
                action = "resolved"
        s.flush()
        return {"action": action, "alert_id": alert.id if alert else None, "deliver": deliver}


def _claim(container: Container, rule_id: str, now: datetime, min_gap_s: float) -> bool:
    """Mark the rule checked at ``now`` unless another process checked it within
    ``min_gap_s`` (so several server processes do not raise one alert twice)."""
    earlier = now - timedelta(seconds=min_gap_s)
    with container.db.session() as s:
        done = s.execute(
            update(AlertRule)
            .where(
                AlertRule.id == rule_id,
                or_(AlertRule.last_checked_at.is_(None), AlertRule.last_checked_at <= earlier),
            )
            .values(last_checked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(done, "rowcount", 0))


def _check(
    container: Container, rule: AlertRule, now: datetime, *, inline: bool, min_gap_s: float
) -> dict[str, Any]:
    finding = evaluate(container, rule, now)  # reads last_checked_at before the claim
    if not _claim(container, rule.id, now, min_gap_s):
        return {**finding, "action": "skipped", "alert_id": None, "delivering": False}
    outcome = _apply(container, rule.id, finding, now)
    if outcome["deliver"]:
        dispatch(container, outcome["alert_id"], inline=inline)
    return {
        "firing": finding["firing"],
        "message": finding["message"],
        "facts": finding["facts"],
        "action": outcome["action"],
        "alert_id": outcome["alert_id"],
        "delivering": outcome["deliver"],
    }


def check_rule(
    container: Container, owner: Owner, rule_id: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Evaluate one rule now (``POST /alert-rules/{id}/check``), even if disabled.

    Returns:
        ``firing``, ``message``, ``facts``, ``action`` (opened, grouped, resolved or none,
        possibly "held by the cool-down"), ``alert_id`` and ``delivering``.

    Raises:
        NotFound: see :func:`narrate.services.alert_rules.visible_rule`.
    """
    with container.db.session() as s:
        rule, _ = visible_rule(s, owner, rule_id)
        s.expunge(rule)
    return _check(container, rule, now or utcnow(), inline=False, min_gap_s=0)


def _live_rules(
    container: Container, deployment_id: str | None, kind: str | None
) -> list[AlertRule]:
    where: list[ColumnElement[bool]] = [
        AlertRule.enabled.is_(True),
        AlertRule.deleted_at.is_(None),
        Deployment.deleted_at.is_(None),
    ]
    if deployment_id is not None:
        where.append(AlertRule.deployment_id == deployment_id)
    if kind is not None:
        where.append(AlertRule.kind == kind)
    with container.db.session() as s:
        rules = list(
            s.scalars(
                select(AlertRule)
                .join(Deployment, Deployment.id == AlertRule.deployment_id)
                .where(*where)
            )
        )
        for rule in rules:
            s.expunge(rule)
    return rules


def check_all(container: Container, *, now: datetime | None = None) -> int:
    """Evaluate every enabled rule (the server's periodic check); one rule's failure is
    logged and does not stop the others.

    Returns:
        How many rules fired.
    """
    now = now or utcnow()
    fired = 0
    for rule in _live_rules(container, None, None):
        try:
            gap = container.settings.alert_check_s / 2
            fired += bool(_check(container, rule, now, inline=False, min_gap_s=gap)["firing"])
        except (NarrateError, OSError, pl.exceptions.PolarsError) as exc:
            log.warning("alert rule %s could not be checked: %s", rule.id, exc)
    return fired


def after_drift_report(container: Container, deployment_id: str | None) -> None:
    """Evaluate the deployment's drift rules right after a report is stored (inside the
    drift job; deliveries run in the job's process). Never raises: the report is stored."""
    if deployment_id is None:
        return
    try:
        for rule in _live_rules(container, deployment_id, "drift"):
            _check(container, rule, utcnow(), inline=True, min_gap_s=0)
    except Exception:  # the report is already stored; an alert problem must not fail it
        log.exception("drift alert rules of deployment %s could not be checked", deployment_id)
