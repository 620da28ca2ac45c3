"""The same job on a real standalone cluster: a master and a worker on 127.0.0.1.

The ``standalone_cluster`` fixture (tests/cluster/conftest.py) starts both with
pyspark's ``spark-class`` (loopback only, bounded waits); the test submits with
``skil-sdk infer --master spark://...``. The executors are separate JVMs that run the
bundle shipped with ``--files``; they download the model through the job's server
exactly once for the node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(600)]

SKIL = str(Path(sys.executable).with_name("skil-sdk"))


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
    # one node, so one download: the other Python workers waited on the lock, then reused it
    assert len(full_downloads) == 1, json.dumps(job["downloads"], indent=1)
    assert [p.name for p in (cluster_cache / "models").iterdir() if p.is_dir()] == [
        meta["model_sha256"]
    ]


def test_jobs_in_a_session_on_the_standalone_cluster(
    standalone_cluster: str,
    built_bundle: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs in one long-lived session on the cluster: both warm, in one application,
    the model downloaded once for both."""
    home = Path(built_bundle.bundle).parents[3]
    monkeypatch.setenv("SKIL_HOME", str(home))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("SKIL_NODE_CACHE", str(tmp_path / "node"))
    env = dict(os.environ)
    settings = ["--master", standalone_cluster, "--total-executor-cores", "2",
                "--conf", "spark.executor.cores=1", "--executor-memory", "768m"]  # fmt: skip

    def skil_json(*args: str) -> Any:
        completed = subprocess.run(
            [SKIL, *args, "--json"], capture_output=True, text=True, env=env, timeout=480
        )
        assert completed.returncode == 0, completed.stderr[-4000:]
        return json.loads(completed.stdout)

    model = models.mlp_model(tmp_path, (4, 12, 2), seed=9)
    model_id = skil_json("models", "add", str(model), "--experiment", "cluster")["id"]
    features = np.random.default_rng(22).standard_normal((300, 4)).astype(np.float32)
    data = write_features_parquet(
        tmp_path / "d.parquet", np.arange(300, dtype=np.int64), features, 25
    )
    try:
        session = skil_json("session", "start", *settings)
        results = [
            skil_json("infer", "--model", model_id, "--provider", "parquet",
                      "--provider-option", f"path={data}", "--output", str(tmp_path / out),
                      *settings)
            for out in ("out1", "out2")
        ]  # fmt: skip
        status = skil_json("session", "status")
    finally:
        subprocess.run([SKIL, "session", "stop", "--force"], env=env, timeout=300)
    assert [r["session"] for r in results] == ["warm", "warm"], results
    assert status["app_id"] == session["app_id"] and status["jobs_run"] == 2
    expected = run_onnxruntime(model, {"input": features})["output"]
    for out in ("out1", "out2"):
        table = read_output(tmp_path / out)
        assert table.column("id").to_pylist() == list(range(300))
        got = np.array(table.column("output").to_pylist())
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        meta = json.loads((tmp_path / out / "_skil_job.json").read_text())
        assert meta["master"] == standalone_cluster and sum(
            e["rows"] for e in meta["executors"]
        ) == 300
    downloads = [
        d
        for r in results
        for d in skil_json("jobs", "show", r["job_id"])["downloads"]
        if d["range"] is None
    ]
    assert len(downloads) == 1, downloads
