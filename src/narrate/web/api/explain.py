"""Interpret: reasons for single predictions (of a model version or a deployment) and a
model version's importances, in the user's raw input columns."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from narrate.errors import InvalidInput
from narrate.services import explain as svc
from narrate.services.datasets import Owner
from narrate.web.api.contract import errors
from narrate.web.api.deployments import _predict_access
from narrate.web.deps import CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["interpret"])

Scale = Literal["log_odds", "margin", "probability", "value", "log1p_value"]


class ExplainIn(BaseModel):
    """Rows to explain: 1 to 100 objects of raw column values, as in the uploaded file."""

    rows: list[dict[str, Any]] = Field(min_length=1, max_length=svc.EXPLAIN_ROWS)


class FactOut(BaseModel):
    """One number (or value) a narrative uses, and where it comes from."""

    name: str
    value: float | int | str | None
    source: str


class NarrativeOut(BaseModel):
    """One plain sentence and the facts behind every number in it."""

    text: str
    facts: list[FactOut]


class NaturalOut(BaseModel):
    """The same reasons on the probability (classifiers) or the target's value scale."""

    scale: Literal["probability", "value"]
    output: float
    base_value: float
    contributions: dict[str, float]


class ExplanationOut(BaseModel):
    """One row's reasons: ``base_value + sum(contributions) == output`` on ``scale``."""

    prediction: Any = Field(description="The class (after the tuned threshold) or value.")
    explained_class: str | None = Field(
        description="The class whose score is explained (the predicted one); None for regression."
    )
    output: float = Field(description="The explained value on the answer's scale.")
    base_value: float = Field(description="The value before any column is known.")
    contributions: dict[str, float] = Field(description="Raw column -> signed contribution.")
    parts: dict[str, dict[str, float]] = Field(
        description="Raw column -> prepared feature (one-hot dummy, date part, missing "
        "indicator, recipe column) -> contribution; each column's parts sum to it."
    )
    natural: NaturalOut
    narrative: NarrativeOut


class ExplainOut(BaseModel):
    """Explanations, in the order of the rows sent."""

    model_version_id: str
    scale: Scale = Field(
        description="log_odds or margin (boosters' and linear models' own contributions), "
        "probability or value (forests, ensembles, sampling), log1p_value (log target)."
    )
    method: Literal["native", "weighted_members", "sampling"]
    explanations: list[ExplanationOut]


class DeploymentExplainOut(ExplainOut):
    """Explanations by the version a deployment serves."""

    deployment: str
    revision: int


class ColumnImportanceOut(BaseModel):
    """One raw column's importance: the drop in score when it is permuted."""

    column: str
    importance: float
    std: float = Field(description="Standard deviation over the repeats.")
    mean_abs_contribution: float | None = Field(
        description="Mean |local contribution| (on contribution_scale); None for models "
        "explained by sampling."
    )
    parts: dict[str, float] = Field(description="Mean |contribution| per prepared feature.")


class ImportancesOut(BaseModel):
    """Importances of every raw column, most important first."""

    columns: list[ColumnImportanceOut]
    method: Literal["permutation"]
    score: Literal["roc_auc", "neg_log_loss", "r2"]
    baseline_score: float
    n_rows: int
    repeats: int
    contribution_scale: str | None
    rows: str = Field(description="Which rows the importances were computed on.")


@router.post(
    "/model-versions/{mv_id}/explain",
    summary="Explain rows with a model version",
    response_model=ExplainOut,
    responses=errors(401, 404, 409, 422),
)
async def explain_version(
    mv_id: str, body: ExplainIn, principal: CurrentUser, services: Services
) -> Any:
    """Reasons per row in raw input columns, with a one-sentence narrative.

    A missing column, a wrong type or an unparseable value is a 422 naming the row index
    and column."""
    return await run_in_threadpool(
        svc.explain_version, services, Owner.of(principal), mv_id, body.rows
    )


_EXPLAIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ExplainIn.model_json_schema()}},
    }
}


@router.post(
    "/deployments/{name}/explain",
    summary="Explain rows with a deployment",
    response_model=DeploymentExplainOut,
    responses=errors(400, 401, 403, 404, 409, 422),
    openapi_extra=_EXPLAIN_BODY,
)
async def explain_deployment(name: str, request: Request, services: Services) -> Any:
    """As predict takes them: a bearer token or a deployment key of this deployment."""
    runtime, _ = await _predict_access(request, services, name)
    try:
        body = ExplainIn.model_validate(orjson.loads(await request.body()))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}.",
            code="invalid_json",
            details={"parameter": "body"},
        ) from exc
    except ValidationError as exc:
        raise InvalidInput(
            f'Send a JSON object {{"rows": [{{...}}, ...]}} with 1 to {svc.EXPLAIN_ROWS} rows.',
            code="invalid_rows",
            details={"parameter": "rows", "limit": svc.EXPLAIN_ROWS},
        ) from exc
    return await run_in_threadpool(svc.explain_deployment, services, runtime, body.rows)


@router.get(
    "/model-versions/{mv_id}/importances",
    summary="Importances of a model version's raw columns",
    response_model=ImportancesOut,
    responses=errors(401, 404, 409),
)
async def importances(mv_id: str, principal: CurrentUser, services: Services) -> Any:
    """Permutation importance per raw column (mean and spread over repeats), computed on
    first request from up to 5,000 labelled rows and stored with the version."""
    return await run_in_threadpool(svc.version_importances, services, Owner.of(principal), mv_id)
