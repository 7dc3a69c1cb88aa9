"""The UI shell in real Chromium: sign in, see the eight stages, manage tokens, sign out."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import ADMIN_PASSWORD
from tests.support.servers import AppServer

pytestmark = pytest.mark.e2e

STAGES = ["Upload", "Clean", "Transform", "Train", "Evaluate", "Deploy", "Monitor", "Interpret"]


def sign_in(page: Any, base_url: str, password: str = ADMIN_PASSWORD, *, goto: bool = True) -> None:
    if goto:
        page.goto(base_url + "/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_login_see_eight_stages_and_logout(page: Any, server: AppServer) -> None:
    page.goto(server.base_url + "/stages/train")
    assert "/login" in page.url
    sign_in(page, server.base_url, goto=False)
    page.wait_for_url("**/stages/train")
    links = page.locator("nav.stages a.stage-link")
    assert [t.split(" ", 1)[1].strip() for t in links.all_inner_texts()] == STAGES
    for slug in ("deploy", "monitor", "interpret"):
        page.click(f"nav.stages a[data-stage={slug}]")
        page.wait_for_url(f"**/stages/{slug}")
        assert page.locator("[data-testid=empty-state]").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "narrate_session")
    assert cookie["httpOnly"] is True
    page.click("details.user-menu summary")
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto(server.base_url + "/stages/upload")
    assert "/login" in page.url


def test_wrong_password_shows_an_error(page: Any, server: AppServer) -> None:
    sign_in(page, server.base_url, password="not-the-password")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."


def test_api_token_created_in_the_ui_is_shown_once(page: Any, server: AppServer) -> None:
    import httpx

    sign_in(page, server.base_url)
    page.click("details.user-menu summary")
    page.click("text=API tokens")
    page.fill("input[name=name]", "from the browser")
    page.click("text=Create token")
    token = page.locator("[data-testid=new-token] code").inner_text()
    r = httpx.get(server.base_url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["username"] == "admin"
    page.goto(server.base_url + "/account/tokens")
    assert page.locator("[data-testid=new-token]").count() == 0
    assert token not in page.content()


def test_cookie_post_without_csrf_token_is_refused(page: Any, server: AppServer) -> None:
    sign_in(page, server.base_url)
    page.wait_for_url("**/stages/upload")
    r = page.request.post(server.base_url + "/account/tokens", form={"name": "forged"})
    assert r.status == 403
    assert "security token" in r.text()
