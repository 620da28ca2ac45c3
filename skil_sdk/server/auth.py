"""Bearer-token auth: the admin token in ``SKIL_HOME/server.token`` and job-scoped tokens.

The admin token may do everything. A job token (issued by the jobs store for one job)
may read only that job's models and report only that job's progress, and stops working
when the job ends. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from skil_sdk.errors import AuthError, ForbiddenError
from skil_sdk.server.token import TOKEN_ENV, TOKEN_FILE, load_or_create_admin_token, token_path

__all__ = ["TOKEN_ENV", "TOKEN_FILE", "load_or_create_admin_token", "token_path"]

@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or one job (with the models it may read)."""

    kind: str
    job_id: str | None = None
    model_ids: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        """Whether this caller may do everything."""
        return self.kind == "admin"

    def require_admin(self) -> None:
        """403 unless admin."""
        if not self.is_admin:
            raise ForbiddenError("A job token cannot do this; use the server's admin token.")

    def require_model(self, model_id: str) -> None:
        """403 unless admin or a job token granting ``model_id``."""
        if not self.is_admin and model_id not in self.model_ids:
            raise ForbiddenError(
                f"This job token does not grant model {model_id!r}; use the token of a job "
                "that runs it."
            )

    def require_job(self, job_id: str) -> None:
        """403 unless admin or the token of job ``job_id``."""
        if not self.is_admin and job_id != self.job_id:
            raise ForbiddenError(
                f"This job token does not grant job {job_id!r}; use that job's token."
            )


ADMIN = Principal(kind="admin")
_bearer = HTTPBearer(auto_error=False, description="The admin token or a job token.")


def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
) -> Principal:
    """FastAPI dependency: the caller, from ``Authorization: Bearer <token>``.

    GET requests without that header may carry the web pages' session cookie instead.
    """
    if not request.app.state.config.auth:
        return ADMIN
    if credentials is None and request.method in ("GET", "HEAD"):
        from skil_sdk.server.ui_session import has_session

        if has_session(request):
            return ADMIN
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise AuthError(
            "This request needs a bearer token; send 'Authorization: Bearer <token>' with the "
            f"token from $SKIL_HOME/{TOKEN_FILE} or ${TOKEN_ENV}."
        )
    token = credentials.credentials
    admin: str = request.app.state.admin_token
    if secrets.compare_digest(token.encode(), admin.encode()):
        return ADMIN
    granted = _check_job_token(token)
    if granted is None:
        raise AuthError(
            "The bearer token is not valid (or its job has ended); use the token from "
            f"$SKIL_HOME/{TOKEN_FILE} or a current job token."
        )
    return Principal(kind="job", job_id=granted.job_id, model_ids=tuple(granted.model_ids))


def _check_job_token(token: str) -> Any:
    try:
        from skil_sdk.store.jobs import check_job_token
    except ImportError:
        return None
    return check_job_token(token)
