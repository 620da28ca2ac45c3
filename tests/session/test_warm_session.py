"""The long-lived Spark session (``skil-sdk session``): jobs run warm in it, match
onnxruntime, can be killed without taking it down, and fall back to cold runs (saying
why) when it is gone or does not match.

One session (``local[2]``, in the test session's bundle home) serves the module; it is
started and stopped through the CLI, as a user does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet
from _waiting import release_and_reap, wait_for

from skil_sdk import SparkArgs
from skil_sdk.processes import pid_alive
from skil_sdk.session.client import warm_session_for
from skil_sdk.session.state import read_state

pytestmark = pytest.mark.slow

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
TEST_PROVIDERS = Path(__file__).resolve().parent.parent / "spark"


def _env(**extra: str) -> dict[str, str]:
    """This process's environment, with the Spark tests' providers importable (by the
    client and, started with it, the session's driver)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TEST_PROVIDERS), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def skil(*args: str, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [SKIL, *args], capture_output=True, text=True, env=_env(**extra_env), timeout=600
    )
    if check:
        assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def skil_json(*args: str, **extra_env: str) -> Any:
    return json.loads(skil(*args, "--json", **extra_env).stdout)


@pytest.fixture(scope="module")
def session_home(built_bundle: Any, node_cache: Path) -> Iterator[Path]:
    """The bundle's SKIL_HOME with a session running on local[2] for the module's tests."""
    home = Path(built_bundle.bundle).parents[3]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_HOME", str(home))
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        started = skil_json("session", "start", "--master", "local[2]", "--keep-warm", "2s")
        assert started["state"] == "running" and started["port"], started
        try:
            yield home
        finally:
            skil("session", "stop", "--force", check=False)
            shutil.rmtree(home / "session", ignore_errors=True)


