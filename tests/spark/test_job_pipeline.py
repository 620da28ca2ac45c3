"""The job pipeline's edges in real jobs: a provider's own failures named with their type
and file:line, the traceback kept in the job's log, and Ctrl-C leaving no output behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import _model_fixtures as models
import _providers
import pytest
from _waiting import release_and_reap, wait_for

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import ProviderError, SkilError
from skil_sdk.spark.submit import InferenceRequest, submit
from skil_sdk.store.jobs import FAILED, KILLED, JobStore

pytestmark = pytest.mark.slow

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
HERE = Path(__file__).resolve().parent


def _line_of(text: str) -> int:
    """The line of ``_providers.py`` that holds ``text``."""
    lines = (HERE / "_providers.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _infer(spark: Any, model_id: str, provider: str, output: Path) -> Any:
    request = InferenceRequest(model_id, provider, str(output), SparkArgs(master="local[2]"))
    return submit(request, spark=spark)


def test_a_failing_data_method_names_its_type_and_line(spark: Any, tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "p")
    with pytest.raises(ProviderError) as caught:
        _infer(spark, model_id, "_providers:BrokenProvider", tmp_path / "out")
    message = caught.value.message
    assert "failed in data(): ZeroDivisionError: division by zero" in message, message
    assert f"_providers.py:{_line_of('return rows / 0')}" in message, message
    assert "the full traceback is in this process's log (the 'skil_sdk' logger)" in message
    record = JobStore().list()[0]
    assert record.state == FAILED and "ZeroDivisionError" in (record.error or "")
    assert not (tmp_path / "out").exists()


def test_a_failing_reader_on_the_executors_names_its_type_and_line(
    spark: Any, tmp_path: Path
) -> None:
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(_providers)  # the bundle does not hold the module
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "p")
    with pytest.raises(SkilError) as caught:
        _infer(spark, model_id, "_providers:BrokenSourceProvider", tmp_path / "out")
    message = caught.value.message
    assert "failed in read(): KeyError: 'split " in message, message
    assert f"_providers.py:{_line_of('lost its file')}" in message, message
    assert not (tmp_path / "out").exists()


def _env_with_test_providers() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def test_the_traceback_is_in_the_job_log(bundle_home: Path, tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "p")
    env = _env_with_test_providers()
    completed = subprocess.run(
        [SKIL, "infer", "--model", model_id, "--provider", "_providers:BrokenProvider",
         "--output", str(tmp_path / "out"), "--master", "local[2]", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 1, completed.stderr[-2000:]
    error = json.loads(completed.stdout)["error"]["message"]
    assert "ZeroDivisionError: division by zero" in error and "_providers.py:" in error
    job_id = JobStore().list()[0].id
    assert f"skil-sdk jobs logs {job_id}" in error
    logs = subprocess.run(
        [SKIL, "jobs", "logs", job_id], capture_output=True, text=True, env=env, timeout=120
    ).stdout
    assert "Traceback (most recent call last)" in logs and "return rows / 0" in logs
    assert not (tmp_path / "out").exists()


def test_ctrl_c_leaves_no_output_that_blocks_the_retry(bundle_home: Path, tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "p")
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    argv = [SKIL, "infer", "--model", model_id, "--provider", "_providers:BlockingProvider",
            "--provider-option", f"markers={markers}", "--output", str(out),
            "--master", "local[2]"]
    process = subprocess.Popen(
        argv, env=_env_with_test_providers(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: (markers / "started").exists() or process.poll() is not None,
                  "the job's tasks to start")
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert out.exists(), "Spark created the output directory when its tasks started"
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    finally:
        release_and_reap(process, markers)
    assert process.returncode != 0
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert JobStore().list()[0].state == KILLED
