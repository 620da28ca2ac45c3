"""The local engine: the same output as Spark, each id once when a worker dies, Ctrl-C and
``jobs kill`` stop it cleanly, progress and the job record filled, and the jobs it
refuses refused before anything runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import _local_providers
import _model_fixtures as models
import numpy as np
import pyarrow.parquet as pq
import pytest
from _spark_helpers import (
    read_output,
    run_onnxruntime,
    write_features_parquet,
    write_small_files,
)
from _waiting import release_and_reap, wait_for

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import ConflictError, InvalidValueError, ModelError
from skil_sdk.job.packing import pack_tasks
from skil_sdk.job.request import InferenceRequest
from skil_sdk.spark.submit import submit
from skil_sdk.store.jobs import KILLED, SUCCEEDED, JobStore

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
HERE = Path(__file__).resolve().parent


def _request(model_id: str, provider: str, output: Path, **kwargs: Any) -> InferenceRequest:
    return InferenceRequest(
        model_id,
        provider,
        str(output),
        SparkArgs(master=kwargs.pop("master", "local[2]")),
        provider_options=kwargs.pop("options", {}),
        batch_size=kwargs.pop("batch_size", 64),
        engine=kwargs.pop("engine", "local"),
        **kwargs,
    )


def _data(tmp_path: Path, rows: int = 900) -> tuple[Path, np.ndarray]:
    features = np.random.default_rng(7).standard_normal((rows, 4)).astype(np.float32)
    path = write_features_parquet(tmp_path / "d.parquet", np.arange(rows, dtype=np.int64),
                                  features, 100)
    return path, features


def test_a_local_job_writes_onnxruntimes_outputs(tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    data, features = _data(tmp_path)
    result = submit(_request(model_id, "parquet", tmp_path / "out", options={"path": str(data)}))
    assert result.state == SUCCEEDED and result.rows == 900 and result.engine == "local"
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(900))
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)
    # 9 row groups of 100 rows packed into 3 tasks per worker
    tasks = pack_tasks([100] * 9, 2).tasks
    assert len(tasks) == 6
    parts = sorted(p.name for p in (tmp_path / "out").glob("part-*.parquet"))
    assert parts == [f"part-{i:05d}.parquet" for i in range(6)], "one file per task"
    assert [pq.read_metadata(tmp_path / "out" / p).num_rows for p in parts] == [
        100 * len(t) for t in tasks
    ]
    assert (tmp_path / "out" / "_SUCCESS").exists()
    assert not (tmp_path / "out" / "_temporary").exists()
    meta = json.loads((tmp_path / "out" / "_skil_job.json").read_text())
    assert meta["engine"] == "local" and meta["rows"] == 900 and meta["tasks"] == 6
    assert sum(e["rows"] for e in meta["executors"]) == 900
    assert all(e["peak_rss_mb"] > 10 for e in meta["executors"]), "workers report memory"
    assert 1 <= len(meta["executors"]) <= 2 and all(e["pid"] != os.getpid()
                                                    for e in meta["executors"])
    record = JobStore().get(result.job_id)
    assert (record.state, record.rows_done, record.tasks_done, record.tasks_total) == (
        SUCCEEDED, 900, 6, 6
    )
    assert record.details["engine"] == "local" and record.kind == "inference"


@pytest.mark.slow
def test_local_and_spark_write_the_same_rows(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    data, _features = _data(tmp_path, 700)
    submit(_request(model_id, "parquet", tmp_path / "local", options={"path": str(data)}))
    submit(
        _request(model_id, "parquet", tmp_path / "spark", options={"path": str(data)},
                 engine="spark"),
        spark=spark,
    )
    local, on_spark = read_output(tmp_path / "local"), read_output(tmp_path / "spark")
    assert local.schema.types == on_spark.schema.types
    assert local.column_names == on_spark.column_names
    ordered = [t.sort_by("id") for t in (local, on_spark)]
    assert ordered[0].column("id").to_pylist() == ordered[1].column("id").to_pylist()
    np.testing.assert_array_equal(
        np.array(ordered[0].column("output").to_pylist()),
        np.array(ordered[1].column("output").to_pylist()),
    )


def test_packed_tasks_write_exactly_the_rows_of_unpacked_ones(tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    data = tmp_path / "small"
    features = write_small_files(data, 60, 25, seed=5)
    options = {"path": str(data)}
    submit(_request(model_id, "parquet", tmp_path / "packed", options=options))
    submit(_request(model_id, "parquet", tmp_path / "unpacked", options=options,
                    rows_per_task=1))
    packed, unpacked = read_output(tmp_path / "packed"), read_output(tmp_path / "unpacked")
    assert packed.column("id").to_pylist() == list(range(1500))
    assert packed.equals(unpacked)
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(packed.column("output").to_pylist()), expected,
                               rtol=1e-5)
    assert len(list((tmp_path / "packed").glob("part-*.parquet"))) == 6, "3 tasks per core"
    assert len(list((tmp_path / "unpacked").glob("part-*.parquet"))) == 60
    meta = json.loads((tmp_path / "packed" / "_skil_job.json").read_text())
    assert meta["tasks"] == 6 and meta["packing"]["splits"] == 60
    assert meta["packing"]["parallelism"] == 2 and meta["packing"]["rows_per_task"] is None


def test_numpy_and_images_providers_on_the_local_engine(tmp_path: Path) -> None:
    from test_images_provider import _by_hand, _write_images

    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    rows = np.random.default_rng(3).standard_normal((250, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", rows)
    submit(_request(model_id, "numpy", tmp_path / "np",
                    options={"path": str(tmp_path / "x.npy"), "rows_per_split": "60"}))
    table = read_output(tmp_path / "np")
    expected = run_onnxruntime(model, {"input": rows})["output"]
    got = dict(zip(table.column("id").to_pylist(), table.column("output").to_pylist(),
                   strict=True))
    np.testing.assert_allclose(np.array([got[i] for i in range(250)]), expected, rtol=1e-5)

    cnn = models.dynamic_cnn_model(tmp_path)
    cnn_id = SkilContext().add_model_to_experiment(cnn, "local")
    paths = _write_images(tmp_path / "imgs")
    submit(_request(cnn_id, "images", tmp_path / "img",
                    options={"path": str(tmp_path / "imgs"), "size": "12,12",
                             "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225"}))
    images = read_output(tmp_path / "img")
    scores = dict(zip(images.column("id").to_pylist(), images.column("scores").to_pylist(),
                      strict=True))
    assert sorted(scores) == sorted(paths)
    for name, path in paths.items():
        want = run_onnxruntime(cnn, {"x": _by_hand(path, (12, 12), None)[None]})["scores"][0]
        np.testing.assert_allclose(scores[name], want, rtol=1e-5, atol=1e-5)


def test_a_worker_killed_mid_task_leaves_each_id_once(tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    markers = tmp_path / "markers"
    markers.mkdir()
    result = submit(_request(
        model_id, "_local_providers:MarkedProvider", tmp_path / "out", batch_size=25,
        options={"n": "800", "splits": "8", "markers": str(markers), "kill_split": "3"},
    ))
    assert (markers / "killed").exists(), "a worker was killed in the middle of split 3"
    assert len(list(markers.glob("read-300-*"))) == 2, "split 3 ran twice, once per worker"
    ids = read_output(tmp_path / "out").column("id").to_pylist()
    assert sorted(ids) == list(range(800)) and result.rows == 800
    expected = run_onnxruntime(model, {"input": _local_providers.features_of(np.arange(800))})
    table = read_output(tmp_path / "out").sort_by("id")
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()),
                               expected["output"], rtol=1e-5)


def test_a_bad_row_fails_the_job_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    path = write_features_parquet(
        tmp_path / "wide.parquet", np.arange(50, dtype=np.int64),
        np.zeros((50, 5), dtype=np.float32), 10,
    )
    with pytest.raises(ModelError, match=r"expects 4 values per row") as failure:
        submit(_request(model_id, "parquet", tmp_path / "out", options={"path": str(path)}))
    # Every row is bad, and the two workers race: the error names the first row of
    # whichever task failed first, the first row of one of the file's row groups of 10.
    named = re.search(r"\(in the row with id (\d+)\)", str(failure.value))
    assert named is not None and int(named.group(1)) in {0, 10, 20, 30, 40}
    assert not (tmp_path / "out").exists()
    assert JobStore().list()[0].state == "FAILED"


def test_jobs_the_local_engine_cannot_run_are_refused(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    data, _features = _data(tmp_path, 10)
    (tmp_path / "d.csv").write_text("id,a,b,c,d\n1,1,2,3,4\n")
    cases = [
        (_request(model_id, "csv", tmp_path / "o", options={"path": str(tmp_path / "d.csv")}),
         "returns Spark data"),
        (_request(model_id, "parquet", tmp_path / "o", options={"path": str(data)},
                  master="spark://127.0.0.1:1"), "is a cluster"),
        (_request(model_id, "parquet", "s3a://bucket/out", options={"path": str(data)}),
         "is not on this machine's file system"),
    ]
    for request, message in cases:
        with pytest.raises(InvalidValueError, match=message):
            submit(request)
    assert JobStore().list() == []
    auto = submit(_request(model_id, "parquet", tmp_path / "auto", options={"path": str(data)},
                           engine="auto"))
    assert auto.engine == "local"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("stop", ["ctrl-c", "jobs-kill"])
def test_stopping_a_local_job_leaves_no_output(tmp_path: Path, stop: str) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    process = subprocess.Popen(
        [SKIL, "infer", "--model", model_id, "--provider", "_local_providers:MarkedProvider",
         "--provider-option", f"markers={markers}", "--provider-option", "block=true",
         "--output", str(out), "--engine", "local", "--master", "local[2]"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        wait_for(lambda: (markers / "started").exists() or process.poll() is not None,
                  "a task to start")
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        job_id = JobStore().list()[0].id
        if stop == "ctrl-c":  # as a terminal does: the whole process group
            os.killpg(process.pid, signal.SIGINT)
        else:
            killed = subprocess.run([SKIL, "jobs", "kill", job_id, "--json"],
                                    capture_output=True, text=True, env=_env(), timeout=120)
            assert json.loads(killed.stdout)["state"] == KILLED
        process.communicate(timeout=120)
    finally:
        release_and_reap(process, markers)
    assert process.returncode != 0
    assert not out.exists()
    record = JobStore().get(job_id)
    # the engine itself stopped the job (jobs kill marks a job it could not stop otherwise)
    assert (record.state, record.error) == (
        KILLED, "the job was interrupted (Ctrl-C or SIGTERM)"
    )


def test_the_cli_reports_the_local_engine(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    data, _features = _data(tmp_path, 300)
    completed = subprocess.run(
        [SKIL, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(tmp_path / "out"), "--engine", "local", "--json"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert result["engine"] == "local" and result["rows"] == 300
    assert "tasks 3/3" in completed.stderr
    assert pq.read_metadata(tmp_path / "out" / "part-00000.parquet").num_rows == 100


def test_a_detached_local_job(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    data, _features = _data(tmp_path, 200)
    started = subprocess.run(
        [SKIL, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(tmp_path / "out"), "--engine", "local", "--detach",
         "--json"],
        capture_output=True, text=True, env=_env(), timeout=120,
    )
    assert started.returncode == 0, started.stderr
    job_id = json.loads(started.stdout)["job_id"]
    waited = subprocess.run([SKIL, "jobs", "wait", job_id, "--json", "--timeout", "300"],
                            capture_output=True, text=True, env=_env(), timeout=400)
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["rows_done"] == 200
    assert read_output(tmp_path / "out").num_rows == 200


def test_a_job_without_rows_writes_an_empty_part_with_the_schema(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), dtype=np.float32))
    result = submit(_request(model_id, "numpy", tmp_path / "out",
                             options={"path": str(tmp_path / "empty.npy")}))
    assert result.rows == 0
    table = read_output(tmp_path / "out")
    assert table.num_rows == 0 and table.column_names == ["id", "output"]
    assert str(table.schema.field("output").type) == "list<element: float>"


def test_cuda_and_remote_inputs_stay_on_spark(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    data, _features = _data(tmp_path, 10)
    with pytest.raises(InvalidValueError, match="--execution-provider cuda runs on the Spark"):
        submit(_request(model_id, "parquet", tmp_path / "o", options={"path": str(data)},
                        execution_provider="cuda"))
    with pytest.raises(InvalidValueError, match=r"the input hdfs://nn/d\.parquet is on a file "
                       "system the local engine does not read"):
        submit(_request(model_id, "parquet", tmp_path / "o",
                        options={"path": "hdfs://nn/d.parquet"}))


def test_overwrite_replaces_an_earlier_local_output(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "local")
    big, _features = _data(tmp_path, 500)
    submit(_request(model_id, "parquet", tmp_path / "out", options={"path": str(big)}))
    small = write_features_parquet(tmp_path / "small.parquet", np.arange(30, dtype=np.int64),
                                   np.ones((30, 4), dtype=np.float32), 10)
    with pytest.raises(ConflictError, match="pass --overwrite"):
        submit(_request(model_id, "parquet", tmp_path / "out", options={"path": str(small)}))
    again = submit(_request(model_id, "parquet", tmp_path / "out", options={"path": str(small)},
                            overwrite=True))
    assert again.rows == 30
    assert sorted(read_output(tmp_path / "out").column("id").to_pylist()) == list(range(30))
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == 3


def _labelled(tmp_path: Path, rows: int = 500) -> tuple[Path, np.ndarray, np.ndarray]:
    import pyarrow as pa

    features = np.random.default_rng(11).standard_normal((rows, 4)).astype(np.float32)
    labels = np.random.default_rng(12).integers(0, 3, rows)
    path = write_features_parquet(tmp_path / "l.parquet", np.arange(rows, dtype=np.int64),
                                  features, 64)
    table = pq.read_table(path).append_column("label", pa.array(labels, pa.int64()))
    pq.write_table(table, path, row_group_size=64)
    return path, features, labels


def test_an_evaluation_on_the_local_engine_equals_scikit_learn(tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    path, features, labels = _labelled(tmp_path)
    request = _request(model_id, "parquet", tmp_path / "metrics.json",
                       options={"path": str(path)}, kind="evaluate",
                       evaluation={"eval_type": "evaluation"})
    result = submit(request)
    predicted = run_onnxruntime(model, {"input": features})["output"].argmax(axis=1)
    got = result.metrics
    assert result.engine == "local" and result.rows == 500 and got["rows"] == 500
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert got["confusion_matrix"] == confusion_matrix(labels, predicted, labels=[0, 1, 2]).tolist()
    assert got["f1"]["macro"] == pytest.approx(
        f1_score(labels, predicted, average="macro", zero_division=0), abs=1e-9)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["accuracy"] == got["accuracy"] and written["job"]["engine"] == "local"
    record = JobStore().get(result.job_id)
    assert record.kind == "evaluate" and record.details["metrics"]["rows"] == 500
    assert (record.state, record.rows_done, record.tasks_done) == (SUCCEEDED, 500,
                                                                    record.tasks_total)
    with pytest.raises(InvalidValueError, match="no label column 'y'"):
        submit(_request(model_id, "parquet", tmp_path / "m2.json", options={"path": str(path)},
                        kind="evaluate", evaluation={"eval_type": "evaluation",
                                                     "label_column": "y"}))
    assert not (tmp_path / "m2.json").exists()


def test_the_evaluate_cli_runs_on_the_local_engine(tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score

    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "local")
    x = np.random.default_rng(4).standard_normal((130, 4)).astype(np.float32)
    labels = np.random.default_rng(4).integers(0, 3, 130)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    completed = subprocess.run(
        [SKIL, "evaluate", "--model", model_id, "--provider", "numpy", "--provider-option",
         f"path={tmp_path / 'x.npy'}", "--provider-option", f"labels={tmp_path / 'y.npy'}",
         "--eval-type", "evaluation", "--engine", "local", "--master", "local[2]", "--json"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    predicted = run_onnxruntime(model, {"input": x})["output"].argmax(axis=1)
    assert result["engine"] == "local" and result["metrics"]["rows"] == 130
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy_score(labels, predicted),
                                                          abs=1e-12)


def test_skil_context_warns_of_spark_settings_a_local_job_ignores(tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    context = SkilContext()
    model_id = context.add_model_to_experiment(model, "local")
    data, _features = _data(tmp_path, 200)
    with pytest.warns(UserWarning, match="ignores --executor-memory; pass --engine spark"):
        job_id = context.batch_inference(
            SparkArgs(master="local[2]", executor_memory="2g"), model_id, "parquet",
            str(tmp_path / "out"), path=str(data),
        )
    record = JobStore().get(job_id)
    assert record.details["engine"] == "local" and record.rows_done == 200
