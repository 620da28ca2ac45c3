"""A real standalone Spark cluster for the tests of this folder: one per test module.

The master and one worker are started with pyspark's ``spark-class`` on 127.0.0.1
(loopback only, bounded waits) and stopped with their process groups at the end of the
module. Executors the worker launches are its child processes, which lets the fault
tests find (and kill) exactly this cluster's executors.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _tmpdirs import removed_after

from skil_sdk.spark.sparkhome import find_spark_home


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until ``text`` appears in ``log``; fail if ``process`` exits or time runs out."""
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


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master URL, worker JVM pid and work directory."""

    master_url: str
    worker_pid: int
    work_dir: Path


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A master with one worker (2 cores, 2 GiB) on 127.0.0.1, for one test module; its
    folder (logs, the worker's work dir) is removed at the end unless a test failed."""
    spark_class = str(find_spark_home() / "bin" / "spark-class")
    work = tmp_path_factory.mktemp("standalone")
    port = free_port()
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
    with removed_after(request, work):
        try:
            master, master_log = start(
                "master",
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(free_port()),
            )
            wait_for(master_log, "I have been elected leader", master, 90)
            worker, _worker_log = start(
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
                str(free_port()),
            )
            wait_for(master_log, "Registering worker", master, 90)
            yield Cluster(master_url, worker.pid, work / "worker")
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


@pytest.fixture(scope="module")
def standalone_cluster(cluster: Cluster) -> str:
    """``spark://127.0.0.1:PORT`` of the module's cluster."""
    return cluster.master_url
