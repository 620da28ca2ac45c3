"""One error shape for every error: ``{"error": {"code": ..., "message": ...}}``.

Covers SkilErrors, unknown routes (404), wrong methods (405), validation errors (422),
oversized bodies (413) and unexpected failures (500).
"""

from __future__ import annotations

import logging
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

    A declared ``Content-Length`` over the limit is refused before reading; a body that
    grows past it while streaming stops being read and the response becomes the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        state = {"read": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"]:
                if not state["started"]:
                    state["started"] = True
                    await self._too_large(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not state["started"]:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "too_large",
            f"The request body is over the server's limit of {self.max_bytes} bytes; send a "
            "smaller body or start the server with a higher --max-upload-mb.",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
