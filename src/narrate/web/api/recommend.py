"""The assistant: rule-based recommendations for a dataset and for a trained model.

Each item says what to do, why (with the facts behind every number), what it changes,
and what one click does: recipe steps to send to the recipe API, training options to
send with a training request, or nothing (advice).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from narrate.services import recommend as svc
from narrate.services.datasets import Owner
from narrate.web.api.contract import errors
from narrate.web.deps import CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["assistant"])


class RecommendationFactOut(BaseModel):
    """One value a recommendation's text uses, and where it comes from."""

    name: str
    value: float | int | str
    source: str = Field(description="The stored record and field it was read from.")


class RecipeStepsAction(BaseModel):
    """Apply these steps as a new version: POST /api/v1/datasets/{id}/recipes/apply."""

    type: Literal["recipe_steps"]
    steps: list[dict[str, Any]] = Field(description="Steps in the recipe API's format.")


class TrainingOptionsAction(BaseModel):
    """Train with these options: fields of POST /api/v1/models."""

    type: Literal["training_options"]
    options: dict[str, Any] = Field(description="Training options (target, task, cv, ...).")


class NoAction(BaseModel):
    """Advice: nothing to apply."""

    type: Literal["none"]


ActionOut = Annotated[
    RecipeStepsAction | TrainingOptionsAction | NoAction, Field(discriminator="type")
]


class RecommendationOut(BaseModel):
    """One recommendation."""

    id: str = Field(description="Stable: the rule id, then ':' and the column it is about.")
    rule: str
    kind: Literal["target", "problem_type", "clean", "transform", "exclude", "train", "evaluate"]
    severity: Literal["critical", "warning", "info"]
    title: str
    reason: str
    effect: str
    action: ActionOut
    facts: list[RecommendationFactOut]


class DatasetRecommendationsOut(BaseModel):
    """Recommendations for a dataset version."""

    dataset_id: str
    version_id: str
    target: str | None
    items: list[RecommendationOut]


class ModelRecommendationsOut(BaseModel):
    """Recommendations after a model's evaluation."""

    model_id: str
    model_version_id: str
    items: list[RecommendationOut]


@router.get(
    "/datasets/{dataset_id}/recommendations",
    summary="What to do with this dataset next",
    response_model=DatasetRecommendationsOut,
    responses=errors(401, 404, 422),
)
async def dataset_recommendations(
    dataset_id: str,
    principal: CurrentUser,
    services: Services,
    version_id: Annotated[
        str | None, Query(description="A version of the dataset; the current one by default.")
    ] = None,
    target: Annotated[
        str | None,
        Query(max_length=1000, description="The column to predict; the dataset's by default."),
    ] = None,
) -> dict[str, Any]:
    """Targets, columns to leave out, cleaning and transform steps, training options."""
    return await run_in_threadpool(
        svc.dataset_recommendations,
        services,
        Owner.of(principal),
        dataset_id,
        version_id=version_id,
        target=target,
    )


@router.get(
    "/models/{model_id}/recommendations",
    summary="What to do after this model's evaluation",
    response_model=ModelRecommendationsOut,
    responses=errors(401, 404),
)
async def model_recommendations(
    model_id: str, principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """More data, class weights, a threshold objective, a leaking column to drop."""
    return await run_in_threadpool(
        svc.model_recommendations, services, Owner.of(principal), model_id
    )
