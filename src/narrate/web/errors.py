"""The one place NarrateError and framework errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from narrate.errors import NarrateError
from narrate.web.middleware import request_id_var

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/health", "/metrics")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    """Render an error as the JSON envelope, or as an HTML page for browsers."""
    body = {**body, "request_id": getattr(request.state, "request_id", None)}
    if status == 401 and _wants_html(request):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if _wants_html(request):
        templates = request.app.state.templates
        return HTMLResponse(
            templates.get_template("error.html").render(
                request=request, status=status, error=body, user=None, stage=None
            ),
            status_code=status,
            headers=headers,
        )
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _recursion_response(request: Request, exc: RecursionError) -> Response:
    """A 422 for input nested too deeply to process, logged as one line."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame is not None else "?"
    log.warning(
        "input nested too deeply on %s %s (recursion limit reached at %s)",
        request.method,
        request.url.path,
        where,
    )
    body = {
        "code": "too_deep",
        "message": "The input is nested too deeply to process.",
        "hint": "Flatten the nested lists or objects and send it again.",
        "details": {},
    }
    return error_response(request, 422, body)


def install_error_handlers(app: FastAPI) -> None:
    """Map NarrateError, validation errors, HTTP errors and crashes to the envelope."""

    @app.exception_handler(NarrateError)
    async def _narrate(request: Request, exc: NarrateError) -> Response:
        headers = {}
        if "retry_after" in exc.details:
            headers["Retry-After"] = str(exc.details["retry_after"])
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(request, exc.status, exc.to_dict(), headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "location": ".".join(str(p) for p in err.get("loc", ())),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"location": "?", "message": "invalid"}
        body = {
            "code": "invalid_input",
            "message": f"Parameter '{first['location']}' is invalid: {first['message']}.",
            "hint": "Fix the listed parameters and send the request again.",
            "details": {"errors": problems},
        }
        return error_response(request, 422, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail) if exc.detail else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = f"Nothing at {request.url.path}."
        body: dict[str, Any] = {
            "code": _STATUS_CODES.get(exc.status_code, "http_error"),
            "message": message,
            "hint": None,
            "details": {},
        }
        return error_response(request, exc.status_code, body, dict(exc.headers or {}) or None)

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> Response:
        # Deeply nested input that got past the body guard (a file, a query). Its traceback
        # runs to thousands of frames, so the log gets one line naming where it happened.
        return _recursion_response(request, exc)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:  # noqa: ARG001
        # Starlette calls this outside NarrateMiddleware, which has already reset the id.
        request_id = getattr(request.state, "request_id", None)
        token = request_id_var.set(request_id)
        try:
            log.exception(
                "unhandled error on %s %s (request id %s)",
                request.method,
                request.url.path,
                request_id,
            )
        finally:
            request_id_var.reset(token)
        body = {
            "code": "internal_error",
            "message": "Something went wrong on our side. The request id identifies it in "
            "the server log.",
            "hint": "Try again; if it keeps failing, report the request id.",
            "details": {},
        }
        # This response bypasses NarrateMiddleware, so it names the request id itself.
        return error_response(
            request, 500, body, {"X-Request-ID": request_id} if request_id else None
        )
