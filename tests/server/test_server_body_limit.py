"""An oversized body always gets its 413 answer, never a reset connection.

The clients here are raw sockets, so what is on the wire is what the test sends: a
declared ``Content-Length`` over the limit, a chunked body that grows past it, a client
that waits for ``100 Continue``. Each reads the whole response and then the end of the
connection; a server that closed while the client was still sending would reset the
connection instead (the socket calls raise). Nothing waits for a guessed time: the
socket timeout is only a backstop for a server that never answers.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _model_fixtures import small_mlp_model
from _server_helpers import BACKSTOP_S, assert_error, make_wheel

from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.server.errors import BodyLimitMiddleware
from skil_sdk.store.models import add_model

LIMIT = 8 * 1024 * 1024  # the limit of the `server` fixture
CHUNK = 64 * 1024


def _connect(server: EmbeddedServer) -> socket.socket:
    url = httpx.URL(server.url)
    sock = socket.create_connection((url.host, url.port or 80), timeout=BACKSTOP_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(server: EmbeddedServer, path: str, content_type: str, framing: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {httpx.URL(server.url).host}",
        f"Authorization: Bearer {server.admin_token}",
        f"Content-Type: {content_type}",
        framing,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (framed by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"the connection ended before the response head: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, f"the connection ended {length - len(body)} bytes short of the body"
        body += piece
    assert len(body) == length, body
    return int(status_line.split()[1]), headers, body


def _read_to_end(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a reset raises)."""
    rest = b""
    while piece := sock.recv(65536):
        rest += piece
    return rest


def _assert_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, body
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    assert error["code"] == "too_large"
    assert f"over the server's limit of {LIMIT} bytes" in error["message"]


def _multipart(filename: str, payload: bytes) -> bytes:
    return (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename.encode()
        + b'"\r\nContent-Type: application/zip\r\n\r\n'
        + payload
        + b"\r\n--xyz--\r\n"
    )


