"""The admin token in ``SKIL_HOME/server.token`` (standard library only: the session's
driver, inside the bundle, checks it without the server's dependencies)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from skil_sdk.home import file_lock, skil_home
from skil_sdk.storage import atomic_write_text

TOKEN_FILE = "server.token"
TOKEN_ENV = "SKIL_SERVER_TOKEN"


def token_path() -> Path:
    """``SKIL_HOME/server.token``."""
    return skil_home() / TOKEN_FILE


def load_or_create_admin_token() -> str:
    """The admin token, created (mode 0600, the token alone on one line) on first use."""
    path = token_path()
    with file_lock("server-token"):
        if path.is_file():
            token = path.read_text().strip()
            if token:
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o600)
                return token
        token = "ska_" + secrets.token_urlsafe(32)
        atomic_write_text(path, token + "\n", mode=0o600)
        return token
