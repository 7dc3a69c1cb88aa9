"""What an "ask" prompt may contain: stored summaries as numbered facts, never raw rows.

A dataset is described by its stored profile (column names, kinds, missing shares and
summary statistics, the target's classes, quality warnings and the data narrative), with
personal-data columns masked; a model by its holdout metrics against the naive baseline,
its importances in raw columns and its narrative. Each fact gets an id (``F1``, ``F2``
...) that the answer must cite. Raw rows are added only when an admin set
``NARRATE_LLM_ALLOW_ROWS`` (and then a handful, personal-data columns masked).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from narrate.bootstrap import Container
from narrate.core.data.pii import mask_profile
from narrate.errors import NarrateError
from narrate.services.datasets import Owner, cached_frame, get_version, profile_bytes
from narrate.services.explain import version_importances
from narrate.services.models import get_current_evaluation
from narrate.storage.sql.visibility import visible_dataset, visible_model_version

__all__ = ["MAX_COLUMNS", "SAMPLE_ROWS", "Context", "dataset_context", "model_context"]

MAX_COLUMNS = 25
"""Columns described in a prompt: those the question names first, then the profile's
order; the rest are only counted. About 8 facts of about 12 tokens each per column keep
a prompt under about 3,000 tokens (bench/llm.py), within a small local model's context."""
SAMPLE_ROWS = 5
_MAX_IMPORTANCES = 15
_MAX_WARNINGS = 10
_NUMERIC_STATS = ("mean", "std", "min", "max")


def _round(value: float) -> float | int:
    """Whole numbers from 1,000 up, else four significant digits: what a person would say,
    and what the prompt shows."""
    if float(value).is_integer() or abs(value) >= 1000:
        return round(value)
    return float(f"{value:.4g}")


@dataclass
class Context:
    """The facts and narratives of one dataset or model, and what kinds they are."""

    facts: list[dict[str, Any]] = field(default_factory=list)
    narratives: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns_total: int = 0

    def add(self, source: str, name: str, value: Any) -> str:
        """Add one fact (numbers rounded, NaN dropped); returns its id ('' when dropped)."""
        if isinstance(value, float):
            if not math.isfinite(value):
                return ""
            value = _round(value)
        fact_id = f"F{len(self.facts) + 1}"
        self.facts.append({"id": fact_id, "source": source, "name": name, "value": value})
        return fact_id

    def kind(self, name: str) -> None:
        if name not in self.kinds:
            self.kinds.append(name)


def _column_facts(ctx: Context, column: dict[str, Any]) -> None:
    name = str(column["name"])
    source = f"profile.columns.{name}"
    ctx.add(source, f"{name}: kind", str(column.get("kind")))
    ctx.add(source, f"{name}: share missing", float(column.get("missing_share") or 0.0))
    if column.get("distinct") is not None:
        ctx.add(source, f"{name}: distinct values", int(column["distinct"]))
    for stat in _NUMERIC_STATS:
        if isinstance(column.get(stat), int | float):
            ctx.add(source, f"{name}: {stat}", float(column[stat]))
    median = (column.get("quantiles") or {}).get("50")
    if isinstance(median, int | float):
        ctx.add(source, f"{name}: median", float(median))
    if column.get("kind") in ("categorical", "boolean") and (column.get("distinct") or 0) <= 20:
        for top in (column.get("top_values") or [])[:3]:
            ctx.add(source, f"{name}: share of '{top['value']}'", float(top["share"]))


def _chosen_columns(columns: list[dict[str, Any]], question: str) -> list[dict[str, Any]]:
    """Up to MAX_COLUMNS columns, those named in the question first (case-insensitive)."""
    asked = question.lower()
    named = [c for c in columns if str(c["name"]).lower() in asked]
    rest = [c for c in columns if c not in named]
    return (named + rest)[:MAX_COLUMNS]


