"""Real faults on a real standalone cluster: the job still succeeds, every id exactly once.

One cluster (tests/cluster/conftest.py) serves the module. Each test submits
``skil-sdk infer`` against it with a Parquet file of many small row groups (one Spark
task each), waits until the job is demonstrably in flight, injects one fault, and
checks the output: ``_SUCCESS``, and every input id exactly once.

- an executor JVM (``CoarseGrainedExecutorBackend``, a child of this cluster's worker)
  is SIGKILLed: the master starts a new executor and Spark reruns the lost tasks;
- a Python worker (a fork of ``pyspark.daemon``) is SIGKILLed: its task fails and is
  retried;
- the model server (``skil-sdk serve``, shared through ``SKIL_SERVER_URL``) is SIGKILLed
  while the executors download a ~300 MB model, and started again on the same port:
  the download resumes with HTTP Range;
- the client, spark-submit and the driver are SIGKILLed once tasks committed: ``skil-sdk
  jobs resume`` runs only the tasks that were missing.

Killing the ``skil-sdk infer`` client is covered by tests/spark/test_jobs_cli.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _model_fixtures as models
import httpx
import numpy as np
import onnx
import pytest
from _spark_helpers import read_output, write_features_parquet
from onnx import TensorProto, helper, numpy_helper

from skil_sdk.store.jobs import JobRecord, JobStore

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(420)]

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
ROWS = 3000
ROW_GROUP = 30  # 100 splits, one task each (--rows-per-task 30)


# ---------------------------------------------------------------------------- processes

Cluster = Any  # tests/cluster/conftest.py's Cluster: master_url, worker_pid, work_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descendants(root: int) -> list[int]:
    """Every live process whose ancestry reaches ``root``."""
    parents = {int(p.name): _parent(int(p.name)) for p in Path("/proc").glob("[0-9]*")}
    found: list[int] = []
    for pid in parents:
        ancestor = parents.get(pid, 0)
        while ancestor > 1:
            if ancestor == root:
                found.append(pid)
                break
            ancestor = parents.get(ancestor, 0)
    return found


def _executors(cluster: Cluster) -> list[int]:
    return [
        pid
        for pid in _descendants(cluster.worker_pid)
        if "CoarseGrainedExecutorBackend" in _cmdline(pid) and "--app-id" in _cmdline(pid)
    ]


def _python_workers(cluster: Cluster) -> list[int]:
    """Forked Python workers (a ``pyspark.daemon`` whose parent is one too)."""
    daemons = [p for p in _descendants(cluster.worker_pid) if "pyspark.daemon" in _cmdline(p)]
    return [p for p in daemons if _parent(p) in daemons]


# ---------------------------------------------------------------------------- jobs


def _wait(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _job_since(home: Path, since: float) -> JobRecord | None:
    jobs = [j for j in JobStore(home / "jobs.sqlite").list(limit=5) if j.created_at >= since]
    return jobs[0] if jobs else None


def _start_infer(
    cluster: Cluster,
    model_id: str,
    data: Path,
    out: Path,
    env: dict[str, str],
    new_session: bool = False,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            SKIL,
            "infer",
            "--model",
            model_id,
            "--provider",
            "parquet",
            "--provider-option",
            f"path={data}",
            "--output",
            str(out),
            "--master",
            cluster.master_url,
            "--total-executor-cores",
            "2",
            "--conf",
            "spark.executor.cores=1",
            "--executor-memory",
            "768m",
            "--batch-size",
            "64",
            "--rows-per-task",
            str(ROW_GROUP),  # a task per row group: tens of tasks to fault in
            "--json",
        ],
        stdout=subprocess.PIPE,
        # progress goes to stderr all along: a file, so that a full pipe never stalls it
        stderr=(out.parent / "infer.stderr").open("w"),
        text=True,
        env=env,
        start_new_session=new_session,
    )


def _finish(process: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    try:
        stdout, _ = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, _ = process.communicate()
    stderr = (out.parent / "infer.stderr").read_text(errors="replace")
    assert process.returncode == 0, stderr[-4000:]
    result: dict[str, Any] = json.loads(stdout)
    return result


def _assert_every_id_once(out: Path) -> None:
    assert (out / "_SUCCESS").exists()
    assert not (out / "_temporary").exists()
    ids = read_output(out).column("id").to_pylist()
    assert ids == list(range(ROWS)), f"{len(ids)} rows, {len(set(ids))} distinct ids"


@pytest.fixture
def job_env(bundle_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The bundle's home, a node cache of its own, loopback only."""
    monkeypatch.setenv("SKIL_NODE_CACHE", str(tmp_path / "node"))
    return dict(os.environ)


