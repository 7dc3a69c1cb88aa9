"""The Train and Evaluate stage pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
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


def _train_options() -> dict[str, Any]:
    """The choices offered in the Advanced section of the Train form."""
    return {
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
    dataset_id = dataset or (followed["dataset_id"] if followed else None)
    info = data_svc.get_dataset(services, owner, dataset_id) if dataset_id else None
    version = (info or {}).get("version") or {}
    return render(
        request,
        "train.html",
        user=user,
        stage=stage_by_slug("train"),
        datasets=data_svc.list_datasets(services, owner, limit=200)["items"],
        dataset=info,
        columns=[c["name"] for c in version.get("columns") or []],
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


def _comparison(
    services: Services, owner: Owner, versions: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Side-by-side holdout metrics of a model's versions (None with fewer than two)."""
    if len(versions) < 2:
        return None
    try:
        return registry.compare(services, owner, [v["id"] for v in versions])
    except NarrateError:
        # A version without an evaluation (e.g. cancelled before one was stored) can't be
        # compared; the page still shows everything else.
        return None


def _evaluation_context(
    services: Services, owner: Owner, model: dict[str, Any], mv_id: str
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
        "comparison": _comparison(services, owner, model["versions"]),
        "version_choices": _version_choices(services, owner),
    }


@router.get("/stages/evaluate")
def evaluate_page(
    request: Request,
    user: PageUser,
    services: Services,
    model: str | None = None,
    version: str | None = None,
) -> Response:
    """Holdout metrics, curves, slices, fairness, model card, re-evaluation and refit."""
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
    context = _evaluation_context(services, owner, detail, mv_id) if mv_id else {}
    return render(
        request,
        "evaluate.html",
        user=user,
        stage=stage,
        models=models,
        model=detail,
        **context,
    )
