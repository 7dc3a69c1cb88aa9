"""Login, logout, the stage pages and the API-token page."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from narrate.errors import Forbidden, NarrateError, NotFound
from narrate.services import users
from narrate.services.auth import Principal, authenticate_password, issue_token, revoke_session
from narrate.web.client_address import client_ip
from narrate.web.deps import SESSION_COOKIE, Services, get_principal, optional_principal
from narrate.web.pages.stages import STAGES, stage_by_slug

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)

PageUser = Annotated[Principal, Depends(get_principal)]

LOGIN_CSRF_COOKIE = "narrate_login_csrf"
"""Double-submit token of the sign-in form, which has no session (and so no session token)."""


def render(
    request: Request,
    template: str,
    *,
    user: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the layout's shared context."""
    templates = request.app.state.templates
    html = templates.get_template(template).render(
        request=request, user=user, stages=STAGES, **context
    )
    return HTMLResponse(html, status_code=status_code)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/stages/upload"


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _login_form(
    request: Request, *, status_code: int = 200, token: str | None = None, **context: Any
) -> Response:
    """The sign-in form with a CSRF token in a hidden field and in a cookie (double submit)."""
    token = token or secrets.token_urlsafe(24)
    response = render(
        request, "login.html", user=None, status_code=status_code, csrf_token=token, **context
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
        path="/login",
    )
    return response


def _check_login_csrf(request: Request, sent: str) -> None:
    # A cross-site page cannot read or set our cookie, so it cannot echo it in the form:
    # this stops login CSRF (signing a victim in to the attacker's account).
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent, cookie):
        raise Forbidden(
            "The sign-in form's security token is missing or stale.",
            code="csrf_failed",
            hint="Reload the page and try again.",
        )


@router.get("/login")
async def login_page(
    request: Request, user: Annotated[Principal | None, Depends(optional_principal)]
) -> Response:
    """The sign-in form (or straight on when already signed in)."""
    if user is not None:
        return RedirectResponse("/stages/upload", status_code=303)
    return _login_form(request, next=request.query_params.get("next", ""))


@router.post("/login")
def login_submit(
    request: Request,
    services: Services,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Check the form's CSRF token and the credentials, then set the HttpOnly session cookie.

    A plain ``def``: argon2 and SQL are blocking, so FastAPI runs it in its thread pool.
    """
    try:
        _check_login_csrf(request, csrf_token)
        user = authenticate_password(
            services.db,
            username,
            password,
            client_ip=client_ip(request),
            max_failures=services.settings.login_max_failures,
        )
    except NarrateError as exc:
        return _login_form(
            request,
            status_code=exc.status,
            token=request.cookies.get(LOGIN_CSRF_COOKIE) if exc.code != "csrf_failed" else None,
            error=exc.message,
            next=next,
            username=username,
        )
    ttl = timedelta(minutes=services.settings.token_ttl_minutes)
    token, _ = issue_token(user, services.settings.secret_key or "", ttl=ttl, typ="session")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_is_https(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(user: PageUser, services: Services) -> Response:
    """Sign out: revoke the session token (a copied cookie stops working) and clear the cookie.

    CSRF-checked like every cookie-authenticated post.
    """
    if user.via != "api_token":
        revoke_session(services.db, user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(_user: PageUser) -> Response:
    """The workflow starts at Upload."""
    return RedirectResponse("/stages/upload", status_code=303)


@router.get("/stages/{slug}")
async def stage_page(slug: str, request: Request, user: PageUser) -> Response:
    """One stage's page; stages not built yet show what they will do."""
    stage = stage_by_slug(slug)
    if stage is None:
        raise NotFound(f"There is no stage called '{slug}'.")
    return render(request, "stage.html", user=user, stage=stage)


@router.get("/account/tokens")
async def tokens_page(request: Request, user: PageUser, services: Services) -> Response:
    """List, create and revoke personal API tokens."""
    tokens = users.list_api_tokens(services.db, user.user_id)
    return render(request, "tokens.html", user=user, tokens=tokens, stage=None)


@router.post("/account/tokens")
async def tokens_create(
    request: Request, user: PageUser, services: Services, name: Annotated[str, Form()] = ""
) -> Response:
    """Create a token and show its secret once."""
    new = users.create_api_token(services.db, user.user_id, name)
    tokens = users.list_api_tokens(services.db, user.user_id)
    return render(request, "tokens.html", user=user, tokens=tokens, new_token=new, stage=None)


@router.post("/account/tokens/{token_id}/revoke")
async def tokens_revoke(token_id: str, user: PageUser, services: Services) -> Response:
    """Revoke a token and go back to the list."""
    users.revoke_api_token(services.db, user.user_id, token_id)
    return RedirectResponse("/account/tokens", status_code=303)
