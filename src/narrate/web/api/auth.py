"""Sign-in and personal API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from narrate.errors import InvalidInput
from narrate.services import users
from narrate.services.auth import authenticate_password, issue_token, revoke_session
from narrate.web.client_address import client_ip
from narrate.web.deps import CurrentUser, Services

__all__ = ["router"]

router = APIRouter(tags=["auth"])


class TokenOut(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int


class ApiTokenIn(BaseModel):
    """A new personal API token."""

    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


async def _credentials(request: Request) -> tuple[str, str]:
    """Read username and password from a JSON or form body (async: it awaits the body)."""
    ctype = request.headers.get("content-type", "")
    data: Any
    if ctype.startswith("application/json"):
        try:
            data = await request.json()
        except ValueError as exc:
            raise InvalidInput("The body is not valid JSON.", code="invalid_json") from exc
    else:
        data = dict(await request.form())
    if not isinstance(data, dict):
        data = {}
    username, password = data.get("username"), data.get("password")
    missing = [k for k, v in (("username", username), ("password", password)) if not v]
    if missing:
        raise InvalidInput(
            f"Send {' and '.join(missing)} (as JSON or a form).",
            code="missing_credentials",
            details={"parameters": missing},
        )
    return str(username), str(password)


Credentials = Annotated[tuple[str, str], Depends(_credentials)]

# Routes below are plain ``def``: they do blocking database and argon2 work, which FastAPI
# runs in its thread pool instead of on the event loop.


@router.post("/auth/token", response_model=TokenOut, summary="Exchange a password for a JWT")
def token(request: Request, credentials: Credentials, services: Services) -> TokenOut:
    """Exchange username and password (JSON or form) for a bearer JWT."""
    username, password = credentials
    user = authenticate_password(
        services.db,
        username,
        password,
        client_ip=client_ip(request),
        max_failures=services.settings.login_max_failures,
    )
    ttl = timedelta(minutes=services.settings.token_ttl_minutes)
    jwt_token, _ = issue_token(user, services.settings.secret_key or "", ttl=ttl)
    return TokenOut(access_token=jwt_token, expires_in=int(ttl.total_seconds()))


@router.post("/auth/logout", status_code=204, summary="Revoke the bearer JWT in use")
def logout(principal: CurrentUser, services: Services) -> None:
    """Sign out: the JWT (or session cookie) this request carries stops working at once."""
    revoke_session(services.db, principal)


@router.get("/me", summary="Who am I")
def me(principal: CurrentUser) -> dict[str, Any]:
    """The caller's identity and role."""
    return {"id": principal.user_id, "username": principal.username, "role": principal.role}


@router.post("/me/tokens", status_code=201, summary="Create a personal API token")
def create_token(body: ApiTokenIn, principal: CurrentUser, services: Services) -> Any:
    """Create an API token; the secret is in the response once and never again."""
    new = users.create_api_token(
        services.db, principal.user_id, body.name, expires_in_days=body.expires_in_days
    )
    return {
        "id": new.id,
        "name": new.name,
        "token": new.token,
        "prefix": new.prefix,
        "expires_at": new.expires_at.isoformat() if new.expires_at else None,
    }


@router.get("/me/tokens", summary="List my API tokens")
def list_tokens(principal: CurrentUser, services: Services) -> Any:
    """The caller's live API tokens (without secrets)."""
    return {"items": users.list_api_tokens(services.db, principal.user_id)}


@router.delete("/me/tokens/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: str, principal: CurrentUser, services: Services) -> None:
    """Revoke one of the caller's tokens."""
    users.revoke_api_token(services.db, principal.user_id, token_id)
