"""The Train and Evaluate stage pages."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from narrate.errors import NarrateError, NotFound
from narrate.services import datasets as data_svc
from narrate.services import models as registry
from narrate.services.auth import Principal
from narrate.services.datasets import Owner
from narrate.services.training import (
    DEFAULT_METRIC_BY_TASK as DEFAULT_METRICS,
)
from narrate.services.training import (
    FAMILIES,
    IMBALANCE_STRATEGIES,
)
from narrate.services.training import (
    METRIC_CHOICES as METRICS,
)
from narrate.web.deps import Services, get_principal
from narrate.web.pages import model_charts
from narrate.web.pages.routes import render
from narrate.web.pages.stages import stage_by_slug

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PageUser = Annotated[Principal, Depends(get_principal)]

_LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae", "mape"}
_MAX_DATASETS_FOR_VERSIONS = 50


def _headline(model: dict[str, Any]) -> dict[str, Any] | None:
    """The model's own metric (or its first one) as ``{"name", "value"}``."""
    metrics = model.get("metrics") or {}
    name = model.get("metric") or DEFAULT_METRICS.get(model.get("task") or "", "")
    if name not in metrics:
        name = next(iter(metrics), "")
    entry = metrics.get(name)
    if not entry:
        return None
    return {"name": name, "value": entry.get("value")}


def _model_rows(services: Services, owner: Owner) -> list[dict[str, Any]]:
    """The registry list with each model's headline metric."""
    return [{**m, "headline": _headline(m)} for m in registry.list_models(services, owner)]


#: Validation schemes of the Train form (``TrainConfig.cv``), with what each means.
_VALIDATION_SCHEMES = {
    "auto": "Automatic: group or time-ordered when such a column is picked, "
    "else stratified k-fold (holdout for large data)",
    "kfold": "k-fold cross-validation (stratified for classes)",
    "holdout": "One validation split (fastest)",
    "group": "Group k-fold: rows of a group never straddle a split",
    "time": "Time-ordered: validate on later rows than those trained on",
}
#: Decision-threshold objectives (binary targets; ``TrainConfig.threshold.objective``).
_THRESHOLD_OBJECTIVES = {
    "f1": "Maximise F1 (default)",
    "cost": "Lowest cost, from a cost matrix",
    "precision": "Reach a precision (best recall)",
    "recall": "Reach a recall (best precision)",
    "none": "Keep 0.5",
}


def _time_like(column: dict[str, Any]) -> bool:
    dtype = str(column.get("dtype") or "")
    return column.get("kind") == "datetime" or dtype.startswith(("Date", "Datetime"))


def _train_options() -> dict[str, Any]:
    """The choices offered in the Advanced section of the Train form."""
    return {
        "validation": _VALIDATION_SCHEMES,
        "threshold_objectives": _THRESHOLD_OBJECTIVES,
        "families": list(FAMILIES),
        "imbalance": list(IMBALANCE_STRATEGIES),
        "metrics": {task: list(names) for task, names in METRICS.items()},
        "default_metrics": DEFAULT_METRICS,
    }


@router.get("/stages/train")
def train_page(
    request: Request,
    user: PageUser,
    services: Services,
    dataset: str | None = None,
    model: str | None = None,
) -> Response:
    """Training form, live progress and leaderboard, and the list of trained models."""
    owner = Owner.of(user)
    followed = registry.get_model(services, owner, model) if model else None
    info = data_svc.get_dataset(services, owner, dataset) if dataset else None
    if info is None and followed:
        # A model stays visible after its training dataset is deleted; the form is then
        # shown without a dataset rather than refusing the page.
        with contextlib.suppress(NotFound):
            info = data_svc.get_dataset(services, owner, followed["dataset_id"])
    version = (info or {}).get("version") or {}
    column_records = version.get("columns") or []
    return render(
        request,
        "train.html",
        user=user,
        stage=stage_by_slug("train"),
        datasets=data_svc.list_datasets(services, owner, limit=200)["items"],
        dataset=info,
        columns=[c["name"] for c in column_records],
        # Date/time columns first: the natural choices for a time-ordered validation.
        time_columns=[c["name"] for c in column_records if _time_like(c)]
        + [c["name"] for c in column_records if not _time_like(c)],
        followed=followed,
        models=_model_rows(services, owner),
        options=_train_options(),
    )


def _metric_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Each holdout metric with its interval, the naive baseline and the lift over it."""
    baseline = evaluation.get("baseline") or {}
    lift = evaluation.get("lift") or {}
    rows = []
    for name, entry in (evaluation.get("metrics") or {}).items():
        rows.append(
            {
                "name": name,
                "value": entry.get("value"),
                "ci_low": entry.get("ci_low"),
                "ci_high": entry.get("ci_high"),
                "baseline": baseline.get(name),
                "lift": lift.get(name),
                "lower_is_better": name in _LOWER_IS_BETTER,
                "is_primary": name == evaluation.get("primary_metric"),
            }
        )
    return rows


def _version_choices(services: Services, owner: Owner) -> list[dict[str, Any]]:
    """The caller's datasets with their versions, for the evaluate-on-another-version form."""
    groups = []
    for d in data_svc.list_datasets(services, owner, limit=_MAX_DATASETS_FOR_VERSIONS)["items"]:
        versions = data_svc.list_versions(services, owner, d["id"])
        groups.append({"dataset": d, "versions": versions[::-1]})
    return groups


