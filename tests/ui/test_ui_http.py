"""The pages over plain HTTP (no browser): session cookies, redirects, escaping, openapi."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.server.ui_routes import safe_next
from skil_sdk.server.ui_session import (
    COOKIE_NAME,
    SESSION_SECONDS,
    new_session_value,
    session_value_is_valid,
)
from skil_sdk.server.ui_views import percent, rate_chart
from skil_sdk.store.jobs import JobStore


def test_session_values_are_signed_and_expire() -> None:
    value = new_session_value("ska_token", now=1000.0)
    assert "ska_token" not in value
    assert session_value_is_valid(value, "ska_token", now=1000.0 + SESSION_SECONDS - 1)
    assert not session_value_is_valid(value, "ska_token", now=1000.0 + SESSION_SECONDS + 1)
    assert not session_value_is_valid(value, "ska_other", now=1000.0)
    tampered = value.rsplit(".", 1)[0] + "." + "0" * 64
    assert not session_value_is_valid(tampered, "ska_token", now=1000.0)
    assert not session_value_is_valid("garbage", "ska_token")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/models", "/ui/models"),
        ("/ui/jobs/job-1", "/ui/jobs/job-1"),
        ("//evil.example/ui/", "/ui/jobs"),
        ("https://evil.example/ui/jobs", "/ui/jobs"),
        ("/ui/login", "/ui/jobs"),
        ("/jobs", "/ui/jobs"),
        (None, "/ui/jobs"),
    ],
)
def test_login_only_sends_you_on_to_a_page_of_this_server(
    target: str | None, expected: str
) -> None:
    assert safe_next(target) == expected


def test_percent_uses_rows_then_tasks() -> None:
    assert percent({"state": "RUNNING", "rows_done": 5, "rows_total": 20}) == 25.0
    assert percent({"state": "RUNNING", "tasks_done": 3, "tasks_total": 4}) == 75.0
    assert percent({"state": "RUNNING"}) == 0.0
    assert percent({"state": "SUCCEEDED"}) == 100.0
    assert str(rate_chart([[0.0, 0], [1.0, 10], [2.0, 30]])).startswith("<svg")
    assert str(rate_chart([[0.0, 0]])) == ""


def test_pages_over_http(ui_server: EmbeddedServer) -> None:
    server = ui_server
    job = JobStore().create(model_id="m", provider="<script>x</script>", output_path="/out")
    JobStore().finish(job.id, "FAILED", error="bad <b>input</b>")
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/ui/jobs").headers["location"] == "/ui/login?next=/ui/jobs"
        refused = browser.post("/ui/login", data={"token": "nope", "next": "/ui/jobs"})
        assert refused.status_code == 401 and COOKIE_NAME not in refused.headers.get(
            "set-cookie", ""
        )
        ok = browser.post("/ui/login", data={"token": server.admin_token, "next": "/ui/models"})
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/models"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert server.admin_token not in cookie
        listing = browser.get("/ui/jobs")
        assert listing.status_code == 200 and "&lt;script&gt;x&lt;/script&gt;" in listing.text
        assert "default-src 'self'" in listing.headers["content-security-policy"]
        page = browser.get(f"/ui/jobs/{job.id}")
        assert "bad &lt;b&gt;input&lt;/b&gt;" in page.text
        assert browser.get("/ui/jobs/no-such-job").status_code == 404
        assert browser.get("/jobs").status_code == 200
        # the cookie works for GET only; other API calls still need the bearer token
        posted = browser.post(f"/jobs/{job.id}/progress", json={"rows_done": 1, "tasks_done": 0})
        assert posted.status_code == 401 and set(posted.json()) == {"error"}
    paths = httpx.get(
        server.url + "/openapi.json", headers={"Authorization": f"Bearer {server.admin_token}"}
    ).json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_pages_without_auth_need_no_login(skil_home: object) -> None:
    with EmbeddedServer(config=ServerConfig(auth=False)) as open_server:
        assert httpx.get(open_server.url + "/ui/jobs").status_code == 200
        assert httpx.get(open_server.url + "/ui/login").status_code == 303


def test_the_jobs_page_shows_the_spark_session(ui_server: EmbeddedServer) -> None:
    from skil_sdk.session.state import RUNNING, SessionState, write_state

    with httpx.Client(base_url=ui_server.url) as browser:
        browser.post("/ui/login", data={"token": ui_server.admin_token, "next": "/ui/jobs"})
        assert "Spark session" not in browser.get("/ui/jobs").text, "none has run here"
        # a record whose process lives (this test's) reads as running
        write_state(
            SessionState(state=RUNNING, pid=os.getpid(), master="spark://head:7077",
                         bundle_hash="ab" * 32, app_id="app-0042", jobs=["job-<1>"],
                         jobs_run=7, idle_timeout_s=1800)
        )  # fmt: skip
        page = browser.get("/ui/jobs").text
        for shown in ("Spark session", "running", "spark://head:7077", "abababababab",
                      "app-0042", 'href="/ui/jobs/job-&lt;1&gt;"', ">7<", "30 m 00 s"):  # fmt: skip
            assert shown in page, shown
        # once its processes are gone without a stop, it says so
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        write_state(SessionState(state=RUNNING, pid=gone.pid, master="local[2]"))
        page = browser.get("/ui/jobs").text
        assert "stopped" in page and "ended without stopping" in page
        warm = JobStore().create(model_id="m", provider="p", details={"session": "warm"})
        assert "(in the long-lived session)" in browser.get(f"/ui/jobs/{warm.id}").text