def _profile_facts(ctx: Context, profile: dict[str, Any], question: str) -> None:
    table = profile.get("table", {})
    for key in ("rows", "columns", "duplicate_rows"):
        if key in table:
            ctx.add("profile.table", f"table {key.replace('_', ' ')}", int(table[key]))
    target = profile.get("target") or {}
    if target.get("column"):
        ctx.add("profile.target", "target column", str(target["column"]))
        ctx.add("profile.target", "problem type", str(target.get("problem_type")))
        for item in (target.get("classes") or [])[:10]:
            ctx.add("profile.target", f"target class '{item['value']}' share", item["share"])
    columns = list(profile.get("columns", {}).values())
    ctx.columns_total = len(columns)
    for column in _chosen_columns(columns, question):
        _column_facts(ctx, column)
    for warning in (profile.get("warnings") or [])[:_MAX_WARNINGS]:
        ctx.add("profile.warnings", f"warning {warning['code']}", str(warning["message"]))


def dataset_context(
    container: Container, owner: Owner, dataset_id: str, question: str = ""
) -> Context:
    """The facts of a dataset's current version (visibility checked first); columns the
    question names are described first.

    Raises:
        NotFound: No such dataset for this caller, or it has no version.
    """
    with container.db.session() as s:
        dataset = visible_dataset(s, owner, dataset_id)
        current = dataset.current_version_id or ""
    version = get_version(container, owner, current)
    profile: dict[str, Any] = json.loads(profile_bytes(container, version))
    if profile.get("pii"):
        profile = mask_profile(profile)
    ctx = Context()
    _profile_facts(ctx, profile, question)
    ctx.kind("profile_summary")
    if profile.get("narrative"):
        fact_id = ctx.add("profile.narrative", "data narrative", str(profile["narrative"]))
        ctx.narratives.append({"id": fact_id, "text": profile["narrative"]})
        ctx.kind("narratives")
    if container.settings.llm_allow_rows:
        ctx.rows = _sample_rows(container, version, profile)
        ctx.kind("rows")
    return ctx


def _sample_rows(container: Container, version: Any, profile: dict[str, Any]) -> list[Any]:
    """A few raw rows (only when allowed), personal-data columns masked."""
    masked = {str(item["column"]) for item in profile.get("pii") or []}
    frame = cached_frame(container, version).head(SAMPLE_ROWS)
    rows = frame.to_dicts()
    for row in rows:
        for name in masked & set(row):
            row[name] = "(personal data, masked)"
    cleaned: list[Any] = json.loads(json.dumps(rows, default=str))  # dates as text
    return cleaned


def _importances(container: Container, owner: Owner, mv_id: str) -> list[dict[str, Any]]:
    try:
        body = version_importances(container, owner, mv_id)
    except NarrateError:  # the training rows are gone: answer without importances
        return []
    return list(body.get("columns") or [])[:_MAX_IMPORTANCES]


def model_context(
    container: Container,
    owner: Owner,
    model_id: str,
    question: str = "",  # noqa: ARG001 - the same signature as dataset_context
) -> Context:
    """The facts of a model's current version: metrics, baseline, importances, narrative.

    Raises:
        NotFound: No such model for this caller, or no evaluated version yet.
    """
    evaluation = get_current_evaluation(container, owner, model_id)
    mv_id = str(evaluation["model_version_id"])
    with container.db.session() as s:
        mv = visible_model_version(s, owner, mv_id)
        narrative = mv.narrative or evaluation.get("narrative")
    ctx = Context()
    ctx.add("evaluation", "task", str(evaluation.get("task")))
    ctx.add("evaluation", "target", str(evaluation.get("target")))
    ctx.add("evaluation", "holdout rows", int(evaluation.get("n_rows") or 0))
    ctx.add("evaluation", "primary metric", str(evaluation.get("primary_metric")))
    for name, entry in (evaluation.get("metrics") or {}).items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, int | float):
            ctx.add("evaluation.metrics", f"{name} (holdout)", float(value))
    for name, value in (evaluation.get("baseline") or {}).items():
        if isinstance(value, int | float):
            ctx.add("evaluation.baseline", f"{name} of the naive baseline", float(value))
    ctx.kind("evaluation_metrics")
    importances = _importances(container, owner, mv_id)
    for item in importances:
        ctx.add("importances", f"importance of {item['column']}", float(item["importance"]))
    if importances:
        ctx.kind("importances")
    if narrative:
        fact_id = ctx.add("model.narrative", "model narrative", str(narrative))
        ctx.narratives.append({"id": fact_id, "text": narrative})
        ctx.kind("narratives")
    return ctx
