"""Jobs over time: detached jobs, `jobs wait`, `jobs kill`, and a killed `skil-sdk infer`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _model_fixtures as models
import pytest

pytestmark = pytest.mark.slow

SKIL = str(Path(sys.executable).with_name("skil-sdk"))


def skil_json(*args: str) -> Any:
    completed = subprocess.run(
        [SKIL, *args, "--json"], capture_output=True, text=True, env=dict(os.environ), timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def job_processes(job_id: str) -> list[str]:
    """Command lines of live processes that belong to the job (spark-submit, driver)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if job_id in cmdline:
            found.append(cmdline)
    return found


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def add_small_model(tmp_path: Path) -> str:
    """A tiny model (1 input feature, the squares provider's) added through the CLI."""
    path = models.mlp_model(tmp_path, (1, 3, 2))
    return str(skil_json("models", "add", str(path), "--experiment", "jobs")["id"])


def start_detached(model_id: str, out: Path) -> Any:
    """`skil-sdk infer --detach` over 30 rows of the squares provider; its JSON result."""
    return skil_json(
        "infer",
        "--model",
        model_id,
        "--provider",
        "squares",
        "--provider-option",
        "n=30",
        "--output",
        str(out),
        "--master",
        "local[2]",
        "--detach",
    )


def test_detached_job_then_wait(bundle_home: Path, tmp_path: Path) -> None:
    model_id = add_small_model(tmp_path)
    started = time.time()
    result = start_detached(model_id, tmp_path / "out")
    assert result["state"] in ("SUBMITTED", "RUNNING")
    assert time.time() - started < 60, "a detached job returns before the job ends"
    done = skil_json("jobs", "wait", result["job_id"], "--timeout", "300")
    assert done["state"] == "SUCCEEDED" and done["rows_done"] == 30
    assert (tmp_path / "out" / "_SUCCESS").exists()
    listed = skil_json("jobs", "list")
    assert listed[0]["job_id"] == result["job_id"]


def test_killed_infer_takes_its_job_down(bundle_home: Path, tmp_path: Path) -> None:
    model_id = add_small_model(tmp_path)
    process = subprocess.Popen(
        [
            SKIL,
            "infer",
            "--model",
            model_id,
            "--provider",
            "squares",
            "--provider-option",
            "n=30",
            "--output",
            str(tmp_path / "out"),
            "--master",
            "local[2]",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )

    def running_job() -> Any:
        jobs = skil_json("jobs", "list")
        return jobs and jobs[0]["state"] == "RUNNING" and job_processes(jobs[0]["job_id"])

    wait_until(running_job, 120, "the job to reach spark-submit")
    job_id = skil_json("jobs", "list")[0]["job_id"]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    wait_until(lambda: not job_processes(job_id), 60, "spark-submit and the driver to exit")
    record = skil_json("jobs", "show", job_id)
    assert record["state"] == "FAILED" and "exited before the job finished" in record["error"]
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    # a rerun with --overwrite succeeds, with no trace of the failed attempt
    rerun = skil_json(
        "infer",
        "--model",
        model_id,
        "--provider",
        "squares",
        "--provider-option",
        "n=30",
        "--output",
        str(tmp_path / "out"),
        "--master",
        "local[2]",
        "--overwrite",
    )
    assert rerun["state"] == "SUCCEEDED" and rerun["rows"] == 30
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "_temporary" not in names and "_SUCCESS" in names


def test_jobs_kill_stops_a_detached_job(bundle_home: Path, tmp_path: Path) -> None:
    model_id = add_small_model(tmp_path)
    result = start_detached(model_id, tmp_path / "out")
    job_id = result["job_id"]
    wait_until(lambda: bool(job_processes(job_id)), 120, "the detached job to start")
    killed = skil_json("jobs", "kill", job_id)
    assert killed["state"] == "KILLED"
    wait_until(lambda: not job_processes(job_id), 60, "the job's processes to exit")
    assert not (tmp_path / "out" / "_SUCCESS").exists()
