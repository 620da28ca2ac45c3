"""One error shape for every error: ``{"error": {"code": ..., "message": ...}}``.

Covers SkilErrors, unknown routes (404), wrong methods (405), validation errors (422),
oversized bodies (413) and unexpected failures (500).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skil_sdk.errors import AuthError, SkilError

log = logging.getLogger("skil_sdk.server")


class UnsupportedMediaTypeError(SkilError):
    """A request body in a format the route does not read."""

    code = "unsupported_media_type"
    http_status = 415


class RequestTimeoutError(SkilError):
    """A request that ran past the server's request timeout."""

    code = "timeout"
    http_status = 503


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error response every failure uses."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def _skil_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SkilError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return error_response(exc.http_status, exc.code, exc.message, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message = (
            f"No route {request.method} {request.url.path[:200]}; see /openapi.json for the routes."
        )
    elif status == 405:
        message = (
            f"{request.url.path[:200]} does not accept {request.method}; see /openapi.json for "
            "its methods."
        )
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        message = detail.rstrip(".") + "; see /openapi.json for the request format."
    headers = dict(exc.headers) if exc.headers else None
    return error_response(status, _STATUS_CODES.get(status, "http_error"), message, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first: dict[str, Any] = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    what = str(first.get("msg", "invalid request")).rstrip(".")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return error_response(
        422,
        "validation_error",
        f"{where}: {what}{more}; fix the request (see /openapi.json).",
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "The server failed on this request; see the server log and report the problem.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer the one JSON shape."""
    app.add_exception_handler(SkilError, _skil_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)


class BodyLimitMiddleware:
    """Answer 413 (in the one error shape) to a request body over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before the app sees the
    request; a body that grows past it while streaming stops reaching the app and the
    response becomes the 413. Either way the 413 is sent at once and the rest of the
    body is then read and discarded before the response ends, so the connection closes
    only once the client has sent everything: a client that writes its whole body
    before reading (as httpx and requests do) reads the 413 instead of a reset. At most
    ``drain_bytes`` are discarded (default: four times ``max_bytes``, at least 64 MiB);
    a client still sending past that is disconnected. A client that waits for
    ``100 Continue`` gets the 413 instead, and nothing is read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        if drain_bytes is None:
            drain_bytes = max(4 * max_bytes, 64 * 1024 * 1024)
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(receive, send, drain=not _expects_continue(scope))
            return
        state = _BodyState()

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state.read += len(message.get("body", b""))
                state.done = not message.get("more_body", False)
                if state.read > self.max_bytes:
                    state.exceeded = True
                    raise _BodyTooLarge()
            elif message["type"] == "http.disconnect":
                state.done = True
            return message

        async def guarded_send(message: Message) -> None:
            if state.exceeded:
                if not state.started:
                    state.started = True
                    await self._too_large(receive, send, drain=not state.done)
                return
            if message["type"] == "http.response.start":
                state.started = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if state.exceeded and not state.started:
            state.started = True
            await self._too_large(receive, send, drain=not state.done)

    async def _too_large(self, receive: Receive, send: Send, *, drain: bool) -> None:
        response = error_response(
            413,
            "too_large",
            f"The request body is over the server's limit of {self.max_bytes} bytes; send a "
            "smaller body or start the server with a higher --max-upload-mb.",
            headers={"Connection": "close"},
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": drain})
        if drain:
            await self._discard_body(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _discard_body(self, receive: Receive) -> None:
        """Read the rest of the request body (up to ``drain_bytes``) and drop it."""
        discarded = 0
        while discarded <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            discarded += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


@dataclass
class _BodyState:
    read: int = 0
    done: bool = False
    exceeded: bool = False
    started: bool = False


class _BodyTooLarge(Exception):
    pass


def _expects_continue(scope: Scope) -> bool:
    return any(
        key == b"expect" and value.strip().lower() == b"100-continue"
        for key, value in scope.get("headers", [])
    )


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
