"""Authentication: password hashes, JWTs, personal API tokens and login back-off."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from narrate.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import ApiToken, LoginAttempt, RevokedToken, User, utcnow

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
    "revoke_session",
    "verify_password",
]

ROLES = ("admin", "analyst", "viewer")
_RANK = {"viewer": 0, "analyst": 1, "admin": 2}
API_TOKEN_PREFIX = "nrt_"  # noqa: S105 - a visible prefix, not a secret
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "typ", "role", "jti"]
_hasher = PasswordHasher()
_MAX_LOCK = timedelta(minutes=15)
# Failures older than this are forgotten, so old typos do not count against a user forever.
_FORGET_AFTER = timedelta(hours=1)
# One IP may fail this many times the per-account limit, summed over all accounts, before it
# is locked out of every account: one guesser cannot spray passwords over many usernames.
IP_FAILURE_FACTOR = 4


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user and how they authenticated."""

    user_id: str
    username: str
    role: str
    via: Literal["jwt", "api_token", "session"]
    csrf: str | None = None
    jti: str | None = None
    expires_at: int | None = None

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


@functools.cache
def _dummy_hash() -> str:
    # Verified against for unknown or inactive users, so that a wrong username costs the
    # same argon2 work as a wrong password and response times do not reveal which users exist.
    return _hasher.hash(secrets.token_urlsafe(16))


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
        if s.get(RevokedToken, str(claims["jti"])) is not None:
            raise Unauthorized(
                "This session was signed out.", code="token_revoked", hint="Sign in again."
            )
        user = _active_user(s, claims["sub"])
        return Principal(
            user.id,
            user.username,
            user.role,
            "session" if typ == "session" else "jwt",
            claims.get("csrf"),
            str(claims["jti"]),
            int(claims["exp"]),
        )


def revoke_session(db: Database, principal: Principal) -> None:
    """Revoke the JWT or session cookie the caller signed in with (sign-out).

    The token id is kept until the token would have expired anyway; expired entries are
    purged here, so the table holds only tokens that are still live.

    Args:
        db: The metadata database.
        principal: The caller; must have come from a JWT or session cookie.

    Raises:
        InvalidInput: the caller used a personal API token (revoke those by id).
    """
    if principal.jti is None or principal.expires_at is None:
        raise InvalidInput(
            "Personal API tokens are not signed out; revoke them instead.",
            code="not_a_session",
            hint="DELETE /api/v1/me/tokens/{token_id} revokes an API token.",
        )
    now = utcnow()
    with db.session() as s:
        s.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
        if s.get(RevokedToken, principal.jti) is None:
            s.add(
                RevokedToken(
                    jti=principal.jti,
                    user_id=principal.user_id,
                    expires_at=datetime.fromtimestamp(principal.expires_at, UTC),
                    revoked_at=now,
                )
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
    db: Database,
    username: str,
    password: str,
    *,
    client_ip: str,
    max_failures: int,
    now: datetime | None = None,
) -> User:
    """Check a username and password, with per-account-and-IP and per-IP back-off.

    Failures are counted for the (account, IP) pair, so an attacker elsewhere cannot lock a
    user out, and for the IP across all accounts (``IP_FAILURE_FACTOR`` times the limit).
    Past a limit, each further failure doubles the wait (capped at 15 minutes); a success
    clears the pair's counter. Every attempt costs one argon2 verification, known user or not.

    Args:
        db: The metadata database.
        username: The name as typed.
        password: The password as typed.
        client_ip: The caller's address (see ``narrate.web.client_address``).
        max_failures: Failures per (account, IP) before back-off.
        now: Injected clock for tests.

    Returns:
        The signed-in user.

    Raises:
        TooManyRequests: while a key is locked (``details.retry_after`` in seconds).
        Unauthorized: wrong username or password (the message never says which).
    """
    limits = {
        f"pair:{username.lower()}|{client_ip}": max_failures,
        f"ip:{client_ip}": max_failures * IP_FAILURE_FACTOR,
    }
    now = now or utcnow()
    with db.session() as s:
        _refuse_if_locked(s, list(limits), now)
        user = s.scalar(select(User).where(User.username == username))
        matches = verify_password(user.password_hash if user else _dummy_hash(), password)
        if user is not None and matches and user.is_active and user.deleted_at is None:
            pair = s.get(LoginAttempt, next(iter(limits)))
            if pair is not None:
                s.delete(pair)
            user.last_login_at = now
            return user
        for key, limit in limits.items():
            _record_failure(s, key, now, limit)
    raise Unauthorized("Wrong username or password.", code="bad_credentials")


def _refuse_if_locked(s: Session, keys: list[str], now: datetime) -> None:
    for key in keys:
        row = s.get(LoginAttempt, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = int((row.locked_until - now).total_seconds()) + 1
            raise TooManyRequests(
                f"Too many failed sign-ins. Try again in {wait} seconds.",
                code="login_locked",
                details={"retry_after": wait},
            )


def _record_failure(s: Session, key: str, now: datetime, max_failures: int) -> None:
    row = s.get(LoginAttempt, key)
    if row is None:
        row = LoginAttempt(key=key, failures=0)
        s.add(row)
    elif row.last_failure_at is not None and now - row.last_failure_at > _FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    over = row.failures - max_failures
    if over >= 0:
        row.locked_until = now + min(timedelta(seconds=2**over), _MAX_LOCK)
