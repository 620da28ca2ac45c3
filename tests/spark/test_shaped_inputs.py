"""Real-world model inputs in real jobs: flat rows with ``--input-shape``, rows stored
already shaped (nested lists), rows of mixed shapes, two inputs of different ranks, and a
rank-3 output kept as nested arrays; every output equals onnxruntime run directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _providers import RowsProvider
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

from skil_sdk import SkilContext, SparkArgs, output_array
from skil_sdk.spark.submit import InferenceRequest, submit

pytestmark = pytest.mark.slow


def _infer(spark: Any, model: Path, provider: str, output: Path, **kwargs: Any) -> Any:
    model_id = SkilContext().add_model_to_experiment(model, "shapes")
    request = InferenceRequest(
        model_id,
        provider,
        str(output),
        SparkArgs(master="local[2]"),
        provider_options=kwargs.pop("options", {}),
        batch_size=kwargs.pop("batch_size", 16),
        input_shapes=kwargs.pop("input_shapes", {}),
    )
    return submit(request, spark=spark)


def _nested_parquet(path: Path, images: list[np.ndarray], row_group_size: int = 8) -> Path:
    """A Parquet file whose ``features`` are the images as nested lists (list<list<list>>)."""
    features = pa.array(
        [image.tolist() for image in images], pa.list_(pa.list_(pa.list_(pa.float32())))
    )
    table = pa.table({"id": pa.array(np.arange(len(images), dtype=np.int64)), "features": features})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _by_id(table: Any, column: str) -> dict[int, Any]:
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist(), strict=True))


def test_flat_rows_with_an_input_shape(spark: Any, tmp_path: Path) -> None:
    model = models.dynamic_cnn_model(tmp_path)
    images = np.random.default_rng(1).standard_normal((40, 3, 6, 5)).astype(np.float32)
    data = write_features_parquet(
        tmp_path / "flat.parquet", np.arange(40, dtype=np.int64), images.reshape(40, -1), 16
    )
    result = _infer(
        spark, model, "parquet", tmp_path / "out", options={"path": str(data)},
        input_shapes={"x": [3, 6, 5]},
    )
    assert result.rows == 40
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(40))
    expected = run_onnxruntime(model, {"x": images})["scores"]
    np.testing.assert_allclose(output_array(table, "scores"), expected, rtol=1e-5, atol=1e-6)


def test_nested_rows_of_mixed_sizes_run_as_sub_batches(spark: Any, tmp_path: Path) -> None:
    """Images of two sizes, stored already shaped: each runs at its own size, in order."""
    model = models.dynamic_cnn_model(tmp_path)
    rng = np.random.default_rng(2)
    images = [
        rng.standard_normal((3, 6, 5) if i % 7 < 4 else (3, 4, 9)).astype(np.float32)
        for i in range(30)
    ]
    data = _nested_parquet(tmp_path / "nested.parquet", images)
    result = _infer(spark, model, "parquet", tmp_path / "out", options={"path": str(data)})
    assert result.rows == 30
    got = _by_id(read_output(tmp_path / "out"), "scores")
    for i, image in enumerate(images):
        expected = run_onnxruntime(model, {"x": image[None]})["scores"][0]
        np.testing.assert_allclose(got[i], expected, rtol=1e-5, atol=1e-6)


def test_a_rank_3_output_keeps_its_shape(spark: Any, tmp_path: Path) -> None:
    """``[N, T, C]`` with T following the image width: nested arrays, read back shaped."""
    model = models.recognizer_model(tmp_path)
    rng = np.random.default_rng(3)
    wide = [rng.standard_normal((3, 8, 7)).astype(np.float32) for _ in range(12)]
    narrow = [rng.standard_normal((3, 8, 4)).astype(np.float32) for _ in range(6)]
    data = _nested_parquet(tmp_path / "lines.parquet", wide + narrow, row_group_size=6)
    _infer(spark, model, "parquet", tmp_path / "out", options={"path": str(data)})
    table = read_output(tmp_path / "out")
    assert str(table.schema.field("logits").type) == "list<element: list<element: float>>"
    got = _by_id(table, "logits")
    for i, image in enumerate(wide + narrow):
        expected = run_onnxruntime(model, {"x": image[None]})["logits"][0]
        assert np.asarray(got[i]).shape == expected.shape
        np.testing.assert_allclose(np.asarray(got[i]), expected, rtol=1e-5, atol=1e-6)
    meta = json.loads((tmp_path / "out" / "_skil_job.json").read_text())
    assert meta["columns"][1] == {
        "name": "logits", "type": "array<array<float>>", "shape": [None, 5]
    }
    first_rows = table.filter(pa.compute.less(table.column("id"), 12))
    assert output_array(first_rows, "logits").shape == (12, 7, 5)


def test_two_inputs_of_different_ranks_from_a_dataframe(spark: Any, tmp_path: Path) -> None:
    model = models.two_rank_model(tmp_path)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((20, 4)).astype(np.float32)
    b = rng.standard_normal((20, 2, 3)).astype(np.float32)
    rows = [(i, a[i].tolist(), b[i].tolist()) for i in range(20)]
    RowsProvider.builders["ranks"] = lambda s: s.createDataFrame(
        rows, "id bigint, a array<float>, b array<array<float>>"
    ).repartition(3)
    _infer(spark, model, "_providers:RowsProvider", tmp_path / "out", options={"key": "ranks"})
    got = _by_id(read_output(tmp_path / "out"), "out")
    expected = run_onnxruntime(model, {"a": a, "b": b})["out"]
    for i in range(20):
        np.testing.assert_allclose(got[i], expected[i], rtol=1e-5, atol=1e-6)


def test_the_images_provider_in_a_job(spark: Any, tmp_path: Path) -> None:
    """Images decoded on the executors (Pillow in the bundle) give onnxruntime's outputs."""
    from PIL import Image
    from test_images_provider import MEAN, STD, _by_hand, _write_images

    model = models.dynamic_cnn_model(tmp_path)
    paths = _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "extra").mkdir()
    for i in range(6):  # more images, so the job has several splits
        extra = tmp_path / "imgs" / "extra" / f"{i}.png"
        Image.new("RGB", (12 + i, 10), (i * 40, 90, 200)).save(extra)
        paths[f"extra/{i}.png"] = extra
    result = _infer(
        spark, model, "images", tmp_path / "out",
        options={"path": str(tmp_path / "imgs"), "size": "14,14", "files_per_split": "3",
                 "mean": ",".join(map(str, MEAN)), "std": ",".join(map(str, STD))},
    )
    assert result.rows == len(paths)
    got = _by_id(read_output(tmp_path / "out"), "scores")
    assert sorted(got) == sorted(paths)
    for image_id, path in paths.items():
        expected = run_onnxruntime(model, {"x": _by_hand(path, (14, 14), None)[None]})["scores"][0]
        np.testing.assert_allclose(got[image_id], expected, rtol=1e-5, atol=1e-5)