def _oversized_body(route: str) -> tuple[str, bytes]:
    filler = b"\0" * (LIMIT + 2 * 1024 * 1024)
    if route == "plugins":
        wheel = make_wheel(extra="skil_demo/blob.bin") + filler
        return "multipart/form-data; boundary=xyz", _multipart(
            "skil_demo-0.1.0-py3-none-any.whl", wheel
        )
    if route == "models":
        return "multipart/form-data; boundary=xyz", _multipart("big.onnx", filler)
    rows = b"[0, 0, 0, 0], " * (len(filler) // 14)
    return "application/json", b'{"instances": [' + rows + b"[0, 0, 0, 0]]}"


@pytest.fixture
def paths(server: EmbeddedServer, tmp_path: Path) -> dict[str, str]:
    """The upload routes and the predict route of a stored model."""
    record = add_model(small_mlp_model(tmp_path), "exp")
    return {"plugins": "/plugins", "models": "/models", "predict": f"/models/{record.id}/predict"}


def _pieces(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


ROUTES = ["plugins", "models", "predict"]


@pytest.mark.parametrize("route", ROUTES)
def test_declared_oversized_body_sent_in_pieces_gets_the_413(
    server: EmbeddedServer, paths: dict[str, str], route: str
) -> None:
    content_type, body = _oversized_body(route)
    with _connect(server) as sock:
        sock.sendall(_head(server, paths[route], content_type, f"Content-Length: {len(body)}"))
        for piece in _pieces(body):
            sock.sendall(piece)
        _assert_413(*_read_response(sock))
        assert _read_to_end(sock) == b""


@pytest.mark.parametrize("route", ROUTES)
def test_declared_oversized_body_is_answered_before_it_is_sent(
    server: EmbeddedServer, paths: dict[str, str], route: str
) -> None:
    """The 413 comes right after the head; the connection stays open for the body."""
    content_type, body = _oversized_body(route)
    with _connect(server) as sock:
        sock.sendall(_head(server, paths[route], content_type, f"Content-Length: {len(body)}"))
        _assert_413(*_read_response(sock))
        for piece in _pieces(body):
            sock.sendall(piece)
        assert _read_to_end(sock) == b""


@pytest.mark.parametrize("route", ROUTES)
def test_chunked_body_growing_past_the_limit_gets_the_413(
    server: EmbeddedServer, paths: dict[str, str], route: str
) -> None:
    content_type, body = _oversized_body(route)
    with _connect(server) as sock:
        sock.sendall(_head(server, paths[route], content_type, "Transfer-Encoding: chunked"))
        for piece in _pieces(body):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        _assert_413(*_read_response(sock))
        assert _read_to_end(sock) == b""


def test_a_client_waiting_for_100_continue_gets_the_413_instead(
    server: EmbeddedServer, paths: dict[str, str]
) -> None:
    """No ``100 Continue``, so the client never sends the body; the server closes."""
    framing = f"Content-Length: {LIMIT + 1}\r\nExpect: 100-continue"
    with _connect(server) as sock:
        sock.sendall(_head(server, paths["plugins"], "application/zip", framing))
        _assert_413(*_read_response(sock))
        assert _read_to_end(sock) == b""


def test_httpx_keeps_working_after_a_413(client: httpx.Client, paths: dict[str, str]) -> None:
    content_type, body = _oversized_body("predict")
    for _ in range(3):
        headers = {"Content-Type": content_type}
        response = client.post(paths["predict"], content=body, headers=headers)
        assert "8388608 bytes" in assert_error(response, 413, "too_large")
        ok = client.post(paths["predict"], json={"instances": [[0.0, 1.0, 2.0, 3.0]]})
        assert ok.status_code == 200, ok.text
        assert len(ok.json()["outputs"]["output"]) == 1


# ------------------------------------------------------------ the middleware on its own


class _Client:
    """An ASGI receive/send pair: a body of ``chunks`` pieces of ``size`` bytes."""

    def __init__(self, chunks: int, size: int) -> None:
        self.left = chunks
        self.size = size
        self.read = 0
        self.sent: list[dict[str, Any]] = []
        self.read_when_answered: int | None = None

    async def receive(self) -> dict[str, Any]:
        self.left -= 1
        self.read += 1
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and self.read_when_answered is None:
            self.read_when_answered = self.read
        self.sent.append(message)


async def _reading_app(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    raise AssertionError("the middleware let the app read past the limit")


def _call(middleware: BodyLimitMiddleware, client: _Client, headers: list[Any]) -> None:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(middleware(scope, client.receive, client.send))  # type: ignore[arg-type]


def test_middleware_discards_the_rest_of_a_declared_body_after_answering() -> None:
    client = _Client(chunks=10, size=100)
    middleware = BodyLimitMiddleware(_reading_app, max_bytes=500)
    _call(middleware, client, [(b"content-length", b"1000")])
    assert client.read_when_answered == 0  # answered before reading
    assert client.read == 10 and client.left == 0  # then the whole body was read
    assert client.sent[0]["status"] == 413
    assert (b"connection", b"close") in client.sent[0]["headers"]
    assert json.loads(client.sent[1]["body"])["error"]["code"] == "too_large"
    assert [m.get("more_body") for m in client.sent[1:]] == [True, False]


def test_middleware_discards_the_rest_of_a_streamed_body_after_answering() -> None:
    client = _Client(chunks=10, size=100)
    _call(BodyLimitMiddleware(_reading_app, max_bytes=250), client, [])
    assert client.read_when_answered == 3  # the app saw 300 bytes, over 250
    assert client.read == 10 and client.left == 0
    assert client.sent[0]["status"] == 413 and client.sent[-1]["more_body"] is False


def test_middleware_stops_discarding_after_drain_bytes() -> None:
    client = _Client(chunks=1000, size=100)
    _call(BodyLimitMiddleware(_reading_app, max_bytes=250, drain_bytes=1000), client, [])
    assert client.read == 3 + 11  # 300 bytes to find the body too large, then 1100 dropped
    assert client.sent[0]["status"] == 413 and client.sent[-1]["more_body"] is False


def test_middleware_passes_bodies_within_the_limit() -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message["body"]
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    client = _Client(chunks=5, size=100)
    _call(BodyLimitMiddleware(echo, max_bytes=500), client, [(b"content-length", b"500")])
    assert client.sent[0]["status"] == 200 and client.sent[1]["body"] == b"500"
