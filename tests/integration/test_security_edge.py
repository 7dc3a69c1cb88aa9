"""The web edge refuses hostile requests cheaply and clearly (security review, issue 12).

Bodies: anonymous API writes get 401 before their body is read; JSON/YAML bodies are
capped in size and nesting depth; paging numbers are bounded; a RecursionError is one log
line and a 422; /metrics answers only allow-listed peers or the metrics token.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ADMIN_PASSWORD, login, make_settings
from tests.support.api import upload_sample
from tests.support.servers import AppServer

from narrate.bootstrap import build_container
from narrate.config import Settings
from narrate.errors import InvalidInput
from narrate.services import users
from narrate.web.app import create_app
from narrate.web.deps import MAX_OFFSET
from narrate.web.guard import json_depth_exceeds, measure_yaml

MB = 1024 * 1024


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """These checks sit in front of the database: SQLite is enough."""
    return make_settings(tmp_path, sqlite_url)


def _raw_request(
    server: AppServer, head: str, body_parts: list[bytes], timeout: float = 10
) -> tuple[int, dict[str, Any], float]:
    """Send a hand-made HTTP/1.1 request; returns status, JSON body and seconds taken.

    httpx always sends exactly the body it declares; these tests need to declare one
    thing and send another (a huge Content-Length, a chunked body).
    """
    host, port = server.base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered without waiting for the rest
        response = b""
        while b"\r\n\r\n" not in response or not _complete(response):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    elapsed = time.monotonic() - started
    header, _, payload = response.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(payload), elapsed


def _complete(response: bytes) -> bool:
    header, _, payload = response.partition(b"\r\n\r\n")
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(payload) >= int(value.strip())
    return False


def _token(server: AppServer) -> str:
    with login(server.base_url, "admin", ADMIN_PASSWORD) as c:
        return str(c.headers["authorization"]).removeprefix("Bearer ")


# --- bodies: credentials first, then size ---------------------------------------------


def test_anonymous_api_write_gets_401_before_its_body_is_read(server: AppServer) -> None:
    head = (
        "POST /api/v1/models/compare HTTP/1.1\nHost: t\nContent-Type: application/json\n"
        "Content-Length: 200000000\n"
    )
    status, body, elapsed = _raw_request(server, head, [b'{"model_version_ids": ['])
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"].startswith("Sign in first")
    assert elapsed < 3  # answered from the headers; the 200 MB never had to arrive


def test_anonymous_api_write_with_a_non_bearer_header_gets_401(anon: httpx.Client) -> None:
    r = anon.post("/api/v1/models/compare", json={"x": 1}, headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "bad_auth_header"
    assert r.headers["www-authenticate"] == "Bearer"


def test_sign_in_still_takes_a_body_without_credentials(anon: httpx.Client) -> None:
    r = anon.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text


def test_declared_body_over_the_limit_gets_413_before_it_is_sent(server: AppServer) -> None:
    head = (
        "POST /api/v1/models/compare HTTP/1.1\nHost: t\nContent-Type: application/json\n"
        f"Authorization: Bearer {_token(server)}\nContent-Length: {3 * MB}\n"
    )
    status, body, elapsed = _raw_request(server, head, [b"{"])
    assert status == 413
    err = body["error"]
    assert err["code"] == "body_too_large"
    assert err["message"] == (
        "The request body is 3.0 MB; JSON and YAML bodies are limited to 2 MB."
    )
    assert "NARRATE_MAX_BODY_MB" in err["hint"]
    assert err["details"]["limit_mb"] == 2
    assert elapsed < 3


def test_authenticated_3_mb_json_body_gets_413_naming_the_limit(client: httpx.Client) -> None:
    ids = ["x" * 100] * (3 * MB // 104)
    try:
        r = client.post("/api/v1/models/compare", json={"model_version_ids": ids})
    except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
        pytest.fail(f"the server dropped the connection instead of answering 413: {exc}")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"
    assert "limited to 2 MB" in r.json()["error"]["message"]


def test_chunked_body_over_the_limit_gets_413(server: AppServer) -> None:
    head = (
        "POST /api/v1/models/compare HTTP/1.1\nHost: t\nContent-Type: application/json\n"
        f"Authorization: Bearer {_token(server)}\nTransfer-Encoding: chunked\n"
    )
    piece = b" " * (64 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    parts = [chunk] * (2 * MB // len(piece) + 1) + [b"0\r\n\r\n"]
    status, body, _ = _raw_request(server, head, parts)
    assert status == 413
    assert body["error"]["code"] == "body_too_large"
    assert body["error"]["message"] == (
        "The request body passed the limit; JSON and YAML bodies are limited to 2 MB."
    )


def test_uploads_keep_their_own_larger_limit(client: httpx.Client) -> None:
    rows = "".join(f"{i},{i * 7 % 1000},label-{i % 3}\n" for i in range(170_000))
    data = ("id,value,label\n" + rows).encode()
    assert len(data) > 2 * MB
    r = client.post(
        "/api/v1/datasets",
        params={"filename": "big.csv"},
        content=data,
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text


# --- nesting depth ---------------------------------------------------------------------


def _deep_json(levels: int) -> bytes:
    return ('{"steps": ' + "[" * levels + "]" * levels + "}").encode()


def test_deep_json_recipe_gets_422_not_500(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/datasets/any/recipes/validate",
        content=_deep_json(1000),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "body_too_deep"
    assert err["message"] == "The JSON body nests more than 64 levels deep; the limit is 64 levels."


def test_deep_json_to_sign_in_gets_422_not_500(anon: httpx.Client) -> None:
    r = anon.post(
        "/api/v1/auth/token",
        content=b'{"username": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "body_too_deep"


@pytest.mark.parametrize(
    "document",
    ["steps: " + "[" * 50_000 + "]" * 50_000, "steps:\n" + "- " * 50_000 + "x\n"],
    ids=["flow", "block"],
)
def test_deep_yaml_recipe_gets_422_not_500(
    client: httpx.Client, anon: httpx.Client, document: str
) -> None:
    url, headers = "/api/v1/datasets/any/recipes/validate", {"Content-Type": "application/yaml"}
    assert anon.post(url, content=document, headers=headers).status_code == 401
    r = client.post(url, content=document, headers=headers)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "body_too_deep"
    assert err["message"] == "The YAML body nests more than 64 levels deep; the limit is 64 levels."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b'{"a": "' + b"[" * 500 + b'"}', False),
        (b'{"a": "\\"' + b"{" * 500 + b'"}', False),
    ],
    ids=["at-limit", "over-limit", "brackets-in-string", "escaped-quote-in-string"],
)
def test_json_depth_scan_ignores_strings(text: bytes, expected: bool) -> None:
    assert json_depth_exceeds(text, 64) is expected


def test_yaml_scan_counts_flow_block_and_alias_nesting() -> None:
    shape = measure_yaml("a:\n  b:\n    - [1, {c: 2}]\n", 64, 1000)
    assert (shape.depth, shape.nodes, shape.is_cyclic) == (5, 10, False)
    # An alias counts as the value it names: 2 + the 5 values of {a: [1, 2]}, twice.
    shape = measure_yaml("steps: [&s {a: [1, 2]}, *s]", 64, 1000)
    assert (shape.depth, shape.nodes) == (4, 13)


_ALIAS_CHAIN = "l0: &l0 [x]\n" + "".join(f"l{i}: &l{i} [*l{i - 1}]\n" for i in range(1, 200))
_LAUGHS = "a0: &a0 [x, x]\n" + "".join(
    f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 40)
)


@pytest.mark.parametrize(
    ("document", "status", "message"),
    [
        (
            _ALIAS_CHAIN,
            422,
            "The YAML body nests more than 64 levels deep; the limit is 64 levels.",
        ),
        (
            "steps: &x [*x]",
            422,
            "The YAML body has an alias inside the collection it refers to, which nests "
            "without end; the limit is 64 levels.",
        ),
        (
            _LAUGHS,
            413,
            "The YAML body's aliases expand to more values than 2 MB of text could hold.",
        ),
    ],
    ids=["alias-chain", "alias-cycle", "billion-laughs"],
)
def test_yaml_aliases_cannot_hide_depth_or_size(
    client: httpx.Client, document: str, status: int, message: str
) -> None:
    r = client.post(
        "/api/v1/datasets/any/recipes/validate",
        content=document,
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == ("body_too_deep" if status == 422 else "body_too_large")
    assert err["message"] == message


# --- paging numbers --------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["4295563220067111653749894938624", str(MAX_OFFSET + 1)])
def test_huge_offsets_get_422_naming_the_parameter(client: httpx.Client, offset: str) -> None:
    dataset = upload_sample(client, "penguins.csv", "species")
    for url in ("/api/v1/datasets", f"/api/v1/datasets/{dataset['id']}/rows"):
        r = client.get(url, params={"offset": offset})
        assert r.status_code == 422, (url, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_input"
        assert err["message"].startswith("Parameter 'query.offset' is invalid")
    assert client.get("/api/v1/datasets", params={"offset": MAX_OFFSET}).status_code == 200


# --- RecursionError past the guard -----------------------------------------------------


@pytest.fixture
def recursing_server(container: Any, admin: Any) -> Iterator[AppServer]:
    """The app with one extra route that recurses without end, as a deep input can."""
    app = create_app(container.settings, container)

    def descend(n: int) -> int:
        return descend(n + 1) + 1

    def deep() -> None:
        descend(0)

    app.add_api_route("/api/v1/test-deep", deep)
    srv = AppServer(app).start()
    yield srv
    srv.stop()


def test_recursion_error_is_a_422_with_one_log_line(
    recursing_server: AppServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        r = httpx.get(f"{recursing_server.base_url}/api/v1/test-deep")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "too_deep"
    assert err["message"] == "The input is nested too deeply to process."
    problems = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(problems) == 1
    assert problems[0].exc_info is None
    assert "recursion limit reached at" in problems[0].getMessage()
    assert sys.getrecursionlimit() >= 1000


# --- /metrics --------------------------------------------------------------------------


def test_metrics_answer_loopback_by_default(anon: httpx.Client) -> None:
    r = anon.get("/metrics")
    assert r.status_code == 200
    assert "narrate_http_requests_total" in r.text


@pytest.fixture
def guarded_metrics(tmp_path: Path, sqlite_url: str) -> Iterator[AppServer]:
    """The app with a metrics token and an allow-list that excludes loopback."""
    settings = make_settings(
        tmp_path, sqlite_url, metrics_token="metrics-secret-1", metrics_allow=["10.0.0.0/8"]
    )
    c = build_container(settings)
    c.db.upgrade()
    users.create_user(c.db, "admin", ADMIN_PASSWORD, "admin")
    srv = AppServer(create_app(settings, c)).start()
    yield srv
    srv.stop()
    c.close()


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 403, "metrics_forbidden"),
        ({"Authorization": "Bearer wrong"}, 401, "bad_metrics_token"),
        ({"Authorization": "Basic bWV0cmljcy1zZWNyZXQtMQ=="}, 401, "bad_metrics_token"),
        ({"Authorization": "Bearer metrics-secret-1"}, 200, None),
    ],
    ids=["no-token", "wrong-token", "wrong-scheme", "right-token"],
)
def test_metrics_outside_the_allow_list_need_the_token(
    guarded_metrics: AppServer, headers: dict[str, str], status: int, code: str | None
) -> None:
    r = httpx.get(f"{guarded_metrics.base_url}/metrics", headers=headers)
    assert r.status_code == status
    if code is None:
        assert "narrate_http_requests_total" in r.text
    else:
        assert r.json()["error"]["code"] == code


def test_metrics_allow_list_must_hold_addresses(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, metrics_allow=["localhost"])
    c = build_container(settings)
    try:
        with pytest.raises(InvalidInput, match="NARRATE_METRICS_ALLOW holds an entry"):
            create_app(settings, c)
    finally:
        c.close()
