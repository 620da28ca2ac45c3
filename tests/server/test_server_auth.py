"""Auth: 401 without or with a wrong token, job tokens scoped to their job, the token file."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from _model_fixtures import small_mlp_model
from _server_helpers import BACKSTOP_S, assert_error

from skil_sdk.errors import InvalidValueError
from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.models import add_model

ROUTES = [
    ("GET", "/models"),
    ("GET", "/models/abc-123456789abc"),
    ("GET", "/models/abc-123456789abc/file"),
    ("POST", "/models/abc-123456789abc/predict"),
    ("GET", "/plugins"),
    ("GET", "/jobs"),
    ("POST", "/jobs/job-1/progress"),
    ("GET", "/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_but_healthz_needs_a_token(anon: httpx.Client, method: str, path: str) -> None:
    assert anon.get("/healthz").json()["status"] == "ok"
    missing = anon.request(method, path)
    assert "Bearer" in assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = anon.request(method, path, headers={"Authorization": "Bearer ska_wrong"})
    assert_error(wrong, 401, "unauthorized")
    basic = anon.request(method, path, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(basic, 401)


def test_admin_token_file_is_private_and_alone_on_one_line(
    server: EmbeddedServer, skil_home: Path
) -> None:
    path = skil_home / "server.token"
    assert path.read_text() == server.admin_token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with EmbeddedServer() as again:
        assert again.admin_token == server.admin_token


def test_no_auth_is_refused_off_loopback() -> None:
    with pytest.raises(InvalidValueError, match="--no-auth"):
        ServerConfig(host="0.0.0.0", auth=False).check()
    ServerConfig(host="127.0.0.1", auth=False).check()
    ServerConfig(host="::1", auth=False).check()


def test_no_auth_server_on_loopback_needs_no_token(skil_home: Path) -> None:
    with EmbeddedServer(config=ServerConfig(auth=False)) as server:
        assert httpx.get(server.url + "/models", timeout=BACKSTOP_S).json() == {"models": []}
    assert not (skil_home / "server.token").exists()


def test_job_token_is_scoped_to_its_job_and_models(
    client: httpx.Client, anon: httpx.Client, tmp_path: Path
) -> None:
    from skil_sdk.store import jobs

    mine = add_model(small_mlp_model(tmp_path / "a", seed=1), "exp")
    other = add_model(small_mlp_model(tmp_path / "b", seed=2), "exp")
    store = jobs.JobStore()
    job = store.create(model_id=mine.id)
    other_job = store.create(model_id=other.id)
    issued = client.post(f"/jobs/{job.id}/tokens", json={"model_ids": [mine.id]})
    assert issued.status_code == 201, issued.text
    token = {"Authorization": f"Bearer {issued.json()['token']}"}

    assert anon.get(f"/models/{mine.id}", headers=token).status_code == 200
    assert anon.get(f"/models/{mine.id}/file", headers=token).status_code == 200
    progress = {"rows_done": 5, "tasks_done": 1, "tasks_total": 4, "rows_total": 20}
    assert anon.post(f"/jobs/{job.id}/progress", json=progress, headers=token).status_code == 200
    executor = anon.post(f"/jobs/{job.id}/executors", json={"host": "h", "pid": 1}, headers=token)
    assert executor.status_code == 200
    assert store.get(job.id).rows_done == 5

    for method, path in [
        ("GET", f"/models/{other.id}"),
        ("GET", f"/models/{other.id}/file"),
        ("GET", "/models"),
        ("POST", f"/models/{mine.id}/predict"),
        ("GET", "/jobs"),
        ("GET", f"/jobs/{job.id}"),
        ("POST", f"/jobs/{job.id}/tokens"),
        ("GET", "/plugins"),
    ]:
        body = {"model_ids": [mine.id]} if path.endswith("/tokens") else {"instances": [[0] * 4]}
        assert_error(anon.request(method, path, headers=token, json=body), 403, "forbidden")
    assert_error(anon.post(f"/jobs/{other_job.id}/progress", json=progress, headers=token), 403)

    store.finish(job.id, "SUCCEEDED")
    assert_error(anon.get(f"/models/{mine.id}", headers=token), 401)


def test_tokens_are_not_logged(
    client: httpx.Client, server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/models")
    client.get("/nope")
    assert server.admin_token not in caplog.text
