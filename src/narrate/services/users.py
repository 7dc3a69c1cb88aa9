"""User accounts and personal API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from narrate.core.text import check_plain_text
from narrate.errors import Conflict, InvalidInput, NotFound
from narrate.services.auth import API_TOKEN_PREFIX, ROLES, hash_password
from narrate.storage.sql.database import Database
from narrate.storage.sql.tables import ApiToken, User, utcnow

__all__ = [
    "MIN_PASSWORD_SCORE",
    "NewToken",
    "check_password",
    "count_users",
    "create_api_token",
    "create_user",
    "ensure_admin",
    "find_user",
    "list_api_tokens",
    "list_users",
    "revoke_api_token",
    "update_user",
    "user_to_dict",
]

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
_MIN_PASSWORD = 8
_MAX_PASSWORD = 200
MIN_PASSWORD_SCORE = 3
"""zxcvbn's score (0-4) a password must reach: 3 means about 10^8 guesses or more."""


@dataclass(frozen=True)
class NewToken:
    """A freshly created API token; ``token`` is shown once and never stored."""

    id: str
    name: str
    token: str
    prefix: str
    expires_at: datetime | None


def user_to_dict(user: User) -> dict[str, Any]:
    """The public view of a user (never the password hash)."""
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "is_active": user.is_active,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"Role '{role}' does not exist. Pick one of: {', '.join(ROLES)}.",
            code="invalid_role",
            details={"parameter": "role", "allowed": list(ROLES)},
        )


def check_password(password: str, username: str = "") -> None:
    """Refuse short, overlong, common or easily guessed passwords.

    Strength is zxcvbn's estimate, which knows common passwords, dictionary words, names,
    keyboard patterns, dates and repeats; the username counts as a known word.

    Args:
        password: The proposed password.
        username: The account's name (a password built from it is weak).

    Raises:
        InvalidInput: ``weak_password``, naming the parameter ``password`` and why.
    """
    details: dict[str, Any] = {"parameter": "password"}
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise InvalidInput(
            f"Parameter 'password' has {len(password)} characters; use {_MIN_PASSWORD} to "
            f"{_MAX_PASSWORD}.",
            code="weak_password",
            details=details,
        )
    result = zxcvbn(password, user_inputs=[username] if username else None)
    if result["score"] < MIN_PASSWORD_SCORE:
        warning = result["feedback"].get("warning") or "it follows a pattern quick to guess"
        why = warning.rstrip(".")
        raise InvalidInput(
            f"Parameter 'password' is too easy to guess: {why[0].lower()}{why[1:]}.",
            code="weak_password",
            hint="Use a longer passphrase of three or four uncommon words, or 12 or more "
            "random characters.",
            details={**details, "score": result["score"], "required_score": MIN_PASSWORD_SCORE},
        )


def create_user(db: Database, username: str, password: str, role: str = "analyst") -> User:
    """Create a user.

    Raises:
        InvalidInput: bad username, weak password (see :func:`check_password`) or unknown
            role.
        Conflict: the username is taken.
    """
    if not _USERNAME.match(username):
        raise InvalidInput(
            f"Username '{username}' is not allowed: use 3-64 letters, digits or . _ @ -.",
            code="invalid_username",
            details={"parameter": "username"},
        )
    check_password(password, username)
    _check_role(role)
    try:
        with db.session() as s:
            user = User(username=username, password_hash=hash_password(password), role=role)
            s.add(user)
            s.flush()
            return user
    except IntegrityError as exc:
        raise Conflict(
            f"The username '{username}' is already taken.",
            code="username_taken",
            details={"parameter": "username"},
        ) from exc


def count_users(db: Database) -> int:
    """How many users exist."""
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(User)) or 0)


def ensure_admin(db: Database) -> tuple[User, str] | None:
    """Create an ``admin`` user with a random password when there are no users at all.

    Returns:
        The new admin and its password (to print once), or None when users exist.
    """
    if count_users(db) > 0:
        return None
    password = secrets.token_urlsafe(16)  # 128 random bits: always passes check_password
    return create_user(db, "admin", password, "admin"), password


