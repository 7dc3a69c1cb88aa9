"""The API's conventions over real HTTP: auth, users, tokens, errors, headers, health."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ADMIN_PASSWORD, login, make_settings
from tests.support.servers import AppServer

from narrate.bootstrap import build_container
from narrate.services import users
from narrate.web.api import auth as auth_api
from narrate.web.api import users as users_api
from narrate.web.app import create_app
from narrate.web.pages import routes as pages


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


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(
    client: httpx.Client, admin: Any
) -> None:
    for change in (
        {"role": "analyst"},
        {"is_active": False},
        {"role": "viewer", "is_active": True},
    ):
        r = client.patch(f"/api/v1/users/{admin.id}", json=change)
        assert r.status_code == 409, change
        err = r.json()["error"]
        assert err["code"] == "last_admin"
        assert err["message"].startswith("'admin' is the last active admin")
        assert "another user an admin" in err["hint"]
    assert client.get("/api/v1/me").json()["role"] == "admin"
    # Harmless changes to the last admin still work.
    assert client.patch(f"/api/v1/users/{admin.id}", json={"role": "admin"}).status_code == 200
    # An inactive admin does not count as a second admin.
    r = client.post(
        "/api/v1/users", json={"username": "ada", "password": "admin-pass-2", "role": "admin"}
    )
    ada = r.json()["id"]
    assert client.patch(f"/api/v1/users/{ada}", json={"is_active": False}).status_code == 200
    assert client.patch(f"/api/v1/users/{admin.id}", json={"role": "analyst"}).status_code == 409
    # With another active admin, the first one can step down.
    assert client.patch(f"/api/v1/users/{ada}", json={"is_active": True}).status_code == 200
    r = client.patch(f"/api/v1/users/{admin.id}", json={"role": "analyst"})
    assert r.status_code == 200 and r.json()["role"] == "analyst"


@pytest.mark.parametrize(
    "endpoint",
    [auth_api.token, pages.login_submit, users_api.create_user, users_api.patch_user],
    ids=["api-token", "login-form", "create-user", "patch-user"],
)
def test_password_and_sql_endpoints_are_sync_so_they_run_in_the_thread_pool(
    endpoint: Any,
) -> None:
    # FastAPI runs plain ``def`` endpoints in its thread pool; argon2 must not block the loop.
    assert callable(endpoint) and not inspect.iscoroutinefunction(endpoint)


def test_logins_are_served_while_other_requests_keep_flowing(
    server: AppServer, anon: httpx.Client
) -> None:
    import concurrent.futures

    def sign_in() -> int:
        body = {"username": "admin", "password": ADMIN_PASSWORD}
        return httpx.post(f"{server.base_url}/api/v1/auth/token", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        logins = [pool.submit(sign_in) for _ in range(4)]
        assert anon.get("/health/live").status_code == 200
        assert [f.result() for f in logins] == [200] * 4


def test_duplicate_user_is_409_and_bad_role_is_422(client: httpx.Client) -> None:
    client.post("/api/v1/users", json={"username": "dup", "password": "maple-anchor-17"})
    r = client.post("/api/v1/users", json={"username": "dup", "password": "maple-anchor-17"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "username_taken"
    r = client.post(
        "/api/v1/users", json={"username": "x2y", "password": "maple-anchor-17", "role": "boss"}
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


def test_unknown_api_version_406_uses_the_error_envelope_with_request_id(
    anon: httpx.Client,
) -> None:
    r = anon.get(
        "/api/v1/me",
        headers={"Accept": "application/vnd.narrate.v7+json", "X-Request-ID": "ver-406"},
    )
    assert r.status_code == 406
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-request-id"] == "ver-406"
    assert r.headers["x-frame-options"] == "DENY"
    err = r.json()["error"]
    assert set(err) == {"code", "message", "hint", "details", "request_id"}
    assert err["request_id"] == "ver-406"
    assert err["message"].startswith("API version 7 is not served here")
    assert err["details"] == {"requested": "7", "supported": ["1"]}


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


@pytest.fixture
def cors_server(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppServer]:
    """The app with NARRATE_CORS_ORIGINS listing two origins."""
    monkeypatch.setenv("NARRATE_CORS_ORIGINS", "https://app.example, https://ops.example")
    settings = make_settings(tmp_path, sqlite_url)
    assert settings.cors_origins == ["https://app.example", "https://ops.example"]
    c = build_container(settings)
    c.db.upgrade()
    users.create_user(c.db, "admin", ADMIN_PASSWORD, "admin")
    srv = AppServer(create_app(settings, c)).start()
    yield srv
    srv.stop()
    c.close()


_PREFLIGHT = {
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


@pytest.mark.parametrize("origin", ["https://app.example", "https://ops.example"])
def test_cors_allows_listed_origins_on_preflight_and_requests(
    cors_server: AppServer, origin: str
) -> None:
    with httpx.Client(base_url=cors_server.base_url) as http:
        pre = http.options("/api/v1/me", headers={"Origin": origin, **_PREFLIGHT})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == origin
        assert "GET" in pre.headers["access-control-allow-methods"]
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        assert pre.headers["x-request-id"]  # still passes through our middleware
        r = http.get("/health/live", headers={"Origin": origin})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        denied = http.get("/api/v1/me", headers={"Origin": origin})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == origin


def test_cors_refuses_unlisted_origins(cors_server: AppServer) -> None:
    evil = "https://evil.example"
    with httpx.Client(base_url=cors_server.base_url) as http:
        pre = http.options("/api/v1/me", headers={"Origin": evil, **_PREFLIGHT})
        assert pre.status_code == 400
        assert "access-control-allow-origin" not in pre.headers
        r = http.get("/health/live", headers={"Origin": evil})
        assert r.status_code == 200
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


def test_docs_page_works_offline_under_the_csp(anon: httpx.Client) -> None:
    r = anon.get("/docs")
    assert r.status_code == 200
    html = r.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert urls, html
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "http://" not in html and "https://" not in html
    for url in [*urls, "/api/v1/openapi.json"]:
        asset = anon.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    js = next(u for u in urls if u.endswith("swagger-ui-bundle.js"))
    assert "javascript" in anon.get(js).headers["content-type"]
    # Every inline script carries the nonce the page's CSP allows; nothing else runs.
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce.group(1)}"' in attrs for attrs in inline)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    # A fresh nonce per response.
    assert anon.get("/docs").headers["content-security-policy"] != csp


def test_log_records_during_a_request_carry_its_request_id(
    anon: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="narrate.http"):
        r = anon.get("/health/live", headers={"X-Request-ID": "log-me-42"})
        generated = anon.get("/health/live")
    assert r.headers["x-request-id"] == "log-me-42"
    ids = {getattr(rec, "request_id", None) for rec in caplog.records if rec.name == "narrate.http"}
    assert "log-me-42" in ids
    assert generated.headers["x-request-id"] in ids
    # Outside a request, records still carry the attribute so the serve format never fails.
    logging.getLogger("narrate.test").warning("outside")
    assert caplog.records[-1].request_id == "-"  # type: ignore[attr-defined]


def test_serve_log_format_prints_the_request_id() -> None:
    from narrate.cli import SERVE_LOG_FORMAT

    record = logging.LogRecord("narrate.http", logging.INFO, __file__, 1, "GET /x", None, None)
    record.request_id = "abc123"
    assert "[abc123] GET /x" in logging.Formatter(SERVE_LOG_FORMAT).format(record)


@pytest.fixture
def crashing_server(container: Any, admin: Any) -> Iterator[AppServer]:
    """The app with one extra route that fails the way a bug does."""
    app = create_app(container.settings, container)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/test-boom", boom)
    srv = AppServer(app).start()
    yield srv
    srv.stop()


def test_crash_log_and_500_response_name_the_request_id(
    crashing_server: AppServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="narrate.web.errors"):
        r = httpx.get(
            f"{crashing_server.base_url}/api/v1/test-boom", headers={"X-Request-ID": "crash-7"}
        )
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "crash-7"
    err = r.json()["error"]
    assert err["code"] == "internal_error" and err["request_id"] == "crash-7"
    crash = [rec for rec in caplog.records if rec.name == "narrate.web.errors"]
    assert len(crash) == 1
    assert crash[0].request_id == "crash-7"  # type: ignore[attr-defined]
    assert "crash-7" in crash[0].getMessage() and crash[0].exc_info is not None
    metrics = httpx.get(f"{crashing_server.base_url}/metrics").text
    assert 'route="/api/v1/test-boom",status="500"} 1.0' in metrics


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


def test_login_form_sets_the_session_cookie_or_shows_the_error(anon: httpx.Client) -> None:
    form = anon.get("/login").text  # sets the form's CSRF cookie
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    ok = anon.post(
        "/login",
        data={
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "next": "/stages/train",
            "csrf_token": csrf.group(1),
        },
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/stages/train"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith("narrate_session=") and "HttpOnly" in cookie
    anon.cookies.delete("narrate_session")
    form = anon.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    bad = anon.post(
        "/login",
        data={"username": "admin", "password": "nope-nope", "csrf_token": csrf.group(1)},
    )
    assert bad.status_code == 401
    assert "text/html" in bad.headers["content-type"]
    assert 'name="username"' in bad.text
