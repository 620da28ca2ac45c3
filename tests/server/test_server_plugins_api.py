"""Plugin routes: a wheel upload publishes it; unsafe or oversized uploads are refused."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from _server_helpers import assert_error

import skil_sdk.store.plugins  # noqa: F401  (the routes use it)


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


def _post(client: httpx.Client, filename: str, data: bytes) -> httpx.Response:
    return client.post("/plugins", files={"file": (filename, data, "application/zip")})


def test_upload_publishes_and_lists(client: httpx.Client) -> None:
    response = _post(client, "skil_demo-0.1.0-py3-none-any.whl", make_wheel())
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "skil_demo" and response.json()["version"] == "0.1.0"
    assert "path" not in response.json()
    listed = client.get("/plugins").json()["plugins"]
    assert [(p["name"], p["version"]) for p in listed] == [("skil_demo", "0.1.0")]


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("notes.txt", b"hello"),
        ("../../evil-0.1-py3-none-any.whl", make_wheel()),
        ("skil_demo-0.1.0-py3-none-any.whl", b"not a zip"),
        ("skil_demo-0.1.0-py3-none-any.whl", make_wheel(extra="../../escape.py")),
        ("skil_demo-0.1.0-py3-none-any.whl", make_wheel(extra="/etc/cron.d/evil")),
    ],
)
def test_bad_uploads_are_refused(client: httpx.Client, filename: str, data: bytes) -> None:
    assert_error(_post(client, filename, data), 400)
    assert client.get("/plugins").json()["plugins"] == []


def test_oversized_wheel_is_a_413(client: httpx.Client) -> None:
    big = make_wheel(extra="skil_demo/blob.bin") + b"\0" * (9 * 1024 * 1024)
    assert_error(_post(client, "skil_demo-0.1.0-py3-none-any.whl", big), 413, "too_large")
