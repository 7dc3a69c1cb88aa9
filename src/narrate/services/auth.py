"""Authentication: password hashes, JWTs, personal API tokens and login back-off."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from narrate.errors import Forbidden, TooManyRequests, Unauthorized
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import ApiToken, LoginAttempt, User, utcnow

__all__ = [
    "API_TOKEN_PREFIX",
    "ROLES",
    "Principal",
    "authenticate_password",
    "decode_token",
    "hash_password",
    "issue_token",
    "principal_from_api_token",
    "principal_from_jwt",
    "require_role",
    "verify_password",
]

ROLES = ("admin", "analyst", "viewer")
_RANK = {"viewer": 0, "analyst": 1, "admin": 2}
API_TOKEN_PREFIX = "nrt_"  # noqa: S105 - a visible prefix, not a secret
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "typ", "role"]
_hasher = PasswordHasher()
_MAX_LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user and how they authenticated."""

    user_id: str
    username: str
    role: str
    via: Literal["jwt", "api_token", "session"]
    csrf: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller is an admin."""
        return self.role == "admin"


def hash_password(password: str) -> str:
    """Return an argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the argon2 hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def require_role(principal: Principal, minimum: str) -> None:
    """Raise Forbidden unless the caller's role is at least ``minimum``."""
    if _RANK[principal.role] < _RANK[minimum]:
        raise Forbidden(
            f"This needs the '{minimum}' role; you are signed in as '{principal.role}'.",
            hint="Ask an admin to change your role.",
        )


def issue_token(
    user: User, secret: str, *, ttl: timedelta, typ: str = "access", now: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """Sign a JWT for a user.

    Args:
        user: The user the token is for.
        secret: The signing key.
        ttl: Lifetime.
        typ: ``access`` for API bearer tokens, ``session`` for the UI cookie.
        now: Injected clock for tests.

    Returns:
        The encoded token and its claims.
    """
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user.id,
        "name": user.username,
        "role": user.role,
        "typ": typ,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": secrets.token_hex(8),
    }
    if typ == "session":
        claims["csrf"] = secrets.token_urlsafe(24)
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), claims


def decode_token(token: str, secret: str, *, typ: str = "access") -> dict[str, Any]:
    """Verify a JWT and return its claims.

    Raises:
        Unauthorized: expired, badly signed, malformed or missing a required claim.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": _REQUIRED_CLAIMS}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized(
            "Your token has expired.", code="token_expired", hint="Sign in again."
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthorized("The token's signature is not valid.", code="bad_signature") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(
            f"The token lacks the required claim '{exc.claim}'.", code="missing_claim"
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"The token is not valid: {exc}.", code="invalid_token") from exc
    if claims.get("typ") != typ:
        raise Unauthorized(
            f"A {claims.get('typ')} token cannot be used here.", code="invalid_token"
        )
    return claims


def principal_from_jwt(db: Database, token: str, secret: str, *, typ: str = "access") -> Principal:
    """Resolve a bearer JWT (or session cookie) to an active user."""
    claims = decode_token(token, secret, typ=typ)
    with db.session() as s:
        user = _active_user(s, claims["sub"])
        return Principal(
            user.id,
            user.username,
            user.role,
            "session" if typ == "session" else "jwt",
            claims.get("csrf"),
        )


def principal_from_api_token(db: Database, token: str) -> Principal:
    """Resolve a personal API token to its active owner, recording its use."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or row.deleted_at is not None:
            raise Unauthorized("This API token is unknown or was revoked.", code="token_revoked")
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise Unauthorized("This API token has expired.", code="token_expired")
        user = _active_user(s, row.owner_id)
        row.last_used_at = utcnow()
        return Principal(user.id, user.username, user.role, "api_token")


def _active_user(s: Session, user_id: str) -> User:
    user = s.get(User, user_id)
    if user is None or not user.is_active or user.deleted_at is not None:
        raise Unauthorized("This account is deactivated or no longer exists.", code="inactive")
    return user


def authenticate_password(
    db: Database, username: str, password: str, *, client_ip: str, max_failures: int
) -> User:
    """Check a username and password, with per-user and per-IP back-off.

    After ``max_failures`` failures, each further attempt must wait twice as long as the
    one before (capped at 15 minutes); a success clears the user's counter.

    Raises:
        TooManyRequests: while a key is locked (``details.retry_after`` in seconds).
        Unauthorized: wrong username or password (the message never says which).
    """
    keys = [f"user:{username.lower()}", f"ip:{client_ip}"]
    now = utcnow()
    with db.session() as s:
        for key in keys:
            row = s.get(LoginAttempt, key)
            if row is not None and row.locked_until is not None and row.locked_until > now:
                wait = int((row.locked_until - now).total_seconds()) + 1
                raise TooManyRequests(
                    f"Too many failed sign-ins. Try again in {wait} seconds.",
                    code="login_locked",
                    details={"retry_after": wait},
                )
        user = s.scalar(select(User).where(User.username == username))
        ok = (
            user is not None
            and user.is_active
            and user.deleted_at is None
            and verify_password(user.password_hash, password)
        )
        if not ok or user is None:
            for key in keys:
                _record_failure(s, key, now, max_failures)
        else:
            row = s.get(LoginAttempt, keys[0])
            if row is not None:
                s.delete(row)
            user.last_login_at = now
            return user
    raise Unauthorized("Wrong username or password.", code="bad_credentials")


def _record_failure(s: Session, key: str, now: datetime, max_failures: int) -> None:
    row = s.get(LoginAttempt, key)
    if row is None:
        row = LoginAttempt(key=key, failures=0)
        s.add(row)
    row.failures += 1
    row.last_failure_at = now
    over = row.failures - max_failures
    if over >= 0:
        row.locked_until = now + min(timedelta(seconds=2**over), _MAX_LOCK)
