"""The built-in providers on Spark: mnist (IDX files the test writes), csv and numpy."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.submit import InferenceRequest, submit

pytestmark = pytest.mark.slow


def write_idx(directory: Path, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    opener: Any = gzip.open if gz else open
    with opener(directory / f"t10k-images-idx3-ubyte{suffix}", "wb") as handle:
        handle.write(struct.pack(">iiii", 2051, len(images), 28, 28))
        handle.write(images.astype(np.uint8).tobytes())
    with opener(directory / f"t10k-labels-idx1-ubyte{suffix}", "wb") as handle:
        handle.write(struct.pack(">ii", 2049, len(labels)))
        handle.write(labels.astype(np.uint8).tobytes())


def infer(spark: Any, model: Path, provider: str, output: Path, **options: str) -> Any:
    model_id = SkilContext().add_model_to_experiment(model, "providers")
    request = InferenceRequest(
        model_id, provider, str(output), SparkArgs(master="local[2]"), provider_options=options
    )
    return submit(request, spark=spark)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_provider_reads_ranges_on_the_executors(spark: Any, tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (57, 784))
    write_idx(tmp_path / "mnist", images, rng.integers(0, 10, 57), gz)
    model = models.mlp_model(tmp_path, (784, 16, 10))
    result = infer(
        spark,
        model,
        "mnist",
        tmp_path / "out",
        path=str(tmp_path / "mnist"),
        records_per_split="10",
    )
    assert result.rows == 57
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(57))
    pixels = images.astype(np.uint8).astype(np.float32) / 255.0
    expected = run_onnxruntime(model, {"input": pixels})["output"]
    np.testing.assert_allclose(
        np.array(table.column("output").to_pylist()), expected, rtol=1e-5, atol=1e-6
    )
    meta = json.loads((tmp_path / "out" / "_skil_job.json").read_text())
    assert meta["provider_options"]["path"] == str(tmp_path / "mnist")


def test_mnist_limit_and_bad_files(spark: Any, tmp_path: Path) -> None:
    write_idx(tmp_path / "mnist", np.zeros((20, 784)), np.zeros(20), gz=False)
    model = models.mlp_model(tmp_path, (784, 8, 10))
    assert (
        infer(spark, model, "mnist", tmp_path / "out", path=str(tmp_path / "mnist"), limit="5").rows
        == 5
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 12)
    with pytest.raises(InvalidValueError, match="magic"):
        infer(spark, model, "mnist", tmp_path / "out2", path=str(tmp_path / "bad"))
    assert not (tmp_path / "out2").exists()


def test_csv_provider(spark: Any, tmp_path: Path) -> None:
    features = np.random.default_rng(9).standard_normal((40, 4)).astype(np.float32)
    lines = ["key,a,b,c,d"] + [
        f"k{i:02d}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(features)
    ]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    model = models.small_mlp_model(tmp_path)
    infer(spark, model, "csv", tmp_path / "out", path=str(tmp_path / "rows.csv"), id="key")
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == [f"k{i:02d}" for i in range(40)]
    rounded = np.array([[float(f"{v:.6f}") for v in row] for row in features], dtype=np.float32)
    expected = run_onnxruntime(model, {"input": rounded})["output"]
    np.testing.assert_allclose(
        np.array(table.column("output").to_pylist()), expected, rtol=1e-4, atol=1e-5
    )


def test_numpy_provider_over_several_files(spark: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    first, second = rng.standard_normal((30, 4)), rng.standard_normal((12, 2, 2))
    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "a.npy", first.astype(np.float32))
    np.save(tmp_path / "npy" / "b.npy", second.astype(np.float64))
    model = models.small_mlp_model(tmp_path)
    infer(spark, model, "numpy", tmp_path / "out", path=str(tmp_path / "npy"), rows_per_split="7")
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(42))
    rows = np.concatenate([first, second.reshape(12, 4)]).astype(np.float32)
    expected = run_onnxruntime(model, {"input": rows})["output"]
    np.testing.assert_allclose(
        np.array(table.column("output").to_pylist()), expected, rtol=1e-5, atol=1e-6
    )


def test_provider_option_errors_name_the_option(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    with pytest.raises(InvalidValueError, match="'path'"):
        infer(spark, model, "parquet", tmp_path / "out")
    with pytest.raises(InvalidValueError, match="no option 'colour'"):
        infer(spark, model, "numpy", tmp_path / "out", path=str(tmp_path), colour="red")
    assert not (tmp_path / "out").exists()