@pytest.fixture()
def in_session(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKIL_HOME", str(session_home))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    return session_home


#: What the session looks at in a job: its SparkArgs and its Spark install.
_LOCAL2 = types.SimpleNamespace(spark=lambda: SparkArgs(master="local[2]"), spark_home=None)


def _model_and_data(tmp_path: Path, rows: int = 300) -> tuple[str, Path, Path, np.ndarray]:
    model = models.mlp_model(tmp_path, (6, 16, 3), seed=5)
    model_id = str(skil_json("models", "add", str(model), "--experiment", "warm")["id"])
    features = np.random.default_rng(7).standard_normal((rows, 6)).astype(np.float32)
    data = write_features_parquet(
        tmp_path / "data" / "part-0.parquet", np.arange(rows, dtype=np.int64), features, 50
    )
    return model_id, model, data.parent, features


def _infer(model_id: str, data: Path, out: Path, *extra: str, **extra_env: str) -> Any:
    return skil_json(
        "infer", "--model", model_id, "--provider", "parquet",
        "--provider-option", f"path={data}", "--provider-option", "id=id",
        "--provider-option", "features=features", "--output", str(out),
        "--master", "local[2]", "--engine", "spark", *extra, **extra_env,
    )


def test_jobs_run_warm_in_one_application_and_match_onnxruntime(
    in_session: Path, tmp_path: Path
) -> None:
    model_id, model, data, features = _model_and_data(tmp_path)
    before = skil_json("session", "status")
    first = _infer(model_id, data, tmp_path / "out1")
    second = _infer(model_id, data, tmp_path / "out2")
    for result in (first, second):
        assert result["state"] == "SUCCEEDED" and result["rows"] == 300, result
        assert result["session"] == "warm", result
    expected = run_onnxruntime(model, {"input": features})["output"]
    for out in ("out1", "out2"):
        table = read_output(tmp_path / out)
        assert table.column("id").to_pylist() == list(range(300))
        got = np.array(table.column("output").to_pylist(), dtype=np.float32)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    after = skil_json("session", "status")
    assert after["app_id"] == before["app_id"], "both jobs ran in the session's application"
    assert after["jobs_run"] == before["jobs_run"] + 2 and after["jobs"] == []
    log = skil("jobs", "logs", first["job_id"]).stdout
    assert f"runs in the Spark session {before['app_id']}" in log, log
    # the session's own server served the model to its executors, with the job's token
    assert before["server_url"] and pid_alive(before["server_pid"])
    downloads = skil_json("jobs", "show", first["job_id"])["downloads"]
    assert [d["range"] for d in downloads] == [None], downloads


def _blocking_job(model_id: str, markers: Path, out: Path) -> subprocess.Popen[bytes]:
    """``skil-sdk infer`` over the blocking provider (8 rows), started in the background."""
    markers.mkdir()
    return subprocess.Popen(
        [SKIL, "infer", "--model", model_id, "--provider", "_providers:BlockingProvider",
         "--provider-option", f"markers={markers}", "--output", str(out),
         "--master", "local[2]", "--json"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _wait_until_blocked(job: subprocess.Popen[bytes], markers: Path) -> None:
    """Wait until the blocking job's tasks run (they touch ``markers/started``)."""
    wait_for(lambda: (markers / "started").exists() or job.poll() is not None,
             "the warm job's tasks to start")
    assert job.poll() is None, job.communicate()[1].decode()[-2000:]


def _small_model(tmp_path: Path) -> str:
    path = models.small_mlp_model(tmp_path)
    return str(skil_json("models", "add", str(path), "-e", "warm")["id"])


def test_jobs_kill_cancels_one_warm_job_and_leaves_the_other_running(
    in_session: Path, tmp_path: Path
) -> None:
    model_id = _small_model(tmp_path)
    first = _blocking_job(model_id, tmp_path / "m1", tmp_path / "o1")
    try:
        _wait_until_blocked(first, tmp_path / "m1")
        first_id = read_state().jobs[0]
        second = _blocking_job(model_id, tmp_path / "m2", tmp_path / "o2")
        try:
            wait_for(lambda: len(read_state().jobs) == 2 or second.poll() is not None,
                     "the session to run both jobs")
            assert second.poll() is None, second.communicate()[1].decode()[-2000:]
            killed = skil_json("jobs", "kill", first_id)
            assert killed["state"] == "KILLED", killed
            first.communicate(timeout=300)
            assert first.returncode != 0
            assert first_id not in read_state().jobs
            assert second.poll() is None, "the other job still runs"
            (tmp_path / "m2" / "release").touch()
            stdout, stderr = second.communicate(timeout=300)
        finally:
            release_and_reap(second, tmp_path / "m2")
    finally:
        release_and_reap(first, tmp_path / "m1")
    other = json.loads(stdout)
    assert second.returncode == 0, stderr.decode()[-2000:]
    assert other["state"] == "SUCCEEDED" and other["session"] == "warm" and other["rows"] == 8
    assert sorted(read_output(tmp_path / "o2").column("id").to_pylist()) == list(range(8))
    assert not (tmp_path / "o1" / "_SUCCESS").exists()
    status = skil_json("session", "status")
    assert status["state"] == "running" and status["jobs"] == [], status


def test_a_killed_client_has_its_warm_job_cancelled(in_session: Path, tmp_path: Path) -> None:
    job = _blocking_job(_small_model(tmp_path), tmp_path / "m", tmp_path / "o")
    try:
        _wait_until_blocked(job, tmp_path / "m")
        job_id = read_state().jobs[0]
        job.kill()  # SIGKILL: no chance to say goodbye
        job.wait()
        wait_for(lambda: job_id not in read_state().jobs, "the session to cancel the job")
    finally:
        release_and_reap(job, tmp_path / "m")
    assert read_state().state == "running"
    session_log = skil("session", "logs").stdout
    assert f"Cancelling job {job_id}: its client disconnected" in session_log, session_log[-2000:]


def test_an_evaluation_runs_warm_and_matches_scikit_learn(
    in_session: Path, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.metrics import accuracy_score

    model = models.small_mlp_model(tmp_path)
    model_id = str(skil_json("models", "add", str(model), "-e", "warm")["id"])
    x = np.random.default_rng(3).standard_normal((200, 4)).astype(np.float32)
    labels = np.random.default_rng(4).integers(0, 3, 200)
    path = write_features_parquet(tmp_path / "l.parquet", np.arange(200), x, 40)
    table = pq.read_table(path).append_column("label", pa.array(labels, pa.int64()))
    pq.write_table(table, path, row_group_size=40)
    result = skil_json(
        "evaluate", "--model", model_id, "--provider", "parquet",
        "--provider-option", f"path={path}", "--eval-type", "evaluation",
        "--output", str(tmp_path / "metrics.json"), "--master", "local[2]", "--engine", "spark",
    )  # fmt: skip
    assert result["state"] == "SUCCEEDED" and result["session"] == "warm", result
    predicted = run_onnxruntime(model, {"input": x})["output"].argmax(axis=1)
    assert result["metrics"]["rows"] == 200
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy_score(labels, predicted))


def test_a_job_with_other_settings_or_another_bundle_runs_cold_and_says_why(
    in_session: Path, tmp_path: Path
) -> None:
    state = read_state()
    messages: list[str] = []
    bundle = types.SimpleNamespace(hash=state.bundle_hash)
    same = _LOCAL2
    assert warm_session_for(same, bundle, messages.append) is not None and messages == []

    other_conf = types.SimpleNamespace(
        spark=lambda: SparkArgs(master="local[2]", conf={"spark.sql.shuffle.partitions": "3"}),
        spark_home=None,
    )
    assert warm_session_for(other_conf, bundle, messages.append) is None
    assert "other settings" in messages[-1] and "spark.sql.shuffle.partitions" in messages[-1]

    other_bundle = types.SimpleNamespace(hash="f" * 64)
    assert warm_session_for(same, other_bundle, messages.append) is None
    assert "restart the session" in messages[-1], messages[-1]

    # end to end: a job with another conf runs cold beside the session, with equal output
    model_id, model, data, features = _model_and_data(tmp_path, rows=120)
    cold = _infer(model_id, data, tmp_path / "cold", "--conf", "spark.sql.shuffle.partitions=3")
    assert cold["state"] == "SUCCEEDED" and cold["session"] == "cold" and cold["rows"] == 120
    expected = run_onnxruntime(model, {"input": features})["output"]
    got = np.array(read_output(tmp_path / "cold").column("output").to_pylist(), np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_starting_again_is_idempotent_and_other_settings_conflict(in_session: Path) -> None:
    running = read_state()
    again = skil_json("session", "start", "--master", "local[2]", "--keep-warm", "2s")
    assert again["app_id"] == running.app_id and again["port"] == running.port
    conflict = skil("session", "start", "--master", "local[1]", check=False)
    assert conflict.returncode == 1
    assert "skil-sdk session stop" in conflict.stderr and "Traceback" not in conflict.stderr
    assert read_state().app_id == running.app_id


def test_an_idle_session_keeps_its_python_workers_busy_now_and_then(
    in_session: Path, tmp_path: Path
) -> None:
    """Spark stops a Python worker after a minute without a task; the session's keep-warm
    job (every 2 s here) gives each a moment's task while no job runs, and jobs after it
    run as before."""
    runs = read_state().keep_warm_runs
    wait_for(lambda: read_state().keep_warm_runs >= runs + 2, "two keep-warm jobs")
    model_id, model, data, features = _model_and_data(tmp_path, rows=100)
    after = _infer(model_id, data, tmp_path / "after")
    assert after["state"] == "SUCCEEDED" and after["session"] == "warm" and after["rows"] == 100
    expected = run_onnxruntime(model, {"input": features})["output"]
    got = np.array(read_output(tmp_path / "after").column("output").to_pylist(), np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    refused = skil("session", "start", "--keep-warm", "often", check=False)
    assert refused.returncode == 1 and "--keep-warm 'often' is not a duration" in refused.stderr


def test_session_stop_force_cancels_the_running_job_and_ends_the_application(
    in_session: Path, tmp_path: Path
) -> None:
    """Last of the module's tests: it stops the module's session."""
    running = read_state()
    job = _blocking_job(_small_model(tmp_path), tmp_path / "m", tmp_path / "o")
    try:
        _wait_until_blocked(job, tmp_path / "m")
        stopped = skil_json("session", "stop", "--force")
        _stdout, stderr = job.communicate(timeout=300)
    finally:
        release_and_reap(job, tmp_path / "m")
    assert stopped["state"] == "stopped" and stopped["was_running"] is True
    for pid in (running.pid, running.submit_pid, running.server_pid):
        assert pid is not None and not pid_alive(pid)
    assert job.returncode == 1
    assert "was cancelled in the Spark session (the session was stopped with --force)" in (
        stderr.decode()
    )
    assert not (tmp_path / "o").exists()
    messages: list[str] = []
    bundle = types.SimpleNamespace(hash=running.bundle_hash)
    assert warm_session_for(_LOCAL2, bundle, messages.append) is None
    assert messages == [], "a session stopped on request is not worth a message"
    assert skil_json("session", "stop")["was_running"] is False


def test_a_job_on_a_session_that_dies_fails_in_one_sentence_and_the_next_runs_cold(
    bundle_home: Path, tmp_path: Path
) -> None:
    try:
        skil_json("session", "start", "--master", "local[2]")
        session = read_state()
        job = _blocking_job(_small_model(tmp_path), tmp_path / "m", tmp_path / "o")
        try:
            _wait_until_blocked(job, tmp_path / "m")
            assert session.pid is not None
            os.kill(session.pid, signal.SIGKILL)  # the session's driver program
            _stdout, stderr = job.communicate(timeout=300)
        finally:
            release_and_reap(job, tmp_path / "m")
        assert job.returncode == 1
        last = stderr.decode().strip().splitlines()[-1]
        assert "The Spark session stopped while job" in last and "runs cold" in last, last
        assert "Traceback" not in stderr.decode()
        wait_for(lambda: not pid_alive(session.submit_pid or 0), "spark-submit to exit")
        dead = read_state()
        assert dead.state == "stopped" and "ended without stopping" in str(dead.error)
        messages: list[str] = []
        bundle = types.SimpleNamespace(hash=session.bundle_hash)
        assert warm_session_for(_LOCAL2, bundle, messages.append) is None
        assert len(messages) == 1 and "ended unexpectedly" in messages[0], messages
        assert warm_session_for(_LOCAL2, bundle, messages.append) is None and len(messages) == 1
    finally:
        skil("session", "stop", "--force", check=False)
        shutil.rmtree(bundle_home / "session", ignore_errors=True)


def test_an_idle_session_stops_itself(bundle_home: Path) -> None:
    """A session with a short idle timeout stops once it has had no job that long."""
    try:
        started = skil_json("session", "start", "--master", "local[1]", "--idle-timeout", "2s")
        assert started["state"] == "running" and started["idle_timeout_s"] == 2.0
        wait_for(lambda: read_state().state == "stopped", "the idle session to stop itself")
        state = read_state()
        assert state.error is None and state.pid is not None
        wait_for(lambda: not pid_alive(state.pid), "the session's driver to exit")
        log = skil("session", "logs").stdout
        assert "idle for 2 s (its idle timeout)" in log, log[-2000:]
    finally:
        skil("session", "stop", "--force", check=False)
        shutil.rmtree(bundle_home / "session", ignore_errors=True)
