"""Helpers for the browser tests: log in, save screenshots, run the CLI, wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skil_sdk.server.embedded import EmbeddedServer

REPO_ROOT = Path(__file__).resolve().parents[2]
IMG_DIR = REPO_ROOT / "docs" / "img"
SKIL = str(Path(sys.executable).with_name("skil-sdk"))


def login(page: Any, server: EmbeddedServer, token: str | None = None, here: bool = False) -> Any:
    """Log in through the form (on the page shown when ``here``); return the POST's response."""
    if not here:
        page.goto(server.url + "/ui/login")
    page.fill("#token", token if token is not None else server.admin_token)
    with page.expect_response(lambda r: r.url.endswith("/ui/login")) as posted:
        page.click("button[type=submit]")
    page.wait_for_load_state()
    return posted.value


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``docs/img/<name>``."""
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    target = IMG_DIR / name
    page.screenshot(path=str(target), full_page=True)
    return target


def skil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``--json`` in the current environment."""
    command = [SKIL, *args, "--json"]
    return subprocess.run(
        command, capture_output=True, text=True, env=dict(os.environ), timeout=timeout
    )


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it is truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
