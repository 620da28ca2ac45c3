"""The driver JVM's class-data archive: recorded by a first cold job, dumped in the
background, mapped by the next driver (real spark-submit, real ``java -Xshare:dump``)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

from skil_sdk.spark import jvmarchive
from skil_sdk.spark.args import SparkArgs
from skil_sdk.spark.jvmarchive import (
    ARCHIVE,
    CLAIM,
    CLASS_LIST,
    DUMP_PLAN,
    FAILED,
    STAMP,
    JvmArchive,
    driver_archive,
    dump_command,
    with_java_options,
)
from skil_sdk.spark.sparkhome import find_spark_home

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
JAVA_COMMAND = [
    "/usr/lib/jvm/java-17/bin/java", "-cp", "/spark/conf:/spark/jars/*", "-Xmx1g",
    "-XX:+IgnoreUnrecognizedVMOptions", "--add-modules=jdk.incubator.vector",
    "--add-opens=java.base/java.lang=ALL-UNNAMED", "org.apache.spark.deploy.SparkSubmit",
]  # fmt: skip


@pytest.fixture()
def archive_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The archive turned on, in a node cache of this test's own."""
    monkeypatch.delenv(jvmarchive.ARCHIVE_ENV, raising=False)
    cache = tmp_path / "node-cache"
    monkeypatch.setenv("SKIL_NODE_CACHE", str(cache))
    return cache


def _ready_archive(directory: Path, size: int = 64) -> JvmArchive:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CLASS_LIST).write_text("org/apache/spark/SparkContext\n")
    (directory / ARCHIVE).write_bytes(b"x" * size)
    info = (directory / ARCHIVE).stat()
    (directory / STAMP).write_text(json.dumps({"size": size, "mtime_ns": info.st_mtime_ns}))
    return JvmArchive(directory)


def test_the_dump_command_uses_the_drivers_java_class_path_and_modules(tmp_path: Path) -> None:
    command = dump_command(JAVA_COMMAND, tmp_path)
    assert command is not None
    assert command[:2] == ["/usr/lib/jvm/java-17/bin/java", "-Xshare:dump"]
    assert f"-XX:SharedClassListFile={tmp_path / CLASS_LIST}" in command
    assert f"-XX:SharedArchiveFile={tmp_path / ARCHIVE}.tmp" in command
    assert command[command.index("-cp") + 1] == "/spark/conf:/spark/jars/*"
    assert "--add-modules=jdk.incubator.vector" in command
    assert not any(arg.startswith("--add-opens") or arg == "-Xmx1g" for arg in command)
    assert dump_command(["/usr/bin/java", "-version"], tmp_path) is None
    assert dump_command([], tmp_path) is None


