"""Secrets stay secret: redacted options, tokens out of argv and logs, checked plugin uploads.

What the server tests already prove is not repeated here (docs/reliability.md lists
them): every route but /healthz needs a token, job tokens are scoped to their job's
models and stop with the job, the token file is 0600, uploads are wheels only, bounded
and zip-slip safe, and ``--no-auth`` off loopback is refused.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import httpx
import pytest

from skil_sdk.job.spec import REDACTED, redact_options
from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
SECRET = "hunter2-s3cr3t-value"


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "db_password",
        "PASSWD",
        "token",
        "api_token",
        "secret",
        "client_secret",
        "key",
        "apiKey",
        "aws_secret_access_key",
        "credentials",
    ],
)
def test_secret_looking_option_names_are_redacted(name: str) -> None:
    assert redact_options({name: SECRET, "path": "/data"}) == {name: REDACTED, "path": "/data"}


def _wheel(filename_version: str, metadata_version: str) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    info = f"demo_plugin-{filename_version}.dist-info"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("demo_plugin/__init__.py", "")
        archive.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: demo_plugin\nVersion: {metadata_version}\n",
        )
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        archive.writestr(f"{info}/entry_points.txt", "[skil_sdk]\ndemo = demo_plugin\n")
        archive.writestr(f"{info}/RECORD", "")
    return f"demo_plugin-{filename_version}-py3-none-any.whl", buffer.getvalue()


def test_plugin_upload_version_must_match_its_metadata(skil_home: Path) -> None:
    """The stored version is the wheel's METADATA one; a file name that says otherwise is
    refused rather than stored under a version the user did not upload."""
    with EmbeddedServer(config=ServerConfig()) as server:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        name, data = _wheel("0.1.0", "9.9")
        refused = httpx.post(
            server.url + "/plugins", files={"file": (name, data)}, headers=headers, timeout=30
        )
        assert refused.status_code == 400, refused.text
        assert "does not match its METADATA version '9.9'" in refused.json()["error"]["message"]
        assert httpx.get(server.url + "/plugins", headers=headers).json()["plugins"] == []
        name, data = _wheel("0.1.0", "0.1.0")
        stored = httpx.post(
            server.url + "/plugins", files={"file": (name, data)}, headers=headers, timeout=30
        )
        assert stored.status_code == 201, stored.text
        assert stored.json()["version"] == "0.1.0"


class _ArgvWatcher:
    """Reads every process's /proc/PID/cmdline until stopped; keeps the lines holding needles."""

    def __init__(self, needles: list[str]) -> None:
        self.needles = needles
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    text = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
                except OSError:
                    continue
                if " infer --model " in text and "skil-sdk" in text:
                    continue  # the user's own command line, which the user typed
                if any(n in text for n in self.needles):
                    self.hits.append(text[:300])
            self.scans += 1
            self._stop.wait(0.2)

    def __enter__(self) -> _ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.mark.slow
def test_a_job_keeps_tokens_and_secret_options_out_of_argv_logs_and_records(
    bundle_home: Path, tmp_path: Path
) -> None:
    """A real ``skil-sdk infer`` with secret provider options, watched from /proc."""
    import _model_fixtures as models

    home = bundle_home

    added = subprocess.run(
        [
            SKIL,
            "models",
            "add",
            str(models.mlp_model(tmp_path, (1, 4, 2), seed=31)),
            "--experiment",
            "security",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    model_id = json.loads(added.stdout)["id"]
    # a provider that declares no options takes any (it uses n); tests/spark is on the
    # path of the CLI, the driver and the executors (the bundle keeps PYTHONPATH)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent / "spark"), env.get("PYTHONPATH")])
    )
    needles = ["skj_", "ska_", SECRET]
    out = tmp_path / "out"
    with _ArgvWatcher(needles) as watcher:
        completed = subprocess.run(
            [
                SKIL,
                "infer",
                "--model",
                model_id,
                "--provider",
                "_providers:OpenOptionsProvider",
                "--provider-option",
                "n=40",
                "--provider-option",
                f"password={SECRET}",
                "--provider-option",
                f"api_token={SECRET}",
                "--output",
                str(out),
                "--master",
                "local[2]",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert watcher.scans > 3 and watcher.hits == [], watcher.hits
    job_id = json.loads(completed.stdout)["job_id"]

    shown = subprocess.run(
        [SKIL, "jobs", "show", job_id, "--json"], capture_output=True, text=True, check=True
    ).stdout
    meta = (out / "_skil_job.json").read_text()
    assert json.loads(meta)["provider_options"] == {
        "n": "40",
        "password": REDACTED,
        "api_token": REDACTED,
    }
    log = Path(json.loads(shown)["log_path"])
    for name, text in [
        ("stdout", completed.stdout),
        ("stderr", completed.stderr),
        ("jobs show", shown),
        ("_skil_job.json", meta),
        ("job log", log.read_text(errors="replace")),
        ("jobs.sqlite", (home / "jobs.sqlite").read_bytes().decode("latin-1")),
    ]:
        for needle in needles:
            assert needle not in text, f"{needle!r} found in {name}"
    assert json.loads(shown)["details"]["provider_options"]["password"] == REDACTED

    # what holds the options unredacted (the driver needs them) is readable by the owner only
    for private in (home / "jobs" / job_id).glob("*.json"):
        if SECRET in private.read_text():
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    # the job's token ended with the job
    with sqlite3.connect(home / "jobs.sqlite") as db:
        left = db.execute("SELECT count(*) FROM job_tokens WHERE job_id = ?", (job_id,))
        assert left.fetchone()[0] == 0
    assert os.environ.get("SKIL_JOB_TOKEN") is None
