"""Shapes every new route shares (STYLE.md, API contract): the error envelope, paged
lists and the answer of anything that starts a job."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "ErrorOut", "JobStarted", "Page", "errors"]

T = TypeVar("T")


class ErrorBody(BaseModel):
    """What went wrong, in plain language, with a stable code."""

    code: str = Field(description="Stable machine-readable code (see docs/errors.md).")
    message: str
    hint: str | None = None
    details: dict[str, Any] = Field(
        default_factory=dict, description="The file, row, column or parameter concerned."
    )
    request_id: str | None = None


class ErrorOut(BaseModel):
    """The error envelope every route answers with."""

    error: ErrorBody


class Page(BaseModel, Generic[T]):
    """One page of a list: its items, how many there are in all, and the next page's URL."""

    items: list[T]
    total: int
    next: str | None = Field(description="URL of the next page; null on the last one.")


class JobStarted(BaseModel):
    """Work started as a job: follow it at ``status_url``."""

    job_id: str
    status_url: str
    created_id: str | None = Field(
        default=None, description="The id of what the job will create, when known."
    )


_WHY = {
    400: "The request is malformed.",
    401: "Not signed in, or the token is unknown, expired or revoked.",
    403: "Signed in, but not allowed (role, CSRF or a key used outside its deployment).",
    404: "No such record for this caller, or it is deleted.",
    409: "The record's state does not allow this.",
    413: "The body or file is larger than the limit.",
    415: "The file's type is not one Narrate reads.",
    422: "An input is invalid; details name the parameter, row or column.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {s: {"model": ErrorOut, "description": _WHY[s]} for s in statuses}


def next_url(path: str, offset: int, limit: int, total: int, **query: Any) -> str | None:
    """The URL of the page after ``offset``/``limit``, or None on the last page."""
    if offset + limit >= total:
        return None
    extra = "".join(f"&{k}={v}" for k, v in query.items() if v is not None)
    return f"{path}?offset={offset + limit}&limit={limit}{extra}"