def test_which_drivers_use_an_archive(archive_on: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = find_spark_home(None)
    local = driver_archive(SparkArgs(master="local[2]"), home)
    assert local is not None and local.directory.parent == archive_on / "jvm"
    # the same settings give the same archive; another driver class path another one
    assert driver_archive(SparkArgs(master="local[2]"), home) == local
    other = driver_archive(SparkArgs(master="local[2]", driver_class_path="/opt/x.jar"), home)
    assert other is not None and other.directory != local.directory
    hadoop = driver_archive(SparkArgs(master="local[2]"), home, env={
        **os.environ, "HADOOP_CONF_DIR": "/etc/hadoop/conf"})  # fmt: skip
    assert hadoop is not None and hadoop.directory not in (local.directory, other.directory)
    # a driver elsewhere, the user's own class-data options, or turned off: none
    assert driver_archive(SparkArgs(master="yarn", deploy_mode="cluster"), home) is None
    assert driver_archive(SparkArgs(master="yarn"), home) is not None
    own = SparkArgs(master="local[2]", driver_java_options="-Xshare:off")
    assert driver_archive(own, home) is None
    conf = SparkArgs(master="local[2]", conf={"spark.driver.extraJavaOptions": "-Xshare:off"})
    assert driver_archive(conf, home) is None
    assert driver_archive(SparkArgs(master="local[2]"), home, env={"PATH": "/nonexistent"}) is None
    monkeypatch.setenv(jvmarchive.ARCHIVE_ENV, "off")
    assert driver_archive(SparkArgs(master="local[2]"), home) is None


def test_a_job_records_once_then_maps_the_stamped_archive(tmp_path: Path) -> None:
    archive = JvmArchive(tmp_path / "key")
    options = archive.java_options()
    assert len(options) == 1 and options[0].startswith("-XX:DumpLoadedClassList=")
    assert archive.recording is not None and archive.state() == "recording"
    # a failed job's list is dropped: the next job records again
    archive.recording.write_text("org/apache/spark/SparkContext\n")
    assert archive.after_job(False) is False
    assert not list(archive.directory.glob(f"{CLASS_LIST}*"))
    # without the driver JVM's command line there is nothing to dump with: dropped too
    again = JvmArchive(archive.directory)
    again.java_options()
    assert again.recording is not None
    again.recording.write_text("org/apache/spark/SparkContext\n")
    assert again.after_job(True) is False  # no java command seen: nothing to dump with
    assert not (archive.directory / CLASS_LIST).exists()
    ready = _ready_archive(tmp_path / "ready")
    assert ready.java_options() == [f"-XX:SharedArchiveFile={ready.archive}"]
    assert ready.mapping_options() == ready.java_options()
    assert ready.recording is None and ready.state() == "unused"


def test_a_damaged_archive_is_removed_and_recorded_again(tmp_path: Path) -> None:
    archive = _ready_archive(tmp_path / "key")
    assert archive.ready()
    archive.archive.chmod(0o644)
    archive.archive.write_bytes(b"x" * 10)  # truncated
    assert archive.java_options()[0].startswith("-XX:DumpLoadedClassList=")
    assert not archive.archive.exists() and not (archive.directory / STAMP).exists()
    assert archive.mapping_options() == []


def test_a_class_list_without_an_archive_records_nothing_more(tmp_path: Path) -> None:
    directory = tmp_path / "key"
    directory.mkdir()
    (directory / CLASS_LIST).write_text("org/apache/spark/SparkContext\n")
    archive = JvmArchive(directory)
    with (directory / CLAIM).open("w") as claim:
        fcntl.flock(claim, fcntl.LOCK_EX)  # as a running dump holds it
        assert archive.java_options() == [] and archive.state() == "dumping"
    assert archive.state() == "unused"  # the dump's process is gone: its lock with it
    (directory / FAILED).write_text("java -Xshare:dump exited with 1\n")
    assert archive.java_options() == [] and not archive.ready()


def test_a_stopped_dump_starts_again_and_stamps_its_archive(tmp_path: Path) -> None:
    directory = tmp_path / "key"
    directory.mkdir()
    (directory / CLASS_LIST).write_text("org/apache/spark/SparkContext\n")
    # a stand-in for java -Xshare:dump: it writes the partial archive the real one would
    partial = directory / f"{ARCHIVE}.tmp"
    plan = [sys.executable, "-c", f"open({str(partial)!r}, 'wb').write(b'x' * 4096)"]
    (directory / DUMP_PLAN).write_text(json.dumps(plan))
    archive = JvmArchive(directory)
    assert archive.java_options() == []  # this job records nothing; the dump restarts
    _wait_for_dump(directory, timeout=120)
    assert archive.ready() and archive.archive.stat().st_size == 4096
    assert not partial.exists() and not (directory / FAILED).exists()
    assert archive.java_options() == [f"-XX:SharedArchiveFile={archive.archive}"]
    # a dump that fails says so, and is not started again
    failing = tmp_path / "failing"
    failing.mkdir()
    (failing / CLASS_LIST).write_text("org/apache/spark/SparkContext\n")
    (failing / DUMP_PLAN).write_text(json.dumps([sys.executable, "-c", "raise SystemExit(3)"]))
    assert JvmArchive(failing).java_options() == []
    _wait_for_dump(failing, timeout=120)
    assert (failing / FAILED).read_text() == "java -Xshare:dump exited with 3\n"
    assert not JvmArchive(failing).ready() and not (failing / CLAIM).exists()


def test_java_options_join_the_users_own() -> None:
    args = SparkArgs(master="local[2]", driver_java_options="-Dlog4j2.level=warn")
    joined = with_java_options(args, ["-XX:SharedArchiveFile=/a.jsa"])
    assert joined.driver_java_options == "-Dlog4j2.level=warn -XX:SharedArchiveFile=/a.jsa"
    assert with_java_options(SparkArgs(master="local[2]"), []).driver_java_options is None
    argv = joined.to_submit_argv()
    assert argv[argv.index("--driver-java-options") + 1] == joined.driver_java_options


def _wait_for_dump(directory: Path, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while (directory / CLAIM).exists():
        assert time.monotonic() < deadline, (directory / "dump.log").read_text()[-2000:]
        time.sleep(0.5)


def _infer(model_id: str, data: Path, out: Path) -> dict[str, Any]:
    env = {**os.environ, "SKIL_SESSION": "off"}
    completed = subprocess.run(
        [SKIL, "infer", "--model", model_id, "--provider", "parquet",
         "--provider-option", f"path={data}", "--output", str(out),
         "--master", "local[2]", "--engine", "spark", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return dict(json.loads(completed.stdout))


@pytest.mark.slow
def test_the_second_cold_job_maps_the_archive_the_first_recorded(
    bundle_home: Path, node_cache: Path, archive_on: Path, tmp_path: Path
) -> None:
    # this test's node cache shares the session's bundle layout, not its archive
    archive_on.mkdir()
    (archive_on / "pex").symlink_to(node_cache / "pex", target_is_directory=True)
    model = models.small_mlp_model(tmp_path)
    features = np.random.default_rng(5).standard_normal((200, 4)).astype(np.float32)
    data = write_features_parquet(tmp_path / "d.parquet", np.arange(200), features, 50)
    added = subprocess.run(
        [SKIL, "models", "add", str(model), "--experiment", "jvm", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    model_id = json.loads(added.stdout)["id"]
    expected = run_onnxruntime(model, {"input": features})["output"]

    first = _infer(model_id, data, tmp_path / "first")
    assert first["state"] == "SUCCEEDED" and first["jvm_archive"] == "recording"
    [directory] = list((archive_on / "jvm").iterdir())
    classes = (directory / CLASS_LIST).read_text()
    assert "org/apache/spark/SparkContext" in classes and len(classes.splitlines()) > 1000
    _wait_for_dump(directory)
    archive = JvmArchive(directory)
    assert archive.ready(), (directory / "dump.log").read_text()[-2000:]
    assert archive.archive.stat().st_size > 10_000_000

    second = _infer(model_id, data, tmp_path / "second")
    assert second["state"] == "SUCCEEDED" and second["jvm_archive"] == "used"
    for name in ("first", "second"):
        table = read_output(tmp_path / name)
        assert table.column("id").to_pylist() == list(range(200))
        outputs = np.array(table.column("output").to_pylist())
        np.testing.assert_allclose(outputs, expected, rtol=1e-5)
    shown = subprocess.run(
        [SKIL, "jobs", "show", second["job_id"], "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["details"]["jvm_archive"] == "used"

    # a notebook's session (SkilContext.spark_session) maps it too
    notebook = textwrap.dedent(f"""
        from pathlib import Path
        from skil_sdk import SkilContext, SparkArgs
        ctx = SkilContext()
        spark = ctx.spark_session(SparkArgs(master="local[2]", conf={{
            "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1"}}))
        jvm = spark.sparkContext._gateway.proc.pid
        job = ctx.batch_inference(None, {model_id!r}, "parquet", {str(tmp_path / "nb")!r},
                                  spark=spark, path={str(data)!r})
        print({str(archive.archive)!r} in Path(f"/proc/{{jvm}}/maps").read_text())
        spark.stop()
    """)
    ran = subprocess.run([sys.executable, "-c", notebook], capture_output=True, text=True,
                         env=dict(os.environ), timeout=600)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.strip().splitlines()[-1] == "True"
    table = read_output(tmp_path / "nb")
    assert table.column("id").to_pylist() == list(range(200))
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)
