"""FastAPI dependencies: the service container and the authenticated caller."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Query, Request

from narrate.bootstrap import Container
from narrate.errors import Forbidden, Unauthorized
from narrate.services.auth import (
    API_TOKEN_PREFIX,
    Principal,
    principal_from_api_token,
    principal_from_jwt,
    require_role,
)
from narrate.services.deployments import DEPLOYMENT_KEY_PREFIX

__all__ = [
    "FORM_TOKEN_MAX_BYTES",
    "MAX_OFFSET",
    "SESSION_COOKIE",
    "AdminUser",
    "AnalystUser",
    "CurrentUser",
    "Offset",
    "Services",
    "check_csrf",
    "get_container",
    "get_principal",
    "optional_principal",
]

SESSION_COOKIE = "narrate_session"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

FORM_TOKEN_MAX_BYTES = 64 * 1024
"""Largest URL-encoded body searched for a ``csrf_token`` field (see ``check_csrf``)."""

MAX_OFFSET = 1_000_000_000
"""Largest paging offset accepted: far past any real page, far below 64-bit overflow."""

Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description="Items to skip (0 to 1,000,000,000).")
]
"""The ``offset`` query parameter of every paged list; bounded so that no database or
Polars call overflows (422 naming ``query.offset`` instead of a 500)."""


async def get_container(request: Request) -> Container:
    """The app's service container (async: a plain function would cost every request a
    hop through the thread pool)."""
    container: Container = request.app.state.container
    return container


Services = Annotated[Container, Depends(get_container)]


def _from_request(request: Request, container: Container) -> Principal | None:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = request.headers.get("authorization", "")
    secret = container.settings.secret_key or ""
    principal: Principal | None = None
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="bad_auth_header")
        if token.startswith(DEPLOYMENT_KEY_PREFIX):
            raise Forbidden(
                "A deployment key can only call its deployment's predict and batch routes.",
                code="key_scope",
                hint="Use a personal API token or sign in for everything else.",
            )
        if token.startswith(API_TOKEN_PREFIX):
            principal = principal_from_api_token(container.db, token)
        else:
            principal = principal_from_jwt(container.db, token, secret)
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = principal_from_jwt(container.db, cookie, secret, typ="session")
    request.state.principal = principal
    return principal


async def _form_token(request: Request) -> str | None:
    """The ``csrf_token`` field of a small URL-encoded form body, else None.

    Only bodies that declare a length up to ``FORM_TOKEN_MAX_BYTES`` are read: the plain
    HTML forms (sign-out, API tokens) are tiny, while anything else, uploads above all,
    sends the header. A forged request is then refused before its body is read, instead
    of after a multipart body of any size was parsed and spooled to the system temp dir.
    """
    content_type = request.headers.get("content-type", "")
    declared = request.headers.get("content-length", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return None
    if not declared.isdigit() or int(declared) > FORM_TOKEN_MAX_BYTES:
        return None
    form = await request.form()
    value = form.get("csrf_token")
    return value if isinstance(value, str) else None


async def check_csrf(request: Request, principal: Principal) -> None:
    """Cookie-authenticated unsafe requests must echo the session's CSRF token.

    The token comes in the ``X-CSRF-Token`` header (HTMX, fetch, uploads) or a
    ``csrf_token`` field of a small URL-encoded form (plain HTML forms).

    Raises:
        Forbidden: ``csrf_failed`` when the token is missing or does not match.
    """
    if principal.via != "session" or request.method in _SAFE:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        sent = await _form_token(request)
    if not sent or not principal.csrf or not hmac.compare_digest(sent, principal.csrf):
        raise Forbidden(
            "The form's security token is missing or stale.",
            code="csrf_failed",
            hint="Reload the page and try again.",
        )


async def optional_principal(request: Request, container: Services) -> Principal | None:
    """The caller if authenticated (and CSRF-checked), else None."""
    principal = _from_request(request, container)
    if principal is not None:
        await check_csrf(request, principal)
    return principal


async def get_principal(request: Request, container: Services) -> Principal:
    """The authenticated caller, or 401."""
    principal = await optional_principal(request, container)
    if principal is None:
        raise Unauthorized(
            "Sign in first: send a bearer token or an API token.",
            hint="POST username and password to /api/v1/auth/token to get one.",
        )
    return principal


async def _analyst(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    require_role(principal, "analyst")
    return principal


async def _admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    require_role(principal, "admin")
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
AnalystUser = Annotated[Principal, Depends(_analyst)]
AdminUser = Annotated[Principal, Depends(_admin)]
