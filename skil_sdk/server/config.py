"""Server settings: auth, limits and timeouts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from skil_sdk.errors import InvalidValueError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server instance.

    ``auth`` False serves without tokens (loopback only); ``max_upload_bytes`` bounds
    every request body (413 beyond it); ``max_rows`` bounds the rows of one predict
    request; ``request_timeout`` bounds the seconds one predict may run (503 beyond it);
    ``intra_op_threads`` is onnxruntime's per-session thread count (0: its default).
    """

    host: str = "127.0.0.1"
    port: int = 9008
    auth: bool = True
    max_upload_bytes: int = 1024 * MIB
    max_rows: int = 8192
    request_timeout: float = 60.0
    intra_op_threads: int = 0

    def check(self) -> ServerConfig:
        """Refuse settings that are unsafe or meaningless; return self."""
        if not self.auth and not is_loopback(self.host):
            raise InvalidValueError(
                f"--no-auth is refused when binding to {self.host}; bind to 127.0.0.1 or "
                "drop --no-auth."
            )
        if self.max_upload_bytes <= 0 or self.max_rows <= 0 or self.request_timeout <= 0:
            raise InvalidValueError(
                "Upload size, rows per request and timeout must be positive; pass values above 0."
            )
        return self


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
