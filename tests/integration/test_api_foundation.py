"""The API's conventions over real HTTP: auth, users, tokens, errors, headers, health."""

from __future__ import annotations

import httpx
from tests.conftest import ADMIN_PASSWORD, login
from tests.support.servers import AppServer


def test_unauthenticated_api_call_gets_401_json(anon: httpx.Client) -> None:
    r = anon.get("/api/v1/jobs")
    assert r.status_code == 401
    body = r.json()["error"]
    assert body["code"] == "unauthorized"
    assert "Sign in" in body["message"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_token_from_password_then_me(anon: httpx.Client) -> None:
    r = anon.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    me = anon.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "admin" and me.json()["role"] == "admin"


def test_wrong_password_gets_401_and_then_429(anon: httpx.Client) -> None:
    for _ in range(5):
        r = anon.post("/api/v1/auth/token", json={"username": "admin", "password": "wrong-one"})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "bad_credentials"
    r = anon.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1


def test_missing_credentials_name_the_parameter(anon: httpx.Client) -> None:
    r = anon.post("/api/v1/auth/token", json={"username": "admin"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["parameters"] == ["password"]


def test_admin_manages_users_and_roles_are_enforced(
    client: httpx.Client, server: AppServer
) -> None:
    r = client.post(
        "/api/v1/users", json={"username": "vera", "password": "viewer-pass-1", "role": "viewer"}
    )
    assert r.status_code == 201
    vera_id = r.json()["id"]
    assert "password_hash" not in r.json()
    assert r.json()["role"] == "viewer"
    with login(server.base_url, "vera", "viewer-pass-1") as vera:
        denied = vera.get("/api/v1/users")
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        assert "'admin' role" in denied.json()["error"]["message"]
    r = client.patch(f"/api/v1/users/{vera_id}", json={"role": "analyst"})
    assert r.json()["role"] == "analyst"
    r = client.patch(f"/api/v1/users/{vera_id}", json={"is_active": False})
    assert r.json()["is_active"] is False
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        json={"username": "vera", "password": "viewer-pass-1"},
    )
    assert r.status_code == 401
    listed = client.get("/api/v1/users").json()["items"]
    assert {u["username"] for u in listed} == {"admin", "vera"}


def test_duplicate_user_is_409_and_bad_role_is_422(client: httpx.Client) -> None:
    client.post("/api/v1/users", json={"username": "dup", "password": "password-1"})
    r = client.post("/api/v1/users", json={"username": "dup", "password": "password-1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "username_taken"
    r = client.post(
        "/api/v1/users", json={"username": "x2y", "password": "password-1", "role": "boss"}
    )
    assert r.status_code == 422
    assert "body.role" in r.json()["error"]["message"]


def test_api_tokens_are_shown_once_work_and_can_be_revoked(
    client: httpx.Client, server: AppServer
) -> None:
    r = client.post("/api/v1/me/tokens", json={"name": "script"})
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    listed = client.get("/api/v1/me/tokens").json()["items"]
    assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.base_url}/api/v1/me", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/me/tokens/{token_id}").status_code == 204
    r = httpx.get(f"{server.base_url}/api/v1/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def test_errors_use_one_envelope_with_request_id(client: httpx.Client) -> None:
    r = client.get("/api/v1/jobs/does-not-exist", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "req-123"
    err = r.json()["error"]
    assert set(err) >= {"code", "message", "details", "hint", "request_id"}
    assert err["request_id"] == "req-123"
    assert "does-not-exist" in err["message"]


def test_unknown_route_is_404_json(client: httpx.Client) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_api_version_negotiation(client: httpx.Client) -> None:
    ok = client.get("/api/v1/me", headers={"Accept": "application/vnd.narrate.v1+json"})
    assert ok.status_code == 200
    bad = client.get("/api/v1/me", headers={"Accept": "application/vnd.narrate.v2+json"})
    assert bad.status_code == 406
    assert bad.json()["error"]["code"] == "unsupported_api_version"


def test_security_headers_on_every_response(anon: httpx.Client) -> None:
    r = anon.get("/health/live")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "strict-transport-security" not in r.headers
    https = anon.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert "max-age" in https.headers["strict-transport-security"]


def test_cors_is_off_by_default(anon: httpx.Client) -> None:
    r = anon.options(
        "/api/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_health_live_and_ready_check_real_dependencies(anon: httpx.Client) -> None:
    assert anon.get("/health/live").json() == {"status": "ok"}
    r = anon.get("/health/ready")
    assert r.status_code == 200
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert set(checks) == {"database", "artifact_store"}
    assert all(c["status"] == "ok" and c["latency_ms"] >= 0 for c in checks.values())


def test_metrics_count_requests_by_route_template(client: httpx.Client, anon: httpx.Client) -> None:
    client.get("/api/v1/jobs/abc")
    client.get("/api/v1/jobs/def")
    text = anon.get("/metrics").text
    assert (
        'narrate_http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="404"} 2.0'
        in text
    )
    assert "narrate_http_request_duration_seconds_bucket" in text


def test_openapi_and_docs_are_served(anon: httpx.Client) -> None:
    spec = anon.get("/api/v1/openapi.json").json()
    assert "/api/v1/auth/token" in spec["paths"]
    assert anon.get("/docs").status_code == 200


def test_readiness_fails_with_details_when_the_store_is_gone(
    server: AppServer, anon: httpx.Client
) -> None:
    import shutil
    from pathlib import Path

    app_container = server.server.config.app.state.container  # type: ignore[attr-defined]
    root = Path(app_container.blobs.url)
    shutil.rmtree(root)
    root.write_text("not a folder any more")
    try:
        r = anon.get("/health/ready")
        assert r.status_code == 503
        store = next(c for c in r.json()["checks"] if c["name"] == "artifact_store")
        assert store["status"] == "failed" and store["error"]
    finally:
        root.unlink()
        root.mkdir()
