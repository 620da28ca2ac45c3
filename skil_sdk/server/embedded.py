"""``EmbeddedServer``: the server app in a background thread, for one job's lifetime."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from types import TracebackType
from typing import Any

import httpx

from skil_sdk.errors import SkilError
from skil_sdk.server.config import ServerConfig


class EmbeddedServer:
    """Run the built-in server in-process, on a free port, until :meth:`stop`.

    >>> with EmbeddedServer() as server:
    ...     httpx.get(server.url + "/healthz").json()["status"]
    'ok'

    ``admin_token`` is the server's admin token (``SKIL_HOME/server.token``); hand
    executors job tokens instead (``POST /jobs/{id}/tokens`` or ``issue_job_token``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config: ServerConfig | None = None,
        app: Any = None,
    ) -> None:
        self.host = host
        self.port = port
        self.config = replace(config or ServerConfig(), host=host, port=port)
        self._app = app
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.admin_token = ""

    def start(self, timeout: float = 30.0) -> str:
        """Start serving and return the base URL once ``/healthz`` answers."""
        import uvicorn

        from skil_sdk.server.app import create_app

        if self._thread is not None:
            return self.url
        app = self._app if self._app is not None else create_app(self.config)
        self.admin_token = app.state.admin_token
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SkilError(
                f"Cannot bind the server to {self.host}:{self.port} ({exc.strerror}); pick "
                "another port or leave it 0 for a free one."
            ) from exc
        sock.listen(128)
        port = sock.getsockname()[1]
        shown = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"http://{shown}:{port}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="skil-server", daemon=True
        )
        self._thread.start()
        self._sock = sock
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._thread is None or not self._thread.is_alive():
                break
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self.stop()
        raise SkilError(
            f"The embedded server did not answer on {self.url} within {timeout:g} s; check "
            "the log above for the cause."
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (waits for open requests up to ``timeout`` seconds)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()
        self._thread = None
        self._server = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