def list_users(db: Database) -> list[User]:
    """All users, oldest first."""
    with db.session() as s:
        return list(s.scalars(select(User).order_by(User.created_at)))


def update_user(
    db: Database, user_id: str, *, role: str | None = None, is_active: bool | None = None
) -> User:
    """Change a user's role or deactivate/reactivate them.

    Raises:
        NotFound: no such user.
        InvalidInput: unknown role.
        Conflict: the change would leave no active admin to manage users.
    """
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise NotFound(f"No user with id '{user_id}'.", details={"user_id": user_id})
        if role is not None:
            _check_role(role)
        is_admin_now = user.role == "admin" and user.is_active and user.deleted_at is None
        stays_admin = (role or user.role) == "admin" and (
            user.is_active if is_active is None else is_active
        )
        if is_admin_now and not stays_admin:
            _refuse_if_last_admin(s, user)
        if role is not None:
            user.role = role
        if is_active is not None:
            user.is_active = is_active
        return user


def _refuse_if_last_admin(s: Session, user: User) -> None:
    # Lock the admin rows (PostgreSQL) so two concurrent demotions cannot both pass.
    others = s.scalars(
        select(User.id)
        .where(
            User.role == "admin",
            User.is_active.is_(True),
            User.deleted_at.is_(None),
            User.id != user.id,
        )
        .with_for_update()
    ).first()
    if others is None:
        raise Conflict(
            f"'{user.username}' is the last active admin; demoting or deactivating them "
            "would leave nobody able to manage users.",
            code="last_admin",
            hint="Make another user an admin first, then change this one.",
            details={"user_id": user.id},
        )


def create_api_token(
    db: Database, owner_id: str, name: str, *, expires_in_days: int | None = None
) -> NewToken:
    """Create a personal API token; only its SHA-256 is stored."""
    if not check_plain_text(name, parameter="name").strip() or len(name) > 100:
        raise InvalidInput(
            "A token needs a name of 1-100 characters.",
            code="invalid_token_name",
            details={"parameter": "name"},
        )
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with db.session() as s:
        row = ApiToken(
            owner_id=owner_id,
            name=name.strip(),
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            prefix=token[:10],
            expires_at=expires,
        )
        s.add(row)
        s.flush()
        return NewToken(row.id, row.name, token, row.prefix, expires)


def list_api_tokens(db: Database, owner_id: str) -> list[dict[str, Any]]:
    """The caller's live tokens (never the secret)."""
    with db.session() as s:
        rows = s.scalars(
            select(ApiToken)
            .where(ApiToken.owner_id == owner_id, ApiToken.deleted_at.is_(None))
            .order_by(ApiToken.created_at)
        )
        return [
            {
                "id": r.id,
                "name": r.name,
                "prefix": r.prefix,
                "created_at": r.created_at.isoformat(),
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
            }
            for r in rows
        ]


def revoke_api_token(db: Database, owner_id: str, token_id: str) -> None:
    """Revoke one of the caller's tokens (soft delete)."""
    with db.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None or row.owner_id != owner_id or row.deleted_at is not None:
            raise NotFound(f"No API token with id '{token_id}'.", details={"token_id": token_id})
        row.deleted_at = utcnow()


def find_user(db: Database, username: str | None) -> User:
    """A user by name, or the first admin when ``username`` is None.

    Raises:
        NotFound: no such (active) user, or no admin yet.
    """
    with db.session() as s:
        q = select(User).where(User.deleted_at.is_(None), User.is_active.is_(True))
        if username is None:
            user = s.scalar(q.where(User.role == "admin").order_by(User.created_at).limit(1))
            hint = "Start `narrate serve` once to create the first admin."
        else:
            user = s.scalar(q.where(User.username == username))
            hint = "See `narrate users list`."
        if user is None:
            raise NotFound(f"No active user '{username or 'admin'}'.", hint=hint)
        return user
