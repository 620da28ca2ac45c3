"""A bounded schemathesis run against /openapi.json finds no 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _model_fixtures import mlp_model, sklearn_classifier_model
from _server_helpers import BACKSTOP_S

from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.models import add_model


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is part of the dev extra; reinstall with ./dev test"
    mlp = add_model(mlp_model(tmp_path, sizes=(784, 16, 10)), "exp")
    add_model(sklearn_classifier_model(tmp_path), "exp")
    job_id = "job-fuzz"
    from skil_sdk.store import jobs

    jobs.JobStore().create(job_id=job_id, model_id=mlp.id)
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(
        f'[parameters]\n"path.model_id" = "{mlp.id}"\n"path.job_id" = "{job_id}"\n'
    )
    config = ServerConfig(auth=False, max_upload_bytes=1 << 20, max_rows=256)
    with EmbeddedServer(config=config) as server:
        result = subprocess.run(
            [
                executable,
                "--config-file",
                str(config_file),
                "--no-color",
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "10",
                "--max-time",
                "20",
                "--request-timeout",
                str(BACKSTOP_S),
                "--seed",
                "4",
                "--generation-database",
                "none",
                "--phases",
                "examples,coverage,fuzzing",
                "--suppress-health-check",
                "filter_too_much,too_slow",
                "--exclude-method",
                "DELETE",
            ],
            capture_output=True,
            text=True,
            timeout=10 * BACKSTOP_S,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
