"""The one error tree of Narrate.

Domain, service and storage code raise these; each transport (web, CLI, MCP) maps them
to its own form in exactly one place. A message says what was received, what is allowed
and what to do next.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "DataProblem",
    "ExternalServiceError",
    "Forbidden",
    "InvalidInput",
    "InvalidState",
    "NarrateError",
    "NotFound",
    "StorageUnavailable",
    "TooLarge",
    "Unauthorized",
    "UnsupportedMediaType",
]


class NarrateError(Exception):
    """Base of every error Narrate raises on purpose.

    Args:
        message: A plain-language sentence for the user.
        code: A stable machine-readable code (``snake_case``).
        hint: What the user can do next.
        details: Structured context (file, row, column, parameter ...).
    """

    code = "narrate_error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """Return the error as the JSON envelope body used by every transport."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }


class InvalidInput(NarrateError, ValueError):
    """The caller sent something that cannot be accepted (422)."""

    code = "invalid_input"
    status = 422


class DataProblem(InvalidInput):
    """The data itself is unusable as sent: malformed file, ragged rows, empty table (400)."""

    code = "data_problem"
    status = 400


class BadRequest(InvalidInput):
    """A request no variation of which is accepted, e.g. a filter that reads files (400)."""

    code = "bad_request"
    status = 400


class UnsupportedMediaType(InvalidInput):
    """A file type or content type Narrate does not read (415)."""

    code = "unsupported_media_type"
    status = 415


class TooLarge(InvalidInput):
    """Input above a configured limit (413)."""

    code = "too_large"
    status = 413


class Unauthorized(NarrateError):
    """No valid credentials (401)."""

    code = "unauthorized"
    status = 401


class Forbidden(NarrateError):
    """Valid credentials without the needed role or ownership (403)."""

    code = "forbidden"
    status = 403


class NotFound(NarrateError, LookupError):
    """The named thing does not exist or is not visible to the caller (404)."""

    code = "not_found"
    status = 404


class Conflict(NarrateError):
    """The request clashes with current state, or needs explicit confirmation (409)."""

    code = "conflict"
    status = 409


class InvalidState(Conflict):
    """The thing exists but is in a state that does not allow this (409)."""

    code = "invalid_state"


class TooManyRequests(NarrateError):
    """Rate limited, e.g. repeated failed logins (429)."""

    code = "too_many_requests"
    status = 429


class ExternalServiceError(NarrateError):
    """A service we call (LLM, S3, ...) failed (502)."""

    code = "external_service_error"
    status = 502


class StorageUnavailable(NarrateError):
    """The metadata database or artifact store cannot be reached (503)."""

    code = "storage_unavailable"
    status = 503


__all__ += ["TooManyRequests"]
