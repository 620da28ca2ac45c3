"""Fixtures for server tests: a real server on loopback and a real httpx client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _server_helpers import BACKSTOP_S

from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer


@pytest.fixture
def server(skil_home: Path) -> Iterator[EmbeddedServer]:
    """The built-in server on a free loopback port, with a fresh SKIL_HOME."""
    with EmbeddedServer(config=ServerConfig(max_upload_bytes=8 * 1024 * 1024, max_rows=2048)) as s:
        yield s


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[httpx.Client]:
    """An httpx client carrying the admin token."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=BACKSTOP_S) as c:
        yield c


@pytest.fixture
def anon(server: EmbeddedServer) -> Iterator[httpx.Client]:
    """An httpx client without a token."""
    with httpx.Client(base_url=server.url, timeout=BACKSTOP_S) as c:
        yield c
