"""A notebook's SparkSession: ``SkilContext.spark_session`` starts one whose executors run
the bundle, and ``batch_inference(..., spark=session)`` runs the job there (in a fresh
Python process, as a notebook kernel is: Spark reads its launch settings once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

from skil_sdk import SkilContext
from skil_sdk.store.jobs import JobStore

pytestmark = pytest.mark.slow

_NOTEBOOK = """
import json
from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import SkilError

ctx = SkilContext()
args = SparkArgs(master="local[2]", conf={"spark.ui.enabled": "false",
                                          "spark.driver.host": "127.0.0.1"})
spark = ctx.spark_session(args)
try:
    ctx.spark_session(args)
    refused = None
except SkilError as exc:
    refused = exc.message
try:
    ctx.batch_inference(None, MODEL, "parquet", OUT + "-detached", spark=spark, detach=True,
                        path=DATA)
    detach = None
except SkilError as exc:
    detach = exc.message
job = ctx.batch_inference(None, MODEL, "parquet", OUT, spark=spark, path=DATA)
print(json.dumps({"job": job, "refused": refused, "detach": detach,
                  "python": spark.sparkContext.pythonExec}))
spark.stop()
"""


def test_a_notebook_session_runs_the_job_on_the_bundle(
    bundle_home: Path, built_bundle: Any, tmp_path: Path
) -> None:
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "notebook")
    features = np.random.default_rng(8).standard_normal((300, 4)).astype(np.float32)
    data = write_features_parquet(tmp_path / "d.parquet", np.arange(300, dtype=np.int64),
                                  features, 50)
    out = tmp_path / "out"
    script = (f"MODEL, DATA, OUT = {model_id!r}, {str(data)!r}, {str(out)!r}\n"
              + textwrap.dedent(_NOTEBOOK))
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               env=dict(os.environ), timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["python"] == str(Path(built_bundle.bundle).resolve())
    assert "already running in this process" in report["refused"]
    assert "drop detach=True" in report["detach"]
    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(300))
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)
    meta = json.loads((out / "_skil_job.json").read_text())
    assert meta["engine"] == "spark" and meta["master"] == "local[2]"
    assert meta["executors"] and all(
        e["bundle_hash"] == built_bundle.hash[:12] for e in meta["executors"]
    ), "the executors ran inside the bundle"
    record = JobStore().get(report["job"])
    assert record.state == "SUCCEEDED" and record.rows_done == 300


_RETRY = """
import json
import _recording_source
from pyspark import cloudpickle
from skil_sdk import SkilContext, SparkArgs

cloudpickle.register_pickle_by_value(_recording_source)  # the bundle does not hold it
ctx = SkilContext()
spark = ctx.spark_session(SparkArgs(master="local[2,3]", conf={"spark.ui.enabled": "false",
                                                               "spark.driver.host": "127.0.0.1"}))
job = ctx.batch_inference(None, MODEL, "_recording_source:DyingOnceProvider", OUT,
                          spark=spark, batch_size=10, n="400", splits="8",
                          markers=MARKERS, die_at="150")
print(json.dumps({"job": job}))
spark.stop()
"""


def test_a_task_retried_after_its_worker_died_commits_each_id_once(
    bundle_home: Path, tmp_path: Path
) -> None:
    """Spark's own retry (``local[2,3]``): the Python worker dies half-way through a task;
    its attempt is never committed, the retry's is, and every id is in the output once."""
    from _recording_source import features_of

    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "retry")
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    script = (f"MODEL, OUT, MARKERS = {model_id!r}, {str(out)!r}, {str(markers)!r}\n"
              + textwrap.dedent(_RETRY))
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here,
                                                                    os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (markers / "died").exists(), "a worker died mid-task, so Spark ran a second attempt"
    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(400)), "each id once"
    ids = np.arange(400, dtype=np.int64)
    expected = run_onnxruntime(model, {"input": features_of(ids)})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    meta = json.loads((out / "_skil_job.json").read_text())
    assert len(parts) == meta["packing"]["tasks"] and (out / "_SUCCESS").exists()
    assert not (out / "_temporary").exists(), "the dead attempt's file is gone"
