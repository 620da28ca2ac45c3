"""One error shape for every error: 404, 405, 422, 401, 413, 500."""

from __future__ import annotations

from pathlib import Path

import httpx
from _server_helpers import BACKSTOP_S, assert_error

from skil_sdk.server.app import create_app
from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer


def test_unknown_route_wrong_method_and_validation_share_the_shape(
    client: httpx.Client,
) -> None:
    assert "/openapi.json" in assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.delete("/healthz"), 405, "method_not_allowed")
    assert_error(
        client.post("/jobs/job-1/progress", json={"rows_done": -1}), 422, "validation_error"
    )
    assert_error(client.get("/jobs", params={"limit": "many"}), 422, "validation_error")
    assert_error(client.get("/models/UPPER_case"), 422, "validation_error")
    assert_error(client.post("/models", data={"experiment": "x"}), 422)


def test_an_unexpected_failure_is_a_500_in_the_shape(skil_home: Path) -> None:
    app = create_app(ServerConfig(auth=False))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with EmbeddedServer(app=app) as server:
        response = httpx.get(server.url + "/boom", timeout=BACKSTOP_S)
    assert "secret internals" not in assert_error(response, 500, "internal_error")


def test_openapi_lists_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/healthz",
        "/models",
        "/models/{model_id}",
        "/models/{model_id}/file",
        "/models/{model_id}/predict",
        "/models/{model_id}/classify",
        "/plugins",
        "/jobs/{job_id}/progress",
        "/jobs/{job_id}/tokens",
    ):
        assert path in paths
