"""Plugin routes: a wheel upload publishes it; unsafe or oversized uploads are refused."""

from __future__ import annotations

import httpx
import pytest
from _server_helpers import assert_error, make_wheel

import skil_sdk.store.plugins  # noqa: F401  (the routes use it)


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
