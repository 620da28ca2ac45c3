"""Web-page sessions: the admin token is traded once, at ``/ui/login``, for a signed cookie.

The cookie holds an expiry time, a random nonce and an HMAC-SHA256 of both keyed by the
admin token; never the token itself. It is HttpOnly and SameSite=Strict, so scripts cannot
read it and other sites cannot make the browser send it. A new admin token (a new
``SKIL_HOME/server.token``) ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME = "skil_session"
SESSION_SECONDS = 12 * 3600
_VERSION = "v1"


def _signature(admin_token: str, expires: int, nonce: str) -> str:
    message = f"skil-ui-session|{_VERSION}|{expires}|{nonce}".encode()
    return hmac.new(admin_token.encode(), message, hashlib.sha256).hexdigest()


def new_session_value(admin_token: str, now: float | None = None) -> str:
    """A signed cookie value valid for :data:`SESSION_SECONDS` from ``now``."""
    expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
    nonce = secrets.token_urlsafe(16)
    return f"{_VERSION}.{expires}.{nonce}.{_signature(admin_token, expires, nonce)}"


def session_value_is_valid(value: str, admin_token: str, now: float | None = None) -> bool:
    """Whether ``value`` was signed with ``admin_token`` and has not expired."""
    if not value or not admin_token:
        return False
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
        return False
    expires, nonce, signature = int(parts[1]), parts[2], parts[3]
    if expires < (now if now is not None else time.time()):
        return False
    expected = _signature(admin_token, expires, nonce)
    return hmac.compare_digest(signature.encode(), expected.encode())


def has_session(request: Request) -> bool:
    """Whether the request carries a valid session cookie (always True with auth off)."""
    if not request.app.state.config.auth:
        return True
    value = request.cookies.get(COOKIE_NAME, "")
    return session_value_is_valid(value, request.app.state.admin_token)


def set_session_cookie(response: Response, request: Request) -> None:
    """Start a session: a new signed, HttpOnly, SameSite=Strict cookie on ``response``."""
    response.set_cookie(
        COOKIE_NAME,
        new_session_value(request.app.state.admin_token),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response) -> None:
    """End the session in this browser."""
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
