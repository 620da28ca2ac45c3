"""Small httpx helpers for talking to a skil-sdk server (driver and executor side)."""

from __future__ import annotations

import os
from typing import Any

import httpx

from skil_sdk.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidValueError,
    NotFoundError,
    SkilError,
    TooLargeError,
)

TOKEN_ENV = "SKIL_SERVER_TOKEN"
_BY_STATUS: dict[int, type[SkilError]] = {
    400: InvalidValueError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
}


def admin_token() -> str:
    """The admin token: ``$SKIL_SERVER_TOKEN``, else ``SKIL_HOME/server.token``."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    from skil_sdk.home import skil_home

    path = skil_home() / "server.token"
    if not path.is_file():
        raise AuthError(
            f"No server token: {path} does not exist; start `skil-sdk serve` once or set "
            f"{TOKEN_ENV}."
        )
    return path.read_text().strip()


def headers(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def raise_for_error(response: httpx.Response) -> None:
    """Raise the SkilError a failed response carries (its ``{"error": ...}`` message)."""
    if response.is_success:
        return
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"The server answered HTTP {response.status_code}; check the server log."
    error = _BY_STATUS.get(response.status_code, SkilError)(message)
    raise error


def _post(url: str, token: str, payload: Any, timeout: float) -> dict[str, Any]:
    try:
        response = httpx.post(url, json=payload, headers=headers(token), timeout=timeout)
    except httpx.HTTPError as exc:
        raise SkilError(
            f"Cannot reach the skil-sdk server at {url.split('/jobs')[0]} ({exc}); check that "
            "it runs and the URL is right."
        ) from exc
    raise_for_error(response)
    result: dict[str, Any] = response.json()
    return result


def report_progress(
    url: str,
    token: str,
    job_id: str,
    rows_done: int,
    tasks_done: int,
    tasks_total: int | None = None,
    rows_total: int | None = None,
    timeout: float = 10.0,
) -> None:
    """``POST /jobs/{job_id}/progress``."""
    payload = {
        "rows_done": rows_done,
        "tasks_done": tasks_done,
        "tasks_total": tasks_total,
        "rows_total": rows_total,
    }
    _post(f"{url.rstrip('/')}/jobs/{job_id}/progress", token, payload, timeout)


def report_executor(
    url: str, token: str, job_id: str, record: dict[str, Any], timeout: float = 10.0
) -> None:
    """``POST /jobs/{job_id}/executors``."""
    _post(f"{url.rstrip('/')}/jobs/{job_id}/executors", token, record, timeout)


def create_job_token(
    url: str, admin_token: str, job_id: str, model_ids: list[str], timeout: float = 10.0
) -> str:
    """``POST /jobs/{job_id}/tokens``: a job-scoped token for ``model_ids``."""
    data = _post(
        f"{url.rstrip('/')}/jobs/{job_id}/tokens", admin_token, {"model_ids": model_ids}, timeout
    )
    return str(data["token"])
