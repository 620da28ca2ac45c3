"""Executor-side model download: every file, sha256-verified, once per node.

``fetch_model`` asks the server for the model's metadata (``GET /models/{id}``), then
downloads each file into ``dest_root/<sha256>/`` (the sha256 of the model file; for a
model with external data, the digest of all its files, ``content_sha256``) through a
temporary directory renamed into place when every file is verified. A file lock makes
concurrent Python workers on one node download once; a broken download resumes with
HTTP Range; transient failures are retried with exponential backoff. A completed
directory is trusted (it was verified before the rename) and costs no network request.

Only httpx, filelock and :mod:`skil_sdk.storage` are imported, so executors need no
server dependencies.
"""

from __future__ import annotations

import re
import time
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from filelock import FileLock

from skil_sdk.errors import IntegrityError, SkilError
from skil_sdk.storage import atomic_write_text, sha256_file, staged_directory

_SHA = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$")
_RETRY_STATUS = {429, 502, 503, 504}


def fetch_model(
    server_url: str,
    model_id: str,
    token: str,
    dest_root: Path,
    *,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 0.25,
) -> Path:
    """Download the model's files into ``dest_root/<sha256>/``; return the main model path."""
    if not _ID.match(model_id):
        raise SkilError(f"{model_id!r:.80} is not a model id; run `skil-sdk models list`.")
    root = Path(dest_root)
    root.mkdir(parents=True, exist_ok=True)
    ref = root / f"{model_id}.ref"
    cached = _cached(root, ref)
    if cached is not None:
        return cached
    with FileLock(str(root / f".{model_id}.lock")):
        cached = _cached(root, ref)
        if cached is not None:
            return cached
        headers = {"Authorization": f"Bearer {token}"}
        base = server_url.rstrip("/")
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
            meta = _metadata(client, model_id, retries, backoff)
            digest = meta["content_sha256"]
            target = root / digest
            if not (target / meta["main_file"]).is_file():
                _download_all(client, meta, target, retries, backoff)
        _write_ref(ref, digest, meta["main_file"])
        return target / meta["main_file"]


def _cached(root: Path, ref: Path) -> Path | None:
    try:
        sha, main = ref.read_text().split()
    except (OSError, ValueError):
        return None
    path = root / sha / main
    return path if _SHA.match(sha) and path.is_file() else None


def _write_ref(ref: Path, sha: str, main: str) -> None:
    atomic_write_text(ref, f"{sha} {main}\n")


def _metadata(client: httpx.Client, model_id: str, retries: int, backoff: float) -> dict[str, Any]:
    response = _with_retries(lambda: client.get(f"/models/{model_id}"), retries, backoff, client)
    from skil_sdk.server.client import raise_for_error

    raise_for_error(response)
    meta: dict[str, Any] = response.json()
    meta.setdefault("main_file", "model.onnx")
    meta["content_sha256"] = meta.get("content_sha256") or meta.get("sha256")
    if not _SHA.match(str(meta["content_sha256"])) or not meta.get("files"):
        raise SkilError(
            f"The server's metadata of model {model_id!r} has no sha256 or files; check that "
            "the URL points at a skil-sdk server."
        )
    for entry in meta["files"]:
        _safe_name(str(entry["name"]))
    return meta


def _safe_name(name: str) -> PurePosixPath:
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise SkilError(f"The server listed an unsafe model file name {name!r:.80}; refusing it.")
    return pure


def _download_all(
    client: httpx.Client, meta: dict[str, Any], target: Path, retries: int, backoff: float
) -> None:
    with staged_directory(target) as work:
        for entry in meta["files"]:
            name = str(entry["name"])
            url = (
                f"/models/{meta['id']}/file"
                if name == meta["main_file"]
                else f"/models/{meta['id']}/files/{name}"
            )
            destination = work / _safe_name(name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            _download(client, url, destination, int(entry.get("size", -1)), retries, backoff)
            actual = sha256_file(destination)
            if actual != entry["sha256"]:
                raise IntegrityError(
                    f"Model {meta['id']!r} file {name} downloaded with sha256 {actual}, expected "
                    f"{entry['sha256']}; check the server's copy with `skil-sdk models show "
                    f"{meta['id']}` and retry."
                )


def _download(
    client: httpx.Client, url: str, destination: Path, size: int, retries: int, backoff: float
) -> None:
    attempt = 0
    while True:
        have = destination.stat().st_size if destination.exists() else 0
        if size >= 0 and have == size and (have > 0 or destination.exists()):
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code in _RETRY_STATUS:
                    raise _Retry(f"HTTP {response.status_code}")
                if response.status_code == 416:
                    destination.unlink(missing_ok=True)
                    raise _Retry("HTTP 416")
                if response.status_code not in (200, 206):
                    response.read()
                    from skil_sdk.server.client import raise_for_error

                    raise_for_error(response)
                mode = "ab" if response.status_code == 206 else "wb"
                with destination.open(mode) as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
            if size < 0 or destination.stat().st_size >= size:
                return
            raise _Retry("the body ended early")
        except (httpx.TransportError, _Retry) as exc:
            attempt += 1
            if attempt > retries:
                raise SkilError(
                    f"Downloading {url} failed {attempt} times ({exc}); check the server and "
                    "the network, then retry."
                ) from exc
            time.sleep(min(backoff * 2 ** (attempt - 1), 10.0))


class _Retry(Exception):
    pass


def _with_retries(call: Any, retries: int, backoff: float, client: httpx.Client) -> httpx.Response:
    attempt = 0
    while True:
        try:
            response: httpx.Response = call()
            if response.status_code not in _RETRY_STATUS:
                return response
            error: Exception = _Retry(f"HTTP {response.status_code}")
        except httpx.TransportError as exc:
            error = exc
        attempt += 1
        if attempt > retries:
            raise SkilError(
                f"Cannot reach the skil-sdk server at {client.base_url} ({error}); check that it "
                "runs and the URL is right."
            ) from error
        time.sleep(min(backoff * 2 ** (attempt - 1), 10.0))


__all__ = ["fetch_model"]
