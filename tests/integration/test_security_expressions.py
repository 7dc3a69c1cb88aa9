"""Filters and recipe expressions through the API: comment tricks, limits, no file reads."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ADMIN_PASSWORD, SAMPLES, login, make_settings
from tests.support.servers import AppServer

from narrate.bootstrap import build_container
from narrate.services import users

SECRET = "TOPSECRET_signing_key_line"
BYPASS = "species = 'x' /* ' */ OR island IN (SELECT zzz FROM read_csv('{p}')) /* ' */"


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[httpx.Client]:
    """The app with small expression limits, so the 422s are cheap to reach."""
    settings = make_settings(
        tmp_path, database_url, max_expression_chars=200, max_expression_depth=6
    )
    container = build_container(settings)
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    from narrate.web.app import create_app

    server = AppServer(create_app(settings, container)).start()
    try:
        with login(server.base_url, "admin", ADMIN_PASSWORD) as client:
            yield client
    finally:
        server.stop()
        container.close()


def _secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret_key"
    path.write_text(f"{SECRET}\n")
    os.utime(path, (1, time.time()))  # any read moves the access time (relatime)
    return path


def _penguins(client: httpx.Client) -> dict[str, Any]:
    r = client.post(
        "/api/v1/datasets", files={"file": ("p.csv", (SAMPLES / "penguins.csv").read_bytes())}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.parametrize(
    "template",
    [
        BYPASS,
        "species = 'x' -- '\n OR island IN (SELECT column_1 FROM read_csv('{p}'))",
        "species = 'x\\' OR island IN (SELECT column_1 FROM read_csv('{p}')) OR species = '",
    ],
    ids=["block-comment", "line-comment", "backslash"],
)
def test_rows_filter_comment_bypass_reads_nothing(
    client: httpx.Client, tmp_path: Path, template: str
) -> None:
    secret = _secret_file(tmp_path)
    d = _penguins(client)
    for path in (secret, tmp_path / "does-not-exist.csv"):
        r = client.get(
            f"/api/v1/datasets/{d['id']}/rows", params={"filter": template.format(p=path)}
        )
        error = r.json()["error"]
        assert error["details"]["parameter"] == "filter"
        if "\\'" in template:  # an odd number of quotes for a parser without \ escapes
            assert (r.status_code, error["code"]) == (422, "invalid_expression"), r.text
        else:
            assert (r.status_code, error["code"]) == (400, "forbidden_expression"), r.text
            assert "sub-query" in error["message"]
        assert SECRET not in r.text
    assert os.stat(secret).st_atime == 1, "the server read the file"


@pytest.mark.parametrize("step", ["filter", "derive"])
def test_recipe_expressions_with_the_bypass_are_refused_everywhere(
    client: httpx.Client, tmp_path: Path, step: str
) -> None:
    secret = _secret_file(tmp_path)
    d = _penguins(client)
    body: dict[str, Any] = {"step": step, "expression": BYPASS.format(p=secret)}
    if step == "derive":
        body["name"] = "leak"
    checked = client.post(
        f"/api/v1/datasets/{d['id']}/recipes/validate", json={"steps": [body]}
    ).json()
    assert [(i["code"], i["parameter"]) for i in checked["issues"]] == [
        ("forbidden_expression", "expression")
    ]
    for action in ("preview", "apply"):
        r = client.post(f"/api/v1/datasets/{d['id']}/recipes/{action}", json={"steps": [body]})
        assert r.status_code in (400, 422), (action, r.text)
        assert SECRET not in r.text
    assert len(client.get(f"/api/v1/datasets/{d['id']}/versions").json()["items"]) == 1
    assert os.stat(secret).st_atime == 1, "the server read the file"


def test_long_and_deep_expressions_get_a_422_naming_the_setting(limited: httpx.Client) -> None:
    d = _penguins(limited)
    url = f"/api/v1/datasets/{d['id']}/rows"
    cases = [
        (" OR ".join(f"year = {y}" for y in range(2000, 2040)), "expression_too_long"),
        ("abs(" * 7 + "year" + ")" * 7 + " > 1", "expression_too_deep"),
    ]
    for expression, code in cases:
        r = limited.get(url, params={"filter": expression})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == code
        assert error["details"]["parameter"] == "filter"
        assert error["details"]["setting"].startswith("NARRATE_MAX_EXPRESSION_")
    ok = limited.get(url, params={"filter": "abs(abs(year)) > 2008", "limit": 1})
    assert ok.status_code == 200, ok.text


def test_ten_thousand_ors_leave_the_server_answering(client: httpx.Client) -> None:
    d = _penguins(client)
    expression = " OR ".join(f"year = {i}" for i in range(10_000))  # ~120 KB
    r = client.post(
        f"/api/v1/datasets/{d['id']}/recipes/validate",
        json={"steps": [{"step": "filter", "expression": expression}]},
    )
    assert r.status_code in (200, 413, 422), r.text
    if r.status_code == 200:
        assert [i["code"] for i in r.json()["issues"]] == ["expression_too_long"]
    assert client.get(f"/api/v1/datasets/{d['id']}").status_code == 200
