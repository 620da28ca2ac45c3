"""``create_app``: the FastAPI app of the built-in server."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from skil_sdk import __version__
from skil_sdk.server import jobs_routes, models_routes, plugins_routes, predict_routes, ui_routes
from skil_sdk.server.auth import Principal, load_or_create_admin_token, principal
from skil_sdk.server.config import ServerConfig
from skil_sdk.server.errors import BodyLimitMiddleware, install_error_handlers


def create_app(config: ServerConfig | None = None, admin_token: str | None = None) -> FastAPI:
    """The server app: model files, predict, plugins, jobs, web pages; one error shape; auth.

    With auth on, the admin token is ``admin_token`` or the one in
    ``SKIL_HOME/server.token`` (created on first use).
    """
    config = (config or ServerConfig()).check()
    app = FastAPI(
        title="skil-sdk server",
        version=__version__,
        description="Model files for executors, batch predict, plugin uploads, job progress.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.admin_token = (admin_token or load_or_create_admin_token()) if config.auth else ""
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_upload_bytes)

    @app.get("/healthz", tags=["health"], summary="Liveness (no token needed)")
    def healthz() -> dict[str, Any]:
        """``{"status": "ok", "version": ...}``."""
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Principal = Depends(principal)) -> JSONResponse:  # noqa: B008
        return JSONResponse(app.openapi())

    for module in (models_routes, predict_routes, jobs_routes, plugins_routes):
        app.include_router(module.router)
    ui_routes.install(app)
    return app
