"""fetch_model: every file sha256-verified, downloaded once per node, resumed with Range."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _model_fixtures import external_data_model, mlp_model, small_mlp_model
from _proxy import CuttingProxy

from skil_sdk.errors import AuthError, IntegrityError, NotFoundError
from skil_sdk.inference.fetch import fetch_model
from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.models import add_model


@pytest.fixture
def server(skil_home: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as running:
        yield running


def test_fetch_downloads_verifies_and_then_needs_no_network(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    record = add_model(small_mlp_model(tmp_path / "src"), "exp")
    dest = tmp_path / "node-cache"
    path = fetch_model(server.url, record.id, server.admin_token, dest)
    assert path == dest / record.sha256 / "model.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
    server.stop()
    assert fetch_model(server.url, record.id, "no-token-needed", dest) == path


def test_fetch_stores_external_data_files(server: EmbeddedServer, tmp_path: Path) -> None:
    record = add_model(external_data_model(tmp_path / "src"), "exp")
    path = fetch_model(server.url, record.id, server.admin_token, tmp_path / "cache")
    for entry in record.files:
        stored = path.parent / entry["name"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == entry["sha256"]
    from skil_sdk.inference.runner import ModelRunner

    assert ModelRunner(path).run([[1.0, 2.0, 3.0, 4.0]])["output"].shape == (1, 3)


def test_broken_download_resumes_with_range(server: EmbeddedServer, tmp_path: Path) -> None:
    record = add_model(mlp_model(tmp_path / "src"), "exp")
    proxy = CuttingProxy(server.url, cut_after=300_000)
    try:
        path = fetch_model(
            proxy.url, record.id, server.admin_token, tmp_path / "cache", backoff=0.01
        )
    finally:
        proxy.close()
    assert proxy.cut_done, proxy.requests
    assert proxy.count(r"^range: bytes=[1-9]\d*-") == 0
    assert proxy.count(r"\r\nrange: bytes=[1-9]\d*-") == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256


def test_concurrent_workers_download_once(server: EmbeddedServer, tmp_path: Path) -> None:
    record = add_model(mlp_model(tmp_path / "src"), "exp")
    proxy = CuttingProxy(server.url)
    dest = tmp_path / "cache"
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                fetch_model(proxy.url, record.id, server.admin_token, dest)
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    proxy.close()
    assert len(set(results)) == 1 and len(results) == 4
    assert proxy.count(rf"^GET /models/{record.id}/file ") == 1
    assert not [p for p in dest.iterdir() if p.name.endswith(".work")]


def test_tampered_bytes_raise_integrity_error(server: EmbeddedServer, tmp_path: Path) -> None:
    record = add_model(small_mlp_model(tmp_path / "src"), "exp")
    data = bytearray(record.path.read_bytes())
    data[-1] ^= 0xFF
    record.path.write_bytes(bytes(data))
    dest = tmp_path / "cache"
    with pytest.raises(IntegrityError, match=record.sha256) as caught:
        fetch_model(server.url, record.id, server.admin_token, dest)
    assert record.id in caught.value.message
    assert not (dest / record.sha256).exists()


def test_fetch_errors_name_the_cause(server: EmbeddedServer, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        fetch_model(server.url, "nope-000000000000", server.admin_token, tmp_path)
    with pytest.raises(AuthError):
        fetch_model(server.url, "nope-000000000000", "wrong", tmp_path)


def test_fetch_imports_no_server_or_runtime_modules() -> None:
    code = (
        "import sys, skil_sdk.inference.fetch, skil_sdk.server.client; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'onnxruntime', 'onnx') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
