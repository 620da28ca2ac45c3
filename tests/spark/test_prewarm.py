"""spark-submit's start: the bundle laid out meanwhile, and the environment it gets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from skil_sdk.builder.bundle import RUN_ENV
from skil_sdk.spark.nodecache import venv_dirs
from skil_sdk.spark.process import prewarm_bundle, stop_prewarm, submit_env


def test_prewarm_lays_out_the_venv_the_driver_then_starts_from(
    built_bundle: Any, tmp_path: Path
) -> None:
    pex_root, tmp = tmp_path / "pex", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, **RUN_ENV, "PEX_ROOT": str(pex_root), "TMPDIR": str(tmp)}
    env["SKIL_JOB_TOKEN"] = "secret-token"
    process = prewarm_bundle(built_bundle, env)
    assert process is not None
    assert process.wait(timeout=300) == 0
    assert process.args[1:] == ["-c", "pass"]
    venvs = venv_dirs(pex_root)
    assert len(venvs) == 1 and (venvs[0] / "pyvenv.cfg").is_file()
    # the layout's parallel unpacking removed its copies of the wheels
    assert sorted(p.name for p in tmp.glob("pex-*")) == []
    # a second start finds the layout: nothing new is made
    again = prewarm_bundle(built_bundle, env)
    stop_prewarm(again)
    assert venv_dirs(pex_root) == venvs
    stop_prewarm(process)  # reaping a finished one is harmless


def test_prewarm_never_passes_the_job_token(tmp_path: Path) -> None:
    probe = tmp_path / "env.txt"
    fake_bundle = tmp_path / "skil-bundle-fake.pex"
    fake_bundle.write_text(f"#!/bin/sh\nenv > {probe}\n")
    fake_bundle.chmod(0o755)

    class Bundle:
        bundle = fake_bundle

    env = {**os.environ, "SKIL_JOB_TOKEN": "secret-token", "PEX_ROOT": str(tmp_path)}
    process = prewarm_bundle(Bundle(), env)
    assert process is not None and process.wait(timeout=30) == 0
    seen = probe.read_text()
    assert f"PEX_ROOT={tmp_path}" in seen
    assert "secret-token" not in seen and "SKIL_JOB_TOKEN" not in seen


def test_submit_env_lets_the_bundle_cache_its_bytecode(
    built_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _job_specs import make_job

    from skil_sdk.spark.args import SparkArgs

    monkeypatch.delenv("PEX_MULTIPROCESSING_START_METHOD", raising=False)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3")
    job = make_job(SparkArgs(master="local[2]"))
    env = submit_env(job, built_bundle, "job-token")
    assert "PYTHONDONTWRITEBYTECODE" not in env and "PYSPARK_PYTHON" not in env
    assert env["SKIL_JOB_TOKEN"] == "job-token"
    assert env["PEX_ROOT"] == f"{env['SKIL_NODE_CACHE']}/pex"
    assert env["PEX_MULTIPROCESSING_START_METHOD"] == "spawn"


@pytest.mark.parametrize("master", ["local[2]", "spark://10.0.0.1:7077", "yarn"])
def test_executors_unpack_the_bundle_with_spawned_jobs(
    master: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skil_sdk.spark.args import SparkArgs
    from skil_sdk.spark.process import bundle_submit_flags

    class Bundle:
        bundle = tmp_path / "skil-bundle-0123456789ab.pex"

    monkeypatch.delenv("PEX_MULTIPROCESSING_START_METHOD", raising=False)
    flags = bundle_submit_flags(SparkArgs(master=master), Bundle())
    confs = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--conf"]
    assert "spark.executorEnv.PEX_MULTIPROCESSING_START_METHOD=spawn" in confs
    # a user's own value wins: from the environment, and from --conf
    monkeypatch.setenv("PEX_MULTIPROCESSING_START_METHOD", "forkserver")
    flags = bundle_submit_flags(SparkArgs(master=master), Bundle())
    confs = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--conf"]
    assert "spark.executorEnv.PEX_MULTIPROCESSING_START_METHOD=forkserver" in confs
    own = SparkArgs(
        master=master, conf={"spark.executorEnv.PEX_MULTIPROCESSING_START_METHOD": "fork"}
    )
    flags = bundle_submit_flags(own, Bundle())
    confs = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--conf"]
    assert confs.count("spark.executorEnv.PEX_MULTIPROCESSING_START_METHOD=fork") == 1
    assert "spark.executorEnv.PEX_MULTIPROCESSING_START_METHOD=spawn" not in confs