def _add(model: Path, env: dict[str, str]) -> str:
    added = subprocess.run(
        [SKIL, "models", "add", str(model), "--experiment", "faults", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    return str(json.loads(added.stdout)["id"])


def _data(tmp_path: Path) -> Path:
    features = np.random.default_rng(5).standard_normal((ROWS, 4)).astype(np.float32)
    return write_features_parquet(
        tmp_path / "d.parquet", np.arange(ROWS, dtype=np.int64), features, ROW_GROUP
    )


# ---------------------------------------------------------------------------- tests


def test_killed_executor_jvm(cluster: Cluster, job_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(job_env["SKIL_HOME"])
    model_id = _add(models.small_mlp_model(tmp_path, seed=41), job_env)
    since = time.time()
    out = tmp_path / "out"
    process = _start_infer(cluster, model_id, _data(tmp_path), out, job_env)
    job = _wait(
        lambda: (j := _job_since(home, since)) is not None and j.rows_done > 0 and j,
        240,
        "the first progress report",
    )
    victims = _executors(cluster)
    assert victims, "no executor JVM of this cluster"
    os.kill(victims[0], signal.SIGKILL)
    in_flight = _job_since(home, since)
    assert in_flight is not None and in_flight.rows_done < ROWS and not in_flight.is_finished
    result = _finish(process, out)
    assert result["rows"] == ROWS and result["job_id"] == job.id
    _assert_every_id_once(out)
    app_dirs = sorted(cluster.work_dir.glob("app-*"), key=lambda p: p.stat().st_mtime)
    assert len(list(app_dirs[-1].iterdir())) >= 2, "the master started a new executor"


def test_killed_python_worker(cluster: Cluster, job_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(job_env["SKIL_HOME"])
    model_id = _add(models.small_mlp_model(tmp_path, seed=42), job_env)
    since = time.time()
    out = tmp_path / "out"
    process = _start_infer(cluster, model_id, _data(tmp_path), out, job_env)
    _wait(
        lambda: (j := _job_since(home, since)) is not None and j.rows_done > 0,
        240,
        "the first progress report",
    )
    log_path = Path(str(_job_since(home, since).log_path))  # type: ignore[union-attr]

    def task_lost() -> bool:
        # an idle worker's death costs nothing (Spark checks a reused worker first), so
        # kill the forked workers until a running task was among them
        for victim in _python_workers(cluster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        log = log_path.read_text(errors="replace")
        return "Lost task" in log or "Python worker exited unexpectedly" in log

    _wait(task_lost, 60, "a task lost with its Python worker", 0.3)
    in_flight = _job_since(home, since)
    assert in_flight is not None and not in_flight.is_finished
    result = _finish(process, out)
    assert result["rows"] == ROWS
    _assert_every_id_once(out)


def big_weights_model(directory: Path, megabytes: int = 300) -> Path:
    """``input [N, 4] -> output [N, 3]``: a small MatMul plus one value gathered from a
    ``megabytes`` weight tensor, so the file is large and inference stays cheap."""
    rng = np.random.default_rng(7)
    big = np.zeros(megabytes * 1024 * 1024 // 4, dtype=np.float32)
    big[0] = 0.5
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["mm"]),
        helper.make_node("Gather", ["big", "first"], ["offset"]),
        helper.make_node("Add", ["mm", "offset"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])],
        initializer=[
            numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(big, "big"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "first"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", models.OPSET)])
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "big.onnx"
    onnx.save(model, str(path))
    return path


def _serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [SKIL, "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert process.poll() is None, log.read_text()[-2000:]
            return False

    _wait(healthy, 60, "skil-sdk serve answering")
    return process


def test_server_stopped_mid_download_then_restarted(
    cluster: Cluster, job_env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(job_env["SKIL_HOME"])
    model_id = _add(big_weights_model(tmp_path / "model"), job_env)
    port = free_port()
    env = dict(job_env, SKIL_SERVER_URL=f"http://127.0.0.1:{port}")
    server = _serve(port, env, tmp_path / "serve.log")
    node_models = tmp_path / "node" / "models"
    since = time.time()
    out = tmp_path / "out"
    try:
        process = _start_infer(cluster, model_id, _data(tmp_path), out, env)

        def partial() -> bool:
            return (
                any(f.stat().st_size > 0 for f in node_models.glob(".*.work/model.onnx"))
                if node_models.exists()
                else False
            )

        _wait(partial, 240, "a partial model download in the node cache", 0.005)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        time.sleep(1.0)
        server = _serve(port, env, tmp_path / "serve.log")
        result = _finish(process, out)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert result["rows"] == ROWS
    _assert_every_id_once(out)
    job = _job_since(home, since)
    assert job is not None
    downloads = JobStore(home / "jobs.sqlite").downloads(job.id)
    assert any(d["range"] for d in downloads), f"no resumed (Range) request in {downloads}"
    assert len([p for p in node_models.iterdir() if not p.name.startswith(".")]) >= 1


def _store_checks(env: dict[str, str]) -> dict[str, str]:
    completed = subprocess.run(
        [SKIL, "doctor", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    names = ("skil-home", "models", "plugins", "token")
    return {
        c["name"]: c["status"] for c in json.loads(completed.stdout)["checks"] if c["name"] in names
    }


def test_killed_client_and_driver_then_resumed(
    cluster: Cluster, job_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL of the whole ``skil-sdk infer`` process group (the client, spark-submit and
    the driver) once tasks have committed; ``jobs resume`` computes only the others."""
    home = Path(job_env["SKIL_HOME"])
    model_id = _add(models.small_mlp_model(tmp_path, seed=44), job_env)
    since = time.time()
    out = tmp_path / "out"
    process = _start_infer(cluster, model_id, _data(tmp_path), out, job_env, new_session=True)
    committed = out / "_temporary" / "committed"

    def some_committed() -> int:
        return len(list(committed.glob("task-*"))) if committed.is_dir() else 0

    _wait(lambda: some_committed() > 0 or process.poll() is not None, 240, "a task to commit")
    assert process.poll() is None, (out.parent / "infer.stderr").read_text()[-3000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    kept_at_kill = some_committed()
    job = _job_since(home, since)
    assert job is not None
    record = _wait(lambda: (r := JobStore(home / "jobs.sqlite").get(job.id)).is_finished and r,
                   60, "the killed job to be marked finished")
    assert record.state == "FAILED" and not (out / "_SUCCESS").exists()
    assert not list(out.glob("part-*")), "no rows are visible before the job's commit"
    resumed = subprocess.run([SKIL, "jobs", "resume", job.id, "--json"], capture_output=True,
                             text=True, env=job_env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout)
    tasks = ROWS // ROW_GROUP
    assert result["tasks"] == tasks and kept_at_kill <= result["tasks_kept"] < tasks
    assert (result["rows_in"], result["rows_written"]) == (ROWS, ROWS)
    _assert_every_id_once(out)
    meta = json.loads((out / "_skil_job.json").read_text())
    assert meta["tasks_run"] == tasks - meta["tasks_kept"], "only the missing tasks ran"
    assert meta["tasks_kept"] == result["tasks_kept"]


def test_killed_at_job_start(job_env: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL of ``skil-sdk infer`` as soon as its job is recorded (before spark-submit
    runs): the record becomes FAILED, the stores stay consistent, the rerun succeeds."""
    home = Path(job_env["SKIL_HOME"])
    model_id = _add(models.small_mlp_model(tmp_path, seed=43), job_env)
    data = write_features_parquet(
        tmp_path / "d.parquet",
        np.arange(ROWS, dtype=np.int64),
        np.ones((ROWS, 4), dtype=np.float32),
        1000,
    )
    jobs_dir = home / "jobs"
    known = set(jobs_dir.iterdir()) if jobs_dir.exists() else set()
    out = tmp_path / "out"
    argv = [
        SKIL,
        "infer",
        "--model",
        model_id,
        "--provider",
        "parquet",
        "--provider-option",
        f"path={data}",
        "--output",
        str(out),
        "--master",
        "local[2]",
        "--json",
    ]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=job_env
    )
    new_job = _wait(
        lambda: jobs_dir.exists() and (set(jobs_dir.iterdir()) - known),
        240,
        "the job's record",
        0.005,
    )
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    job_id = next(iter(new_job)).name

    def reaped() -> JobRecord | None:
        record = JobStore(home / "jobs.sqlite").get(job_id)
        return record if record.is_finished else None

    record = _wait(reaped, 60, "the killed job to be marked finished")
    assert record.state == "FAILED" and "exited before the job finished" in str(record.error)

    def job_processes() -> list[Path]:
        cmdlines = Path("/proc").glob("[0-9]*/cmdline")
        return [p for p in cmdlines if job_id in _cmdline(int(p.parent.name))]

    _wait(lambda: not job_processes(), 60, "the job's processes to exit")
    assert not (out / "_SUCCESS").exists()
    assert set(_store_checks(job_env).values()) == {"ok"}

    rerun = subprocess.run(
        [*argv, "--overwrite"], capture_output=True, text=True, env=job_env, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _assert_every_id_once(out)
    meta = json.loads((out / "_skil_job.json").read_text())
    assert meta["job_id"] == json.loads(rerun.stdout)["job_id"] != job_id
