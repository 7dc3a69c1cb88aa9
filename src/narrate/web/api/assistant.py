"""The optional LLM: reworded narratives, "ask about this dataset/model", its status and
its admin configuration.

Everything here works without an LLM: rewording answers the standard text with a note,
asking answers 409 ``llm_off`` with how to turn it on, and the status says ``"off"``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from narrate.services import llm, llm_answers, llm_config
from narrate.services.datasets import Owner
from narrate.web.api.contract import errors
from narrate.web.deps import AdminUser, CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["assistant"])

# A narrative is a few sentences; the limits keep the route from being a general proxy.
_MAX_TEXT = 4000
_MAX_FACTS = 100


class FactIn(BaseModel):
    """One value a narrative uses."""

    name: str = Field(max_length=500)
    value: int | float | str
    source: str = Field(default="", max_length=500)


class NarrativeIn(BaseModel):
    """A narrative as the API returns it: its text and the facts behind every number."""

    text: str = Field(min_length=1, max_length=_MAX_TEXT)
    facts: list[FactIn] = Field(default_factory=list, max_length=_MAX_FACTS)


class NarrativeOut(BaseModel):
    """The narrative reworded by the LLM, or the standard one with a note saying why."""

    text: str
    facts: list[FactIn]
    source: Literal["llm", "deterministic"]
    note: str | None = None


class QuestionIn(BaseModel):
    """A question in plain words (length limit: NARRATE_LLM_MAX_QUESTION_CHARS)."""

    question: str = Field(max_length=20_000)


class CitationOut(BaseModel):
    """A stored fact the answer is based on."""

    id: str = Field(description="The fact's id in the prompt (F1, F2 ...).")
    source: str = Field(description="The stored record and field the fact was read from.")
    name: str
    value: float | int | str


SentKind = Literal["profile_summary", "evaluation_metrics", "importances", "narratives", "rows"]


class SentOut(BaseModel):
    """What the prompt contained (reached the endpoint unless the note says otherwise)."""

    kinds: list[
        Literal["profile_summary", "evaluation_metrics", "importances", "narratives", "rows"]
    ]
    facts: int = Field(description="Numbered facts in the prompt.")
    raw_rows: int = Field(description="Raw rows in the prompt: 0 unless an admin allowed rows.")


class AnswerOut(BaseModel):
    """An answer from the stored summaries, citing them."""

    answer: str
    citations: list[CitationOut]
    source: Literal["llm", "deterministic"]
    note: str | None = None
    sent: SentOut


class StatusOut(BaseModel):
    """Whether the LLM is used, which model, and whether prompts may hold raw rows."""

    llm: Literal["off", "on", "breaker_open"]
    model: str | None
    sends_rows: bool


class LlmConfigIn(BaseModel):
    """The OpenAI-compatible endpoint to use; an empty base_url turns the LLM off."""

    base_url: str = Field(max_length=2000, description="http(s) base URL, e.g. .../v1.")
    model: str = Field(default="", max_length=200)
    api_key: str | None = Field(
        default=None,
        max_length=1000,
        description="Stored encrypted; omit to keep the stored key, '' to remove it.",
    )


class LlmConfigOut(BaseModel):
    """The LLM configuration; the key itself is never returned."""

    base_url: str
    model: str
    api_key_set: bool
    source: Literal["database", "environment"]
    updated_at: str | None


@router.post(
    "/datasets/{dataset_id}/ask",
    summary="Ask the LLM about this dataset (stored profile only)",
    response_model=AnswerOut,
    response_model_exclude_none=True,
    responses=errors(401, 403, 404, 409, 422),
)
async def ask_dataset(
    dataset_id: str, body: QuestionIn, principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """Answered from the dataset's stored profile summary and narrative, citing facts."""
    return await run_in_threadpool(
        llm_answers.ask, services, Owner.of(principal), "dataset", dataset_id, body.question
    )


@router.post(
    "/models/{model_id}/ask",
    summary="Ask the LLM about this model (metrics, importances, narrative)",
    response_model=AnswerOut,
    response_model_exclude_none=True,
    responses=errors(401, 403, 404, 409, 422),
)
async def ask_model(
    model_id: str, body: QuestionIn, principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """Answered from the model's holdout metrics, importances and narrative, citing facts."""
    return await run_in_threadpool(
        llm_answers.ask, services, Owner.of(principal), "model", model_id, body.question
    )


@router.post(
    "/narratives/reword",
    summary="Reword a narrative for a non-expert (numbers unchanged)",
    response_model=NarrativeOut,
    response_model_exclude_none=True,
    responses=errors(401, 403, 422),
)
async def reword_narrative(
    body: NarrativeIn, _principal: CurrentUser, services: Services
) -> dict[str, Any]:
    """The LLM's wording when every number in it is a fact; else the text sent, with a note."""
    return await run_in_threadpool(llm_answers.reword, services, body.model_dump())


@router.get("/assistant/status", response_model=StatusOut, responses=errors(401))
async def assistant_status(_principal: CurrentUser, services: Services) -> dict[str, Any]:
    """Off, on or paused by the circuit breaker; and whether raw rows may be sent."""
    return await run_in_threadpool(llm.llm_status, services)


@router.get("/admin/llm", response_model=LlmConfigOut, responses=errors(401, 403))
async def get_llm(_admin: AdminUser, services: Services) -> dict[str, Any]:
    """The LLM endpoint in use (admins only); ``api_key_set`` instead of the key."""
    return await run_in_threadpool(llm_config.get_llm_config, services)


@router.put("/admin/llm", response_model=LlmConfigOut, responses=errors(401, 403, 422))
async def put_llm(body: LlmConfigIn, admin: AdminUser, services: Services) -> dict[str, Any]:
    """Store the LLM endpoint (wins over NARRATE_LLM_*); the key is sealed at rest."""
    return await run_in_threadpool(
        lambda: llm_config.put_llm_config(
            services,
            admin.user_id,
            base_url=body.base_url,
            model=body.model,
            api_key=body.api_key,
        )
    )
