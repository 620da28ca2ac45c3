"""A loopback TCP proxy that logs requests and can cut one response short."""

from __future__ import annotations

import contextlib
import re
import socket
import threading


class CuttingProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; cut the first response past ``cut_after`` bytes."""

    def __init__(self, upstream: str, cut_after: int | None = None) -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.cut_after = cut_after
        self.cut_done = False
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    with self._lock:
                        self.requests.append(head.decode("latin-1"))
                upstream.sendall(data)
        _close(client, upstream)

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                client.sendall(data)
                sent += len(data)
                if self.cut_after is not None and not self.cut_done and sent > self.cut_after:
                    self.cut_done = True
                    break
        _close(client, upstream)

    def count(self, pattern: str) -> int:
        """How many requests matched ``pattern`` (a regex, case-insensitive)."""
        with self._lock:
            return sum(1 for r in self.requests if re.search(pattern, r, re.IGNORECASE))

    def close(self) -> None:
        """Stop accepting connections."""
        self._server.close()


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
