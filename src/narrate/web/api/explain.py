"""Interpret: reasons for single predictions (of a model version or a deployment), a
model version's importances in the user's raw input columns, what-if (a row and variants
of it) and partial dependence with ICE curves."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from narrate.errors import InvalidInput
from narrate.services import explain as svc
from narrate.services import whatif
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


# --- what-if and dependence ------------------------------------------------------------


class WhatIfIn(BaseModel):
    """A row as predict takes it, and 1 to 100 variants: each the values to change."""

    row: dict[str, Any]
    variants: list[dict[str, Any]] = Field(min_length=1, max_length=whatif.MAX_VARIANTS)


class ScoredOut(BaseModel):
    """The model's answer for one row."""

    prediction: Any = Field(description="The class (after the tuned threshold) or value.")
    probabilities: dict[str, float] | None = Field(
        default=None, description="Class -> probability (classifiers only)."
    )
    output: float = Field(description="The explained output (see 'target').")
    flags: list[str] = Field(
        description="missing:<column>, unseen_category:<column>, out_of_range:<column>."
    )


class VariantOut(ScoredOut):
    """One variant: what changed, the answer, and how far the output moved."""

    changes: dict[str, Any]
    delta: float = Field(description="This variant's output minus the base row's.")


class WhatIfOut(BaseModel):
    """The row as sent and each variant, scored in one pass."""

    model_version_id: str
    explained_class: str | None = Field(
        description="Whose probability 'output' is: the positive class (binary) or the "
        "class predicted for the row (multiclass); None for regression."
    )
    target: str = Field(description="What 'output' is, in words.")
    base: ScoredOut
    variants: list[VariantOut]


class DeploymentWhatIfOut(WhatIfOut):
    """What-if with the version a deployment serves."""

    deployment: str
    revision: int


class DependenceIn(BaseModel):
    """Which column to vary, and how finely."""

    column: str = Field(min_length=1, max_length=1_000)
    grid_points: int = Field(
        default=whatif.DEPENDENCE_GRID[0],
        ge=whatif.DEPENDENCE_GRID[1],
        le=whatif.DEPENDENCE_GRID[2],
        description="Most grid values: quantiles of a number, top categories by count.",
    )
    rows: int = Field(
        default=whatif.DEPENDENCE_ROWS[0],
        ge=1,
        le=whatif.DEPENDENCE_ROWS[1],
        description="Training rows sampled to average over.",
    )
    ice_rows: int = Field(default=whatif.DEPENDENCE_ICE[0], ge=0, le=whatif.DEPENDENCE_ICE[1])
    explained_class: str | None = Field(
        default=None,
        alias="class",
        description="Classifiers: whose probability (default: the positive class, or the "
        "first class of a multiclass model).",
    )


class IceOut(BaseModel):
    """One sampled row's curve: its output at each grid value."""

    row: int = Field(description="The row's position in the training upload.")
    values: list[float]


class DependenceOut(BaseModel):
    """Partial dependence (the mean curve), ICE curves and the column's distribution."""

    model_version_id: str
    column: str
    kind: Literal["numeric", "categorical"]
    target: str = Field(description="What the y-axis is, in words.")
    explained_class: str | None
    grid: list[Any]
    average: list[float] = Field(description="Partial dependence: the mean of every row's curve.")
    ice: list[IceOut]
    distribution: dict[str, Any] = Field(
        description="numeric: {edges, counts, missing} (a histogram); categorical: "
        "{categories, counts, other, missing}."
    )
    n_rows: int
    rows: str = Field(description="Which rows the curves were computed on.")


@router.post(
    "/model-versions/{mv_id}/what-if",
    summary="Score a row and variants of it with a model version",
    response_model=WhatIfOut,
    responses=errors(401, 404, 422),
)
async def what_if_version(
    mv_id: str, body: WhatIfIn, principal: CurrentUser, services: Services
) -> Any:
    """Each variant's answer and ``delta``, the change of the explained output. A variant
    that changes a column the model does not take, or a value that can't be read, is a
    422 naming ``row`` or ``variants[i]`` and the column."""
    return await run_in_threadpool(
        whatif.what_if_version, services, Owner.of(principal), mv_id, body.row, body.variants
    )


_WHAT_IF_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WhatIfIn.model_json_schema()}},
    }
}


@router.post(
    "/deployments/{name}/what-if",
    summary="Score a row and variants of it with a deployment",
    response_model=DeploymentWhatIfOut,
    responses=errors(400, 401, 403, 404, 422),
    openapi_extra=_WHAT_IF_BODY,
)
async def what_if_deployment(name: str, request: Request, services: Services) -> Any:
    """As predict takes them: a bearer token or a deployment key of this deployment.
    Nothing is written to the prediction log."""
    runtime, _ = await _predict_access(request, services, name)
    try:
        body = WhatIfIn.model_validate(orjson.loads(await request.body()))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}.",
            code="invalid_json",
            details={"parameter": "body"},
        ) from exc
    except ValidationError as exc:
        raise InvalidInput(
            'Send a JSON object {"row": {...}, "variants": [{...}, ...]} with 1 to '
            f"{whatif.MAX_VARIANTS} variants.",
            code="invalid_variants",
            details={"parameter": "variants", "limit": whatif.MAX_VARIANTS},
        ) from exc
    return await run_in_threadpool(
        whatif.what_if_deployment, services, runtime, body.row, body.variants
    )


@router.post(
    "/model-versions/{mv_id}/dependence",
    summary="Partial dependence and ICE curves of one column",
    response_model=DependenceOut,
    responses=errors(401, 404, 409, 422),
)
async def dependence(
    mv_id: str, body: DependenceIn, principal: CurrentUser, services: Services
) -> Any:
    """The model's output as one column moves over a grid, for each of a sample of the
    training rows (ICE) and on average (partial dependence), with the column's
    distribution in that sample. All rows x grid values are scored in one pass."""
    return await run_in_threadpool(
        partial(
            whatif.version_dependence,
            services,
            Owner.of(principal),
            mv_id,
            body.column,
            grid_points=body.grid_points,
            rows=body.rows,
            ice_rows=body.ice_rows,
            explained_class=body.explained_class,
        )
    )