_MAX_COMPARED = 8


def _compare_choices(
    models: list[dict[str, Any]], model: dict[str, Any], mv_id: str
) -> list[dict[str, Any]]:
    """Versions the shown one can be compared with: this model's other versions, then the
    current version of each other model trained on the same target for the same task."""
    own = [
        {"id": v["id"], "label": f"{model['name']} v{v['number']} · {_family(v['family'])}"}
        for v in reversed(model["versions"])
        if v["id"] != mv_id
    ]
    others = [
        {"id": m["current_version_id"], "label": f"{m['name']} · {_family(m['family'])}"}
        for m in models
        if m["id"] != model["id"]
        and m.get("current_version_id")
        and m["target"] == model["target"]
        and m["task"] == model["task"]
    ]
    return own + others


def _deployment_name(model_name: str) -> str:
    """A deployment name suggested for a model: its name in lower case, other characters
    as dashes (deployment names are part of a URL: 1-63 of ``a-z``, ``0-9`` and ``-``)."""
    name = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")[:63].rstrip("-")
    return name or "model"


def _family(family: str | None) -> str:
    return (family or "model").replace("_", " ")


def _best_by_column(comparison: dict[str, Any]) -> dict[str, int]:
    """Metric → column index of the best value (names can repeat, indices can't)."""
    best: dict[str, int] = {}
    for metric, entries in comparison["metrics"].items():
        scored = [(i, e["value"]) for i, e in enumerate(entries) if e and e["value"] is not None]
        if scored:
            pick = (min if metric in _LOWER_IS_BETTER else max)(scored, key=lambda t: t[1])
            best[metric] = pick[0]
    return best


def _comparison(
    services: Services,
    owner: Owner,
    model: dict[str, Any],
    mv_id: str,
    chosen: list[str],
    models: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Side-by-side holdout metrics (and overlaid ROC curves for binary models).

    ``chosen`` are model version ids picked on the page; without any, the model's own
    versions are compared (None with fewer than two).
    """
    if chosen:
        ids = list(dict.fromkeys([mv_id, *chosen]))[:_MAX_COMPARED]
        explicit = True
    else:
        ids = [v["id"] for v in model["versions"]][-_MAX_COMPARED:]
        explicit = False
    if len(ids) < 2:
        return None
    try:
        table = registry.compare(services, owner, ids)
        versions = [registry.get_model_version(services, owner, i) for i in ids]
    except NarrateError as exc:
        # A version without an evaluation (e.g. cancelled before one was stored) or of
        # another task can't be compared; say so when the user asked, else stay quiet.
        return {"error": exc.message} if explicit else None
    names = {m["id"]: m["name"] for m in models}
    labels = [
        f"{names.get(v['model_id'], 'model')} v{v['number']} · {_family(v['family'])}"
        for v in versions
    ]
    roc = model_charts.comparison_roc(
        [(label, v["evaluation"] or {}) for label, v in zip(labels, versions, strict=True)]
    )
    return {
        **table,
        "models": labels,
        "model_version_ids": ids,
        "best_column": _best_by_column(table),
        "is_explicit": explicit,
        "roc": roc,
    }


def _evaluation_context(
    services: Services,
    owner: Owner,
    model: dict[str, Any],
    mv_id: str,
    compare: list[str],
    models: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything the Evaluate page shows for one model version."""
    mv = registry.get_model_version(services, owner, mv_id)
    evaluation = mv.get("evaluation") or {}
    others = [
        e for e in registry.list_evaluations(services, owner, mv_id) if e["kind"] != "holdout"
    ]
    return {
        "mv": mv,
        "evaluation": evaluation,
        "metric_rows": _metric_rows(evaluation),
        "charts": model_charts.evaluation_charts(evaluation),
        "external": others,
        "comparison": _comparison(services, owner, model, mv_id, compare, models),
        "compare_choices": _compare_choices(models, model, mv_id),
        "compare_chosen": set(compare),
        "lower_is_better": sorted(_LOWER_IS_BETTER),
        "version_choices": _version_choices(services, owner),
        "deploy_name": _deployment_name(model["name"]),
    }


@router.get("/stages/evaluate")
def evaluate_page(
    request: Request,
    user: PageUser,
    services: Services,
    model: str | None = None,
    version: str | None = None,
    compare: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Holdout metrics, curves, slices, fairness, model card, re-evaluation, refit and a
    side-by-side comparison with the model versions named by ``compare``."""
    owner = Owner.of(user)
    stage = stage_by_slug("evaluate")
    models = _model_rows(services, owner)
    if model is None:
        return render(request, "evaluate.html", user=user, stage=stage, models=models)
    detail = registry.get_model(services, owner, model)
    mv_id = version or detail["current_version_id"]
    if version and version not in {v["id"] for v in detail["versions"]}:
        raise NotFound(
            f"Model '{model}' has no version '{version}'.", details={"version_id": version}
        )
    chosen = [c for c in compare or [] if c]
    context = _evaluation_context(services, owner, detail, mv_id, chosen, models) if mv_id else {}
    return render(
        request,
        "evaluate.html",
        user=user,
        stage=stage,
        models=models,
        model=detail,
        **context,
    )
