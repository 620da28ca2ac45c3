"""Job routes and the client helpers the batch-inference runner uses."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _model_fixtures import small_mlp_model
from _server_helpers import BACKSTOP_S, assert_error

from skil_sdk.errors import ForbiddenError, NotFoundError
from skil_sdk.server import client as server_client
from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store import jobs
from skil_sdk.store.models import add_model


def test_jobs_list_show_and_client_helpers(
    server: EmbeddedServer, client: httpx.Client, tmp_path: Path
) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    job = jobs.JobStore().create(model_id=record.id)
    assert [j["job_id"] for j in client.get("/jobs").json()["jobs"]] == [job.id]
    assert client.get(f"/jobs/{job.id}").json()["job_id"] == job.id
    assert_error(client.get("/jobs/job-missing"), 404)

    token = server_client.create_job_token(
        server.url, server.admin_token, job.id, [record.id], timeout=BACKSTOP_S
    )
    server_client.report_progress(
        server.url, token, job.id, 10, 1, tasks_total=2, rows_total=20, timeout=BACKSTOP_S
    )
    executor = {"host": "node-1", "pid": 42}
    server_client.report_executor(server.url, token, job.id, executor, timeout=BACKSTOP_S)
    stored = jobs.JobStore().get(job.id)
    assert (stored.rows_done, stored.tasks_total) == (10, 2)
    assert stored.executors == [{"host": "node-1", "pid": 42}]

    with pytest.raises(ForbiddenError):
        server_client.report_progress(server.url, token, "job-other", 1, 1, timeout=BACKSTOP_S)
    with pytest.raises(NotFoundError):
        server_client.create_job_token(
            server.url, server.admin_token, job.id, ["nope-000000000000"], timeout=BACKSTOP_S
        )


def test_admin_token_helper_prefers_the_environment(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server_client.admin_token() == server.admin_token
    monkeypatch.setenv("SKIL_SERVER_TOKEN", "from-env")
    assert server_client.admin_token() == "from-env"
