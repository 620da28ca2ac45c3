"""Assertions and payloads shared by the server tests."""

from __future__ import annotations

import io
import zipfile

import httpx

BACKSTOP_S = 60.0
"""The timeout of a test's HTTP call: a backstop for a server that never answers, far above
any answer's time on a loaded machine, never a measure of speed."""


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    """Check the one error shape; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def make_wheel(name: str = "skil_demo", version: str = "0.1.0", extra: str | None = None) -> bytes:
    """A minimal plugin wheel with a `skil_sdk` entry point."""
    buffer = io.BytesIO()
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/entry_points.txt", f"[skil_sdk]\ndemo = {name}\n")
        if extra:
            archive.writestr(extra, "x")
        archive.writestr(f"{info}/RECORD", "")
    return buffer.getvalue()
