"""Publishing a plugin wheel to a remote skil-sdk server (``skil-sdk publish --server``).

The server takes ``POST /plugins`` with the wheel as the multipart field ``file`` and a
bearer token from ``$SKIL_SERVER_TOKEN`` or ``SKIL_HOME/server.token``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skil_sdk.errors import AuthError, ConflictError, InvalidValueError, SkilError
from skil_sdk.store.plugins import PublishedPlugin, PublishResult


def server_token() -> str | None:
    """The bearer token: ``$SKIL_SERVER_TOKEN``, else ``SKIL_HOME/server.token``, else None."""
    token = os.environ.get("SKIL_SERVER_TOKEN")
    if token:
        return token.strip()
    from skil_sdk.home import skil_home

    path = skil_home() / "server.token"
    return path.read_text().strip() if path.is_file() else None


def publish_remote(
    wheel: Path,
    server: str,
    *,
    token: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PublishResult:
    """Upload ``wheel`` to ``server``'s plugin store and return what it recorded."""
    import httpx

    from skil_sdk.storage import sha256_file
    from skil_sdk.wheelinfo import read_wheel

    info = read_wheel(wheel)
    token = token or server_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = server.rstrip("/") + "/plugins"
    if progress:
        progress(f"Uploading {wheel.name} to {url}")
    try:
        with wheel.open("rb") as handle:
            response = httpx.post(
                url,
                files={"file": (wheel.name, handle, "application/octet-stream")},
                headers=headers,
                timeout=300,
            )
    except httpx.HTTPError as exc:
        raise InvalidValueError(
            f"Cannot reach the server at {server} ({exc}); check --server and that the server runs."
        ) from exc
    body = _json(response)
    if response.status_code >= 400:
        raise _error(response.status_code, body, server)
    data = body.get("plugin", body) if isinstance(body, dict) else {}
    plugin = PublishedPlugin(
        name=str(data.get("name", info.name)),
        version=str(data.get("version", info.version)),
        sha256=str(data.get("sha256", sha256_file(wheel))),
        filename=str(data.get("filename", wheel.name)),
        path=Path(str(data.get("path", wheel))),
        entry_points=dict(data.get("entry_points", info.plugin_entry_points)),
        requires_dist=tuple(data.get("requires_dist", info.requires_dist)),
        published_at=str(data.get("published_at", "")),
    )
    return PublishResult(plugin, published=bool(body.get("published", True)))


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(status: int, body: dict[str, Any], server: str) -> SkilError:
    message = str(body.get("error", {}).get("message", "")) or f"HTTP {status}"
    if status in (401, 403):
        return AuthError(
            f"The server at {server} refused the upload ({message}); set SKIL_SERVER_TOKEN or "
            "write the token to SKIL_HOME/server.token."
        )
    if status == 409:
        return ConflictError(message)
    return SkilError(f"The server at {server} refused the upload: {message}")
