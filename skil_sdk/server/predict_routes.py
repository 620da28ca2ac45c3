"""Predict and classify: JSON or Arrow rows in, the model's outputs out."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from skil_sdk.errors import TooLargeError
from skil_sdk.server.auth import Principal, principal
from skil_sdk.server.codec import (
    ARROW_STREAM,
    decode_arrow,
    decode_json,
    encode_arrow,
    encode_json,
    wants_arrow,
)
from skil_sdk.server.config import ServerConfig
from skil_sdk.server.errors import RequestTimeoutError, UnsupportedMediaTypeError
from skil_sdk.server.models_routes import ERRORS, MODEL_ID
from skil_sdk.server.shape_runs import ShapeRuns, run_in_runs
from skil_sdk.store import models as store

router = APIRouter(tags=["predict"])

_ROW = {"type": "array", "items": {}, "description": "One row of features (flat or shaped)."}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "instances": {"type": "array", "items": _ROW},
                        "inputs": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {}},
                        },
                    },
                    "example": {"instances": [[0.0, 1.0, 2.0, 3.0]]},
                }
            },
            ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_OUT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The outputs, one row per instance",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"outputs": {"type": "object"}},
                }
            },
            ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    415: {"description": "Unsupported body format"},
    503: {"description": "Timed out"},
    **ERRORS,
}


def _features(config: ServerConfig, body: bytes, content_type: str, inputs: list[str]) -> Any:
    if ARROW_STREAM in content_type:
        features, rows = decode_arrow(body, inputs)
    elif content_type == "" or "json" in content_type:
        features, rows = decode_json(body, inputs)
    else:
        raise UnsupportedMediaTypeError(
            f"Predict reads application/json or {ARROW_STREAM}, not {content_type[:80]!r}; "
            "set the Content-Type header."
        )
    if rows > config.max_rows:
        raise TooLargeError(
            f"{rows} rows is over the server's limit of {config.max_rows} rows per request; "
            "split the rows into smaller requests."
        )
    return features


async def _run(request: Request, model_id: str, work: Any) -> Any:
    config: ServerConfig = request.app.state.config
    record = store.get_model(model_id)
    body = await request.body()
    content_type = request.headers.get("content-type", "").lower()

    def job() -> Any:
        from skil_sdk.inference.runner import get_runner

        runner = get_runner(record.path, intra_op_threads=config.intra_op_threads)
        features = _features(config, body, content_type, runner.input_names)
        if isinstance(features, ShapeRuns):
            return work(runner, run_in_runs(runner.run, features))
        return work(runner, runner.run(features))

    try:
        return await asyncio.wait_for(asyncio.to_thread(job), timeout=config.request_timeout)
    except TimeoutError as exc:
        raise RequestTimeoutError(
            f"Predict ran past the server's {config.request_timeout:g} s timeout; send fewer "
            "rows per request or start the server with a higher --request-timeout."
        ) from exc


@router.post(
    "/models/{model_id}/predict",
    openapi_extra=_BODY,
    responses=_OUT,
    response_class=Response,
    summary="Run the model on rows",
)
async def predict(
    request: Request,
    model_id: str = MODEL_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> Response:
    """``{"instances": [row, ...]}`` or ``{"inputs": {name: [row, ...]}}`` (or an Arrow
    stream, one column per input) in; ``{"outputs": {name: [row, ...]}}`` out (or an
    Arrow stream, one column per output). Rows are reshaped to the model's input shape."""
    who.require_admin()
    arrow = wants_arrow(
        request.headers.get("content-type", "").lower(), request.headers.get("accept", "").lower()
    )

    def work(runner: Any, outputs: dict[str, Any]) -> bytes:
        return encode_arrow(outputs) if arrow else encode_json(outputs)

    content = await _run(request, model_id, work)
    return Response(content, media_type=ARROW_STREAM if arrow else "application/json")


@router.post(
    "/models/{model_id}/classify",
    openapi_extra=_BODY,
    responses=ERRORS,
    summary="Label and probability per row",
)
async def classify(
    request: Request,
    model_id: str = MODEL_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """The same input as predict; ``{"predictions": [{"label", "probability"}, ...]}`` out."""
    who.require_admin()

    def work(runner: Any, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        from skil_sdk.inference.classify import classify as read_classes

        return read_classes(runner.signature, outputs)

    return {"predictions": await _run(request, model_id, work)}
