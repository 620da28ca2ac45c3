"""One connection between a client and the session: JSON documents, one per line.

A job's client keeps its connection open while the job runs: the session cancels the
job when the connection closes before the result is sent (the client died or was
interrupted), and the client learns that the session died when the connection closes
before a result arrives. Nothing here waits longer than the timeout it is given.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
from typing import Any

#: The longest line either side accepts (a job's spec is a few KB).
MAX_LINE_BYTES = 16 * 1024 * 1024


class ChannelClosed(Exception):
    """The other side closed the connection (or it broke)."""


class Channel:
    """JSON lines over a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    @classmethod
    def connect(cls, port: int, timeout: float = 5.0) -> Channel:
        """A channel to the session on ``127.0.0.1:port`` (``OSError`` when nothing listens)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.settimeout(None)
        return cls(sock)

    def send(self, message: dict[str, Any]) -> None:
        """Send one document (``ChannelClosed`` when the other side has gone)."""
        data = json.dumps(message, default=str).encode("utf-8") + b"\n"
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next document, or None when none came within ``timeout`` seconds
        (``ChannelClosed`` when the connection closed first)."""
        while b"\n" not in self._buffer:
            if timeout is not None:
                ready, _, _ = select.select([self._sock], [], [], timeout)
                if not ready:
                    return None
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc
            if not chunk:
                raise ChannelClosed("the connection was closed")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                raise ChannelClosed("a message was too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ChannelClosed(f"a message was not JSON: {exc}") from exc
        if not isinstance(message, dict):
            raise ChannelClosed("a message was not a JSON object")
        return message

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def request(port: int, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one request and return its answer (``OSError``/``ChannelClosed`` on failure,
    ``TimeoutError`` when no answer came within ``timeout``)."""
    channel = Channel.connect(port, timeout=min(timeout, 5.0))
    try:
        channel.send(message)
        answer = channel.receive(timeout=timeout)
        if answer is None:
            raise TimeoutError(f"the session did not answer within {timeout:.0f} s")
        return answer
    finally:
        channel.close()
