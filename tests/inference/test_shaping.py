"""Feeding models: nested and fixed-size list columns read as tensors of the row's shape,
runs of one shape, ``--input-shape`` for flat rows, and the ``models show`` hints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _model_fixtures as models
import numpy as np
import pyarrow as pa
import pytest

from skil_sdk.errors import InvalidValueError, ModelError
from skil_sdk.inference.runner import ModelRunner
from skil_sdk.inference.signature import feeding_hint
from skil_sdk.job.prepare import check_input_shapes
from skil_sdk.providers.arrays import column_to_matrix, feature_runs

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
CNN = {"name": "x", "kind": "tensor", "type": "float32", "shape": ["N", 3, "H", "W"]}


def test_nested_and_fixed_size_lists_keep_the_row_shape() -> None:
    images = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    nested = pa.array(images.tolist(), pa.list_(pa.list_(pa.list_(pa.float32()))))
    np.testing.assert_array_equal(column_to_matrix(nested, "x"), images)
    fixed = pa.array(images.reshape(2, -1).tolist(), pa.list_(pa.float32(), 12))
    assert column_to_matrix(fixed, "x").shape == (2, 12)
    assert column_to_matrix(nested.slice(1), "x").tolist() == images[1:].tolist()


def test_rows_of_different_shapes_are_cut_into_runs_in_order() -> None:
    widths = [3, 3, 5, 5, 5, 3]
    rows = [[[float(i)] * w] for i, w in enumerate(widths)]
    batch = pa.record_batch(
        [pa.array(range(6), pa.int64()), pa.array(rows, pa.list_(pa.list_(pa.float32())))],
        names=["id", "features"],
    )
    runs = [(start, stop, f.shape) for start, stop, f in feature_runs(batch, ["features"])]
    assert runs == [(0, 2, (2, 1, 3)), (2, 5, (3, 1, 5)), (5, 6, (1, 1, 3))]


def test_a_row_that_is_not_a_regular_tensor_is_named_by_id() -> None:
    jagged = pa.array([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0]]])
    with pytest.raises(ModelError, match="the row with id 'b' has lists of different lengths"):
        column_to_matrix(jagged, "x", pa.array(["a", "b"]))


def test_input_shape_reshapes_flat_rows(tmp_path: Path) -> None:
    model = models.dynamic_cnn_model(tmp_path)
    runner = ModelRunner(model)
    images = np.random.default_rng(0).standard_normal((4, 3, 6, 5)).astype(np.float32)
    with pytest.raises(ModelError, match="2 variable dims per row"):
        runner.run(images.reshape(4, -1))
    flat = runner.run(images.reshape(4, -1), {"x": (3, 6, 5)})["scores"]
    np.testing.assert_allclose(flat, runner.run(images)["scores"], rtol=1e-6)
    with pytest.raises(ModelError, match="hold 90 values; fix the rows or pass another"):
        runner.run(images.reshape(4, -1), {"x": (3, 5, 5)})
    # rows already shaped are never rearranged into another layout
    with pytest.raises(ModelError, match="rows are shaped 6x5x3 but the model takes"):
        runner.run(images.transpose(0, 2, 3, 1))
    with pytest.raises(ModelError, match="rows are shaped 6x5x3 but the model takes"):
        runner.run(images.transpose(0, 2, 3, 1), {"x": (3, 6, 5)})
    np.testing.assert_allclose(
        runner.run(images, {"x": (3, 8, 8)})["scores"], runner.run(images)["scores"], rtol=1e-6
    )


def test_input_shapes_are_checked_against_the_model() -> None:
    signature = {"inputs": [CNN], "outputs": []}
    assert check_input_shapes(signature, {"x": [3, 224, 224]}) == {"x": (3, 224, 224)}
    cases = [
        ({"x": [4, 224, 224]}, "contradicts the model's fixed dim 3 at position 1"),
        ({"x": [3, 224]}, "each row has 3 dims"),
        ({"y": [3, 2, 2]}, "'y', which is not an input of the model"),
        ({"x": [3, 0, 2]}, "needs positive dims"),
    ]
    for given, message in cases:
        with pytest.raises(InvalidValueError) as caught:
            check_input_shapes(signature, given)
        assert message in caught.value.message


def test_feeding_hints() -> None:
    assert feeding_hint({**CNN}) == (
        "2 dynamic dims: store rows already shaped (nested lists), or pass "
        "--input-shape x=3,224,224 for flat rows"
    )
    one = {"name": "x", "kind": "tensor", "type": "float32", "shape": ["N", 3, 8, "W"]}
    assert "flat rows set it from their length" in (feeding_hint(one) or "")
    assert feeding_hint({"name": "x", "kind": "tensor", "shape": ["N", 4]}) is None


def test_models_show_says_how_to_feed_dynamic_inputs(tmp_path: Path, skil_home: Path) -> None:
    env = dict(os.environ)
    added = subprocess.run(
        [SKIL, "models", "add", str(models.dynamic_cnn_model(tmp_path)), "--experiment", "v",
         "--json"], capture_output=True, text=True, env=env, check=True,
    )
    model_id = json.loads(added.stdout)["id"]
    shown = subprocess.run(
        [SKIL, "models", "show", model_id], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "--input-shape x=3,224,224" in shown
    as_json = subprocess.run(
        [SKIL, "models", "show", model_id, "--json"], capture_output=True, text=True, env=env,
        check=True,
    ).stdout
    assert json.loads(as_json)["feeding"]["x"].startswith("2 dynamic dims")


def test_infer_dry_run_records_input_shapes(tmp_path: Path, skil_home: Path) -> None:
    env = dict(os.environ)
    model_id = json.loads(subprocess.run(
        [SKIL, "models", "add", str(models.dynamic_cnn_model(tmp_path)), "--experiment", "v",
         "--json"], capture_output=True, text=True, env=env, check=True,
    ).stdout)["id"]
    data = tmp_path / "d.parquet"
    data.write_bytes(b"PAR1")
    base = [SKIL, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
            f"path={data}", "--output", str(tmp_path / "out"), "--dry-run", "--json"]
    spec = json.loads(subprocess.run(
        [*base, "--input-shape", "x=3,32,32"], capture_output=True, text=True, env=env,
        check=True,
    ).stdout)
    assert spec["input_shapes"] == {"x": [3, 32, 32]}
    refused = subprocess.run(
        [*base, "--input-shape", "x=1,32,32"], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 1
    assert "contradicts the model's fixed dim 3 at position 1" in refused.stderr

