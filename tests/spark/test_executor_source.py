"""The executor-read path: splits are read on the executors, never on the driver, and
give exactly the rows and outputs of the DataFrame (Arrow) path for the same data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import _model_fixtures as models
import _recording_source
import numpy as np
import pytest
from _spark_helpers import read_output

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.spark.submit import InferenceRequest, submit

pytestmark = pytest.mark.slow


def test_splits_are_read_on_executors_and_match_the_dataframe_path(
    spark: Any, tmp_path: Path
) -> None:
    from pyspark import cloudpickle

    # the bundle does not hold this test module: ship its classes inside the closures
    cloudpickle.register_pickle_by_value(_recording_source)
    markers = tmp_path / "markers"
    markers.mkdir()
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "src")

    def run(provider: str, output: Path, **options: str) -> Any:
        request = InferenceRequest(
            model_id,
            provider,
            str(output),
            SparkArgs(master="local[2]"),
            provider_options=options,
            batch_size=7,
        )
        return submit(request, spark=spark)

    run(
        "_recording_source:RecordingProvider",
        tmp_path / "source",
        n="100",
        splits="5",
        markers=str(markers),
    )
    run("_recording_source:SameRowsAsFrame", tmp_path / "frame", n="100")

    names = sorted(p.name for p in markers.iterdir())
    assert names.count(f"splits-{os.getpid()}") == 1, "splits() ran once, on the driver"
    reads = [n for n in names if n.startswith("read-")]
    assert sorted(int(n.rsplit("-", 1)[1]) for n in reads) == [0, 20, 40, 60, 80]
    assert all(f"read-{os.getpid()}-" not in n for n in reads), "the driver never read a split"

    source, frame = read_output(tmp_path / "source"), read_output(tmp_path / "frame")
    assert source.column("id").to_pylist() == frame.column("id").to_pylist() == list(range(100))
    np.testing.assert_array_equal(
        np.array(source.column("output").to_pylist()), np.array(frame.column("output").to_pylist())
    )


def test_packed_tasks_on_spark_write_the_rows_of_unpacked_ones(spark: Any, tmp_path: Path) -> None:
    import json

    from _spark_helpers import run_onnxruntime, write_small_files

    from skil_sdk.job.packing import pack_tasks

    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "src")
    features = write_small_files(tmp_path / "small", 40, 20, seed=2)

    def run(output: Path, rows_per_task: int | None) -> Any:
        request = InferenceRequest(
            model_id, "parquet", str(output), SparkArgs(master="local[2]"),
            provider_options={"path": str(tmp_path / "small")}, batch_size=64,
            rows_per_task=rows_per_task,
        )
        return submit(request, spark=spark)

    run(tmp_path / "packed", None)
    run(tmp_path / "unpacked", 1)
    packed, unpacked = read_output(tmp_path / "packed"), read_output(tmp_path / "unpacked")
    assert packed.column("id").to_pylist() == list(range(800))
    assert packed.equals(unpacked)
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(packed.column("output").to_pylist()), expected,
                               rtol=1e-5)
    meta = json.loads((tmp_path / "packed" / "_skil_job.json").read_text())
    parallelism = spark.sparkContext.defaultParallelism
    assert meta["packing"]["splits"] == 40 and meta["packing"]["parallelism"] == parallelism
    tasks = len(pack_tasks([20] * 40, parallelism).tasks)
    assert meta["packing"]["tasks"] == tasks < 40, "the job packed as pack_tasks packs"
    assert len(list((tmp_path / "packed").glob("part-*.parquet"))) <= tasks
    unpacked_meta = json.loads((tmp_path / "unpacked" / "_skil_job.json").read_text())
    assert unpacked_meta["packing"]["tasks"] == 40
