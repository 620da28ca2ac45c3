"""Model routes: upload, list, show, download with sha256, Range, traversal, 413."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _model_fixtures import external_data_model, not_onnx_file, small_mlp_model
from _server_helpers import assert_error

from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.models import add_model


def _upload(client: httpx.Client, path: Path, experiment: str = "exp") -> httpx.Response:
    with path.open("rb") as handle:
        return client.post(
            "/models",
            files={"file": (path.name, handle, "application/octet-stream")},
            data={"experiment": experiment},
        )


def test_upload_then_download_verifies_sha256(client: httpx.Client, tmp_path: Path) -> None:
    model = small_mlp_model(tmp_path)
    response = _upload(client, model)
    assert response.status_code == 201, response.text
    meta = response.json()
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    assert meta["sha256"] == expected and meta["id"].endswith(expected[:12])
    assert "path" not in meta
    assert client.get("/models").json()["models"][0]["id"] == meta["id"]
    assert client.get(f"/models/{meta['id']}").json()["signature"]["inputs"][0]["shape"] == ["N", 4]

    download = client.get(f"/models/{meta['id']}/file")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == expected
    assert download.headers["x-content-sha256"] == expected
    assert download.headers["etag"] == f'"{expected}"'


def test_same_bytes_uploaded_twice_give_one_model(client: httpx.Client, tmp_path: Path) -> None:
    model = small_mlp_model(tmp_path)
    first = _upload(client, model).json()["id"]
    assert _upload(client, model, "other").json()["id"] == first
    assert len(client.get("/models").json()["models"]) == 1


def test_upload_of_a_non_onnx_file_is_a_400_and_stores_nothing(
    client: httpx.Client, tmp_path: Path
) -> None:
    message = assert_error(_upload(client, not_onnx_file(tmp_path)), 400, "invalid_model")
    assert "not an ONNX model" in message
    assert client.get("/models").json() == {"models": []}


def test_range_request_resumes_a_download(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    data = record.path.read_bytes()
    head = client.get(f"/models/{record.id}/file", headers={"Range": "bytes=0-99"})
    assert head.status_code == 206 and head.content == data[:100]
    tail = client.get(f"/models/{record.id}/file", headers={"Range": "bytes=100-"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert hashlib.sha256(head.content + tail.content).hexdigest() == record.sha256


def test_external_data_model_serves_every_file(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(external_data_model(tmp_path), "exp")
    meta = client.get(f"/models/{record.id}").json()
    names = [f["name"] for f in meta["files"]]
    assert names == ["model.onnx", "ext.weights"]
    for entry in meta["files"]:
        body = client.get(f"/models/{record.id}/files/{entry['name']}").content
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]


@pytest.mark.parametrize(
    "path",
    [
        "/models/..%2F..%2Fserver.token/file",
        "/models/%2e%2e/file",
        "/models/{id}/files/..%2F..%2Fserver.token",
        "/models/{id}/files/../../server.token",
        "/models/{id}/files/%2e%2e/%2e%2e/server.token",
        "/models/{id}/files//etc/passwd",
        "/models/{id}/files/model.json",
        "/models/Not_An_Id/file",
    ],
)
def test_path_traversal_is_refused_without_leaking(
    client: httpx.Client, server: EmbeddedServer, tmp_path: Path, path: str
) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    raw = path.replace("{id}", record.id)
    response = client.get(httpx.URL(server.url + raw))
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert server.admin_token not in response.text
    assert "root:" not in response.text and "content_sha256" not in response.text


def test_oversized_upload_is_a_413(client: httpx.Client, tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * (9 * 1024 * 1024))
    assert_error(_upload(client, big), 413, "too_large")

    def chunks() -> Iterator[bytes]:
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; '
            b'filename="big.onnx"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        for _ in range(10):
            yield b"\0" * (1024 * 1024)

    streamed = client.post(
        "/models",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(streamed, 413, "too_large")
    assert client.get("/models").json() == {"models": []}


def test_unknown_model_is_a_404_naming_the_fix(client: httpx.Client) -> None:
    message = assert_error(client.get("/models/nope-123456789abc"), 404, "not_found")
    assert "skil-sdk models list" in message


def test_delete_removes_the_model(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    assert client.delete(f"/models/{record.id}").status_code == 200
    assert_error(client.get(f"/models/{record.id}"), 404)
