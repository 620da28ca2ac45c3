"""Fixtures for the browser tests: Debian's chromium driven by Playwright, a real server.

Chromium runs headless from ``/usr/bin/chromium`` (never a downloaded browser), each
browser context with a fresh profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skil_sdk.server.embedded import EmbeddedServer

CHROMIUM = os.environ.get("SKIL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium under Playwright, for the whole session."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM}: run "
            "`apt-get install chromium` (as root; `./dev test` does it for you)."
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies), laptop-sized."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture()
def ui_server() -> Iterator[EmbeddedServer]:
    """The built-in server (as `skil-sdk serve` runs it) over the current SKIL_HOME."""
    with EmbeddedServer() as server:
        yield server

