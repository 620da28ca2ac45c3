"""Login in a real browser: pages redirect without a session, a wrong token is refused,
the right one gives an HttpOnly, SameSite=Strict cookie that never holds the token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _ui_helpers import login, screenshot

from skil_sdk.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow

PAGES = ("/ui/jobs", "/ui/models", "/ui/plugins", "/ui/jobs/job-20260101-000000-abcdef")


def test_pages_redirect_to_the_login_page_without_a_session(
    page: Any, ui_server: EmbeddedServer
) -> None:
    for path in PAGES:
        response = page.goto(ui_server.url + path)
        assert page.url == f"{ui_server.url}/ui/login?next={path}"
        assert response.request.redirected_from.response().status == 303
        assert page.locator("h1").inner_text() == "Log in"
    page.goto(ui_server.url + "/ui")
    assert page.url.startswith(f"{ui_server.url}/ui/login?next=/ui/jobs")
    screenshot(page, "ui-login.png")
    with httpx.Client(base_url=ui_server.url) as anon:
        assert anon.get("/healthz").status_code == 200
        refused = anon.get("/jobs")
        assert refused.status_code == 401 and set(refused.json()) == {"error"}


def test_a_wrong_token_is_refused_and_the_right_one_logs_in(
    page: Any, ui_server: EmbeddedServer
) -> None:
    wrong = login(page, ui_server, token="ska_not-the-token")
    assert wrong.status == 401
    assert "not the server's admin token" in page.locator(".alert").inner_text()
    assert page.context.cookies() == []
    page.goto(ui_server.url + "/ui/models")
    assert "/ui/login?next=/ui/models" in page.url

    right = login(page, ui_server, here=True)
    assert right.status == 303
    assert page.url == ui_server.url + "/ui/models"
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ui_server.admin_token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    # the pages' scripts read the JSON API with the cookie (GET only)
    status = page.evaluate("fetch('/jobs').then(r => r.status)")
    assert status == 200
    posted = page.evaluate(
        "fetch('/jobs/x/progress', {method: 'POST', headers: {'Content-Type': "
        "'application/json'}, body: '{\"rows_done\": 1, \"tasks_done\": 0}'}).then(r => r.status)"
    )
    assert posted == 401

    page.click("form.logout button")
    page.wait_for_url("**/ui/login")
    assert page.context.cookies() == []
    page.goto(ui_server.url + "/ui/jobs")
    assert "/ui/login?next=/ui/jobs" in page.url
