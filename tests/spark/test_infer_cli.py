"""`skil-sdk infer` through real spark-submit: the bundle is the driver's and executors' Python.

These tests run in the home where the session's bundle was built (with the ``squares``
plugin published), so the runner's bundle is a cache hit.
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

from skil_sdk.store.jobs import JobStore

pytestmark = pytest.mark.slow

SKIL = str(Path(sys.executable).with_name("skil-sdk"))



def skil(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [SKIL, *args], capture_output=True, text=True, env=dict(os.environ), timeout=600
    )
    if check:
        assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def add_model(path: Path) -> str:
    return str(
        json.loads(skil("models", "add", str(path), "--experiment", "cli", "--json").stdout)["id"]
    )


def test_infer_cli_end_to_end(bundle_home: Path, built_bundle: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    features = np.random.default_rng(11).standard_normal((300, 4)).astype(np.float32)
    data = write_features_parquet(
        tmp_path / "d.parquet", np.arange(300, dtype=np.int64), features, 50
    )
    model_id = add_model(model)
    out = tmp_path / "out"

    completed = skil(
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
        "--engine",
        "spark",
        "--json",
    )
    result = json.loads(completed.stdout)
    assert {"job_id", "state", "rows", "output", "seconds"} <= set(result)
    assert result["state"] == "SUCCEEDED" and result["rows"] == 300
    assert result["bundle_hash"] == built_bundle.hash, "the runner's bundle is the cached one"
    assert "tasks 6/6" in completed.stderr, "progress goes to stderr"

    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(300))
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)

    meta = json.loads((out / "_skil_job.json").read_text())
    assert {e["bundle_hash"] for e in meta["executors"]} == {built_bundle.hash[:12]}
    assert sum(e["rows"] for e in meta["executors"]) == 300

    job = json.loads(skil("jobs", "show", result["job_id"], "--json").stdout)
    assert job["state"] == "SUCCEEDED" and job["rows_done"] == 300
    assert job["executors"] and Path(job["log_path"]).exists()
    shown = json.loads(skil("results", "show", str(out), "--limit", "3", "--json").stdout)
    assert (shown["rows"] == 300 and [r["id"] for r in shown["head"]] == [0, 1, 2]) or len(
        shown["head"]
    ) == 3


def test_published_plugin_used_by_name(bundle_home: Path, tmp_path: Path) -> None:
    model = models.mlp_model(tmp_path, (1, 4, 2), name="one.onnx")
    model_id = add_model(model)
    out = tmp_path / "out"
    completed = skil(
        "infer",
        "--model",
        model_id,
        "--provider",
        "squares",
        "--provider-option",
        "n=25",
        "--output",
        str(out),
        "--master",
        "local[2]",
    )
    # the per-job page is named while it serves; afterwards, where the details stay
    assert "while the job runs, its web page is http://127.0.0.1:" in completed.stderr
    job_id = JobStore().list()[0].id
    assert f"Details: `skil-sdk jobs show {job_id}`" in completed.stdout.splitlines()[-1]
    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(25))
    squares = np.array([[float(i * i)] for i in range(25)], dtype=np.float32)
    expected = run_onnxruntime(model, {"input": squares})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)


def test_unknown_provider_lists_what_the_bundle_offers(bundle_home: Path, tmp_path: Path) -> None:
    model_id = add_model(models.small_mlp_model(tmp_path))
    out = tmp_path / "out"
    completed = skil(
        "infer",
        "--model",
        model_id,
        "--provider",
        "nope",
        "--output",
        str(out),
        "--master",
        "local[2]",
        check=False,
    )
    assert completed.returncode == 1
    error = completed.stderr.strip().splitlines()[-1]
    assert "nope" in error and "squares" in error and "parquet" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--master", "local[two]"], "master"),
        (["--executor-memory", "lots"], "executor_memory"),
        (["--deploy-mode", "sideways"], "deploy_mode"),
        (["--batch-size", "0"], "batch_size"),
        (["--provider-option", "novalue"], "key=value"),
    ],
)
def test_bad_arguments_fail_before_anything_runs(
    bundle_home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    before = json.loads(skil("jobs", "list", "--json").stdout)
    completed = skil(
        "infer",
        "--model",
        "whatever",
        "--provider",
        "parquet",
        "--output",
        str(tmp_path / "out"),
        *args,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert json.loads(skil("jobs", "list", "--json").stdout) == before
    assert not (tmp_path / "out").exists()


def test_unknown_model_and_existing_output(bundle_home: Path, tmp_path: Path) -> None:
    completed = skil(
        "infer",
        "--model",
        "no-such-model",
        "--provider",
        "parquet",
        "--output",
        str(tmp_path / "out"),
        "--json",
        check=False,
    )
    assert completed.returncode == 1 and "skil-sdk models list" in completed.stderr
    assert json.loads(completed.stdout)["error"]["code"] == "not_found"
    (tmp_path / "exists").mkdir()
    completed = skil(
        "infer",
        "--model",
        "x",
        "--provider",
        "parquet",
        "--output",
        str(tmp_path / "exists"),
        check=False,
    )
    assert completed.returncode == 1 and "--overwrite" in completed.stderr


def test_scaffolded_provider_published_and_used_by_name(
    skil_home: Path, node_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`skil-sdk new provider` → publish → infer --provider NAME, in a fresh SKIL_HOME."""
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    skil("new", "provider", "acme-rows", "--output-dir", str(tmp_path), "--no-input")
    published = json.loads(skil("publish", str(tmp_path / "acme-rows"), "--json").stdout)
    assert published["name"] == "acme-rows"
    features = np.random.default_rng(12).standard_normal((60, 4)).astype(np.float32)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "features": features[i].tolist()}) + "\n" for i in range(60)
        )
    )
    model = models.small_mlp_model(tmp_path)
    model_id = add_model(model)
    out = tmp_path / "out"
    result = json.loads(
        skil(
            "infer",
            "--model",
            model_id,
            "--provider",
            "acme-rows",
            "--provider-option",
            f"path={rows}",
            "--output",
            str(out),
            "--master",
            "local[2]",
            "--json",
        ).stdout
    )
    assert result["rows"] == 60
    table = read_output(out)
    assert sorted(table.column("id").to_pylist()) == sorted(f"r{i}" for i in range(60))
    by_id = dict(
        zip(table.column("id").to_pylist(), table.column("output").to_pylist(), strict=True)
    )
    expected = run_onnxruntime(model, {"input": features})["output"]
    got = np.array([by_id[f"r{i}"] for i in range(60)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    logs = json.loads(skil("jobs", "logs", result["job_id"], "--tail", "5", "--json").stdout)
    assert len(logs["lines"]) == 5


def test_a_bundles_first_run_leaves_nothing_in_the_temp_dir(
    bundle_home: Path, tmp_path: Path
) -> None:
    """A first run unpacks the bundle's wheels with spawned jobs, which remove their
    copies; a job gives the bundle's processes a temp dir of its own and removes it."""
    model_id = add_model(models.mlp_model(tmp_path, (1, 4, 2), name="one.onnx"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "SKIL_NODE_CACHE": str(tmp_path / "fresh-node")}
    completed = subprocess.run(
        [SKIL, "infer", "--model", model_id, "--provider", "squares", "--provider-option",
         "n=5", "--output", str(tmp_path / "out"), "--master", "local[2]", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout)["rows"] == 5
    assert list((tmp_path / "fresh-node" / "pex").iterdir()), "the bundle was laid out anew"
    assert sorted(p.name for p in temp.glob("pex-*")) == []
    job_id = json.loads(completed.stdout)["job_id"]
    assert not (bundle_home / "jobs" / job_id / "tmp").exists()
