from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from narrate.errors import Forbidden, TooManyRequests, Unauthorized
from narrate.services import users
from narrate.services.auth import (
    Principal,
    authenticate_password,
    decode_token,
    hash_password,
    issue_token,
    principal_from_api_token,
    principal_from_jwt,
    require_role,
    verify_password,
)
from narrate.storage.sql.database import Database

SECRET = "unit-test-secret-key-long-enough-for-hs256"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    d = Database(f"sqlite:///{tmp_path / 'a.db'}")
    d.upgrade()
    return d


def test_password_hash_is_argon2_and_verifies() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "x")


def test_token_round_trip_carries_user_and_role(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42", "analyst")
    token, claims = issue_token(user, SECRET, ttl=timedelta(minutes=5))
    principal = principal_from_jwt(db, token, SECRET)
    assert principal == Principal(
        user.id, "ana", "analyst", "jwt", None, claims["jti"], claims["exp"]
    )
    assert claims["exp"] - claims["iat"] == 300


def test_expired_token_is_refused(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42")
    past = datetime.now(UTC) - timedelta(hours=2)
    token, _ = issue_token(user, SECRET, ttl=timedelta(minutes=5), now=past)
    with pytest.raises(Unauthorized, match="expired") as err:
        decode_token(token, SECRET)
    assert err.value.code == "token_expired"


def test_token_signed_with_another_key_is_refused(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42")
    token, _ = issue_token(
        user, "another-secret-key-that-is-also-long-enough", ttl=timedelta(minutes=5)
    )
    with pytest.raises(Unauthorized, match="signature") as err:
        decode_token(token, SECRET)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("claim", ["sub", "exp", "role", "typ"], ids=lambda c: f"without-{c}")
def test_token_missing_a_required_claim_is_refused(claim: str) -> None:
    now = datetime.now(UTC)
    claims = {
        "sub": "x",
        "role": "admin",
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    del claims[claim]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match=claim) as err:
        decode_token(token, SECRET)
    assert err.value.code == "missing_claim"


def test_session_token_is_not_accepted_as_api_token(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42")
    token, _ = issue_token(user, SECRET, ttl=timedelta(minutes=5), typ="session")
    with pytest.raises(Unauthorized, match="session token"):
        decode_token(token, SECRET, typ="access")


@pytest.mark.parametrize(
    ("role", "minimum", "allowed"),
    [
        ("viewer", "analyst", False),
        ("analyst", "analyst", True),
        ("analyst", "admin", False),
        ("admin", "analyst", True),
    ],
    ids=["viewer-vs-analyst", "analyst-vs-analyst", "analyst-vs-admin", "admin-vs-analyst"],
)
def test_role_checks(role: str, minimum: str, allowed: bool) -> None:
    p = Principal("id", "u", role, "jwt")
    if allowed:
        require_role(p, minimum)
    else:
        with pytest.raises(Forbidden, match=f"'{minimum}' role"):
            require_role(p, minimum)


def test_revoked_api_token_is_refused(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42")
    new = users.create_api_token(db, user.id, "laptop")
    assert new.token.startswith("nrt_")
    assert principal_from_api_token(db, new.token).username == "ana"
    users.revoke_api_token(db, user.id, new.id)
    with pytest.raises(Unauthorized, match="revoked") as err:
        principal_from_api_token(db, new.token)
    assert err.value.code == "token_revoked"


def test_api_token_is_stored_only_as_a_hash(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42")
    new = users.create_api_token(db, user.id, "ci")
    listed = users.list_api_tokens(db, user.id)
    assert listed[0]["prefix"] == new.token[:10]
    assert new.token not in str(listed)


def test_deactivated_user_tokens_stop_working(db: Database) -> None:
    user = users.create_user(db, "ana", "plum-kettle-42")
    token, _ = issue_token(user, SECRET, ttl=timedelta(minutes=5))
    users.update_user(db, user.id, is_active=False)
    with pytest.raises(Unauthorized, match="deactivated"):
        principal_from_jwt(db, token, SECRET)


def test_repeated_failed_logins_back_off(db: Database) -> None:
    users.create_user(db, "ana", "plum-kettle-42")
    now = datetime.now(UTC)  # one instant: the first lock (1 s) outlasts a slow argon2 check
    for _ in range(3):
        with pytest.raises(Unauthorized, match="Wrong username or password"):
            authenticate_password(db, "ana", "nope", client_ip="10.0.0.1", max_failures=3, now=now)
    with pytest.raises(TooManyRequests, match="Try again in") as err:
        authenticate_password(
            db, "ana", "plum-kettle-42", client_ip="10.0.0.1", max_failures=3, now=now
        )
    assert err.value.details["retry_after"] >= 1


def test_successful_login_clears_the_user_counter(db: Database) -> None:
    users.create_user(db, "ana", "plum-kettle-42")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            authenticate_password(db, "ana", "nope", client_ip="ip", max_failures=3)
    assert authenticate_password(db, "ana", "plum-kettle-42", client_ip="ip", max_failures=3)


@pytest.mark.parametrize(
    ("username", "password", "role", "code"),
    [
        ("a", "plum-kettle-42", "analyst", "invalid_username"),
        ("ana", "short", "analyst", "weak_password"),
        ("ana", "plum-kettle-42", "superuser", "invalid_role"),
    ],
    ids=["short-username", "short-password", "unknown-role"],
)
def test_bad_user_input_is_refused_naming_the_parameter(
    db: Database, username: str, password: str, role: str, code: str
) -> None:
    from narrate.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        users.create_user(db, username, password, role)
    assert err.value.code == code


def test_duplicate_username_conflicts(db: Database) -> None:
    from narrate.errors import Conflict

    users.create_user(db, "ana", "plum-kettle-42")
    with pytest.raises(Conflict, match="already taken"):
        users.create_user(db, "ana", "plum-kettle-43")
