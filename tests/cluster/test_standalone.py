"""The same job on a real standalone cluster: a master and a worker on 127.0.0.1.

The test starts both with pyspark's ``spark-class`` (loopback only, bounded waits) and
submits with ``skil-sdk infer --master spark://...``. The executors are separate JVMs
that run the bundle shipped with ``--files``; they download the model through the
job's server exactly once for the node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

from skil_sdk.spark.sparkhome import find_spark_home

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(600)]

SKIL = str(Path(sys.executable).with_name("skil-sdk"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(
                f"{log.name} exited early:\n{log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not seen in {log} within {timeout} s")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``spark://127.0.0.1:PORT`` of a master with one worker (2 cores, 2 GiB)."""
    spark_class = str(find_spark_home() / "bin" / "spark-class")
    work = tmp_path_factory.mktemp("standalone")
    port = _free_port()
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(work))
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = work / f"{name}.log"
        process = subprocess.Popen(
            [spark_class, *args],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        processes.append(process)
        return process, log

    master_url = f"spark://127.0.0.1:{port}"
    try:
        master, master_log = start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(_free_port()),
        )
        _wait_for(master_log, "I have been elected leader", master, 90)
        _worker, _worker_log = start(
            "worker",
            "org.apache.spark.deploy.worker.Worker",
            master_url,
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "2g",
            "--work-dir",
            str(work / "worker"),
            "--webui-port",
            str(_free_port()),
        )
        _wait_for(master_log, "Registering worker", master, 90)
        yield master_url
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_job_on_standalone_cluster(
    standalone_cluster: str,
    built_bundle: Any,
    node_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKIL_HOME", str(Path(built_bundle.bundle).parents[3]))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    cluster_cache = tmp_path / "node"  # a node the executors have never seen
    monkeypatch.setenv("SKIL_NODE_CACHE", str(cluster_cache))
    model = models.small_mlp_model(tmp_path)
    features = np.random.default_rng(21).standard_normal((400, 4)).astype(np.float32)
    data = write_features_parquet(
        tmp_path / "d.parquet", np.arange(400, dtype=np.int64), features, 25
    )
    env = dict(os.environ)
    added = subprocess.run(
        [SKIL, "models", "add", str(model), "--experiment", "cluster", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    model_id = json.loads(added.stdout)["id"]
    out = tmp_path / "out"
    completed = subprocess.run(
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
            standalone_cluster,
            "--total-executor-cores",
            "2",
            "--conf",
            "spark.executor.cores=1",
            "--executor-memory",
            "768m",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=480,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout)
    assert result["rows"] == 400

    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(400))
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)

    meta = json.loads((out / "_skil_job.json").read_text())
    assert meta["master"] == standalone_cluster
    executors = meta["executors"]
    assert executors and {e["bundle_hash"] for e in executors} == {built_bundle.hash[:12]}
    assert sum(e["rows"] for e in executors) == 400
    # the Python workers ran from the bundle Spark shipped into the executors' work dirs
    assert all(
        e["executable"].endswith(f"skil-bundle-{built_bundle.hash[:12]}.pex") for e in executors
    )

    job = json.loads(
        subprocess.run(
            [SKIL, "jobs", "show", result["job_id"], "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
    )
    full_downloads = [d for d in job["downloads"] if d["range"] is None]
    assert len(full_downloads) == 1, job["downloads"]  # one node, one download
    assert len(list((cluster_cache / "models").iterdir())) == 1
