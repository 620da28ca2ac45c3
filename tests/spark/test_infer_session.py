"""Batch inference end to end on local[2], in the test session's SparkSession.

Executors run inside the session's bundle; every output is compared with onnxruntime
run directly on the same rows, and every input id must appear exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pyarrow as pa
import pytest
from _providers import PairsProvider, RowsProvider
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import ConflictError, JobError, NotFoundError
from skil_sdk.spark.submit import InferenceRequest, submit

pytestmark = pytest.mark.slow


def infer(spark: Any, model_id: str, provider: str, output: Path, **kwargs: Any) -> Any:
    options = kwargs.pop("options", {})
    request = InferenceRequest(
        model_id=model_id,
        provider=provider,
        output=str(output),
        spark_args=SparkArgs(master="local[2]"),
        provider_options=options,
        **kwargs,
    )
    return submit(request, spark=spark)


def add(path: Path, experiment: str = "tests") -> str:
    return SkilContext().add_model_to_experiment(path, experiment)


def test_parquet_provider_matches_onnxruntime(
    spark: Any, tmp_path: Path, built_bundle: Any
) -> None:
    model = models.small_mlp_model(tmp_path)
    features = np.random.default_rng(1).standard_normal((500, 4)).astype(np.float32)
    ids = np.arange(1000, 1500, dtype=np.int64)
    data = write_features_parquet(tmp_path / "data" / "part.parquet", ids, features, 64)

    result = infer(spark, add(model), "parquet", tmp_path / "out", options={"path": str(data)})

    assert result.state == "SUCCEEDED" and result.rows == 500
    table = read_output(tmp_path / "out")
    assert table.schema.field("id").type == pa.int64()
    assert table.column("id").to_pylist() == ids.tolist()
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(
        np.array(table.column("output").to_pylist()), expected, rtol=1e-5, atol=1e-6
    )
    assert (tmp_path / "out" / "_SUCCESS").exists()
    meta = json.loads((tmp_path / "out" / "_skil_job.json").read_text())
    assert meta["rows"] == 500 and meta["job_id"] == result.job_id
    assert meta["model_sha256"] and meta["provider"] == "parquet"
    assert meta["executors"], "each executor process reports a record"
    assert sum(e["rows"] for e in meta["executors"]) == 500
    # the executors ran inside the session's bundle
    assert {e["bundle_hash"] for e in meta["executors"]} == {built_bundle.hash[:12]}


def test_rdd_provider_and_job_record(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    result = infer(
        spark, add(model), "_providers:PairsProvider", tmp_path / "out", options={"n": "40"}
    )
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(40))
    features = np.stack([np.arange(i, i + 4, dtype=np.float32) for i in range(40)])
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)
    job = SkilContext().job(result.job_id)
    assert job["state"] == "SUCCEEDED" and job["rows_done"] == 40
    assert PairsProvider.PLUGIN_NAME == "test-pairs"


def test_multi_input_multi_output_from_dataframe(spark: Any, tmp_path: Path) -> None:
    model = models.multi_io_model(tmp_path)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 3)).astype(np.float32)
    b = rng.integers(-5, 5, (30, 2)).astype(np.int64)
    RowsProvider.builders["multi"] = lambda s: s.createDataFrame(
        [(f"row-{i}", a[i].tolist(), b[i].tolist()) for i in range(30)],
        "id string, a array<float>, b array<bigint>",
    )
    infer(spark, add(model), "_providers:RowsProvider", tmp_path / "out", options={"key": "multi"})
    table = read_output(tmp_path / "out")
    order = np.argsort([f"row-{i}" for i in range(30)], kind="stable")
    assert table.column("id").to_pylist() == sorted(f"row-{i}" for i in range(30))
    expected = run_onnxruntime(model, {"a": a, "b": b})
    np.testing.assert_allclose(
        np.array(table.column("scaled").to_pylist()), expected["scaled"][order]
    )
    np.testing.assert_allclose(
        np.array(table.column("total").to_pylist()), expected["total"][order]
    )


def test_fixed_batch_nchw_model_from_flat_rows(spark: Any, tmp_path: Path) -> None:
    model = models.fixed_batch_nchw_model(tmp_path)
    pixels = np.random.default_rng(4).random((23, 784), dtype=np.float32)
    data = write_features_parquet(tmp_path / "d.parquet", np.arange(23, dtype=np.int64), pixels, 10)
    infer(spark, add(model), "parquet", tmp_path / "out", options={"path": str(data)}, batch_size=8)
    table = read_output(tmp_path / "out")
    expected = np.concatenate(
        [run_onnxruntime(model, {"image": p.reshape(1, 1, 28, 28)})["scores"] for p in pixels]
    )
    np.testing.assert_allclose(np.array(table.column("scores").to_pylist()), expected, rtol=1e-5)


def test_int64_input_model(spark: Any, tmp_path: Path) -> None:
    model = models.int64_input_model(tmp_path)
    values = np.random.default_rng(5).integers(0, 1000, (50, 4)).astype(np.int64)
    data = write_features_parquet(tmp_path / "d.parquet", np.arange(50, dtype=np.int64), values)
    infer(spark, add(model), "parquet", tmp_path / "out", options={"path": str(data)})
    table = read_output(tmp_path / "out")
    assert table.schema.field("total").type == pa.list_(pa.int64())
    assert [row[0] for row in table.column("total").to_pylist()] == values.sum(axis=1).tolist()


def test_sklearn_classifier_with_string_ids(spark: Any, tmp_path: Path) -> None:
    model = models.sklearn_classifier_model(tmp_path)
    features, _labels = models.iris_data()
    ids = [f"flower-{i:03d}" for i in range(len(features))]
    RowsProvider.builders["iris"] = lambda s: s.createDataFrame(
        [(ids[i], features[i].tolist()) for i in range(len(ids))],
        "id string, features array<float>",
    )
    infer(spark, add(model), "_providers:RowsProvider", tmp_path / "out", options={"key": "iris"})
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == ids
    expected = run_onnxruntime(model, {"X": features})
    assert table.column("output_label").to_pylist() == expected["output_label"].tolist()
    probabilities = table.column("output_probability").to_pylist()
    for got, want in zip(probabilities, expected["output_probability"], strict=True):
        assert dict(got).keys() == want.keys()
        np.testing.assert_allclose([dict(got)[k] for k in want], list(want.values()), rtol=1e-5)


def test_empty_dataset_gives_empty_output_with_success(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    data = write_features_parquet(
        tmp_path / "d.parquet", np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.float32)
    )
    result = infer(spark, add(model), "parquet", tmp_path / "out", options={"path": str(data)})
    assert result.rows == 0
    assert (tmp_path / "out" / "_SUCCESS").exists()
    assert read_output(tmp_path / "out").num_rows == 0


def test_keep_column_and_argmax_postprocess(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    features = np.random.default_rng(6).standard_normal((20, 4)).astype(np.float32)
    RowsProvider.builders["kept"] = lambda s: s.createDataFrame(
        [(i, features[i].tolist(), f"name-{i}") for i in range(20)],
        "id int, features array<float>, name string",
    )
    infer(
        spark,
        add(model),
        "_providers:RowsProvider",
        tmp_path / "out",
        options={"key": "kept"},
        keep_columns=["name"],
        postprocess="argmax",
    )
    table = read_output(tmp_path / "out")
    assert table.schema.field("id").type == pa.int32()
    assert table.column("name").to_pylist() == [f"name-{i}" for i in range(20)]
    expected = run_onnxruntime(model, {"input": features})["output"].argmax(axis=1)
    assert table.column("output").to_pylist() == expected.tolist()


def test_wrong_feature_length_fails_without_output(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    data = write_features_parquet(
        tmp_path / "d.parquet", np.arange(10, dtype=np.int64), np.zeros((10, 5), dtype=np.float32)
    )
    with pytest.raises(JobError) as caught:
        infer(spark, add(model), "parquet", tmp_path / "out", options={"path": str(data)})
    assert "4" in caught.value.message and "5" in caught.value.message
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused_then_overwritten(spark: Any, tmp_path: Path) -> None:
    model_id = add(models.small_mlp_model(tmp_path))
    data = write_features_parquet(
        tmp_path / "d.parquet", np.arange(8, dtype=np.int64), np.ones((8, 4), dtype=np.float32)
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="--overwrite"):
        infer(spark, model_id, "parquet", tmp_path / "out", options={"path": str(data)})
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    # --overwrite replaces only an earlier output; the user's own files need force
    with pytest.raises(ConflictError, match=r"not a skil-sdk output \(such as 'keep.txt'"):
        infer(spark, model_id, "parquet", tmp_path / "out", options={"path": str(data)},
              overwrite=True)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    result = infer(
        spark, model_id, "parquet", tmp_path / "out", options={"path": str(data)},
        overwrite="force",
    )
    assert result.rows == 8 and not (tmp_path / "out" / "keep.txt").exists()
    again = infer(
        spark, model_id, "parquet", tmp_path / "out", options={"path": str(data)}, overwrite=True
    )
    assert again.rows == 8 and (tmp_path / "out" / "_SUCCESS").exists()


def test_unknown_provider_and_unknown_model(spark: Any, tmp_path: Path) -> None:
    model_id = add(models.small_mlp_model(tmp_path))
    with pytest.raises(NotFoundError, match="parquet"):
        infer(spark, model_id, "no-such-provider", tmp_path / "out")
    with pytest.raises(NotFoundError, match="skil-sdk models list"):
        infer(spark, "no-such-model", "parquet", tmp_path / "out2")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()
