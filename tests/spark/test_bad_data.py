"""The bad-input matrix (data part): bad rows and provider options in a real job.

Every job runs in the test session's SparkSession (``submit(request, spark=spark)``).
A refused job raises the error the user sees, leaves its record FAILED, writes no
output (so nothing is marked ``_SUCCESS``) and changes no stored model, plugin or
bundle. Two inputs are not errors, by design (docs/reliability.md): NaN features go to
onnxruntime as they are, and duplicate ids are kept, one output row per input row.
A stored model whose bytes changed is refused by the executors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _providers import RowsProvider
from _spark_helpers import read_output, run_onnxruntime, write_features_parquet

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import SkilError
from skil_sdk.spark.submit import InferenceRequest, submit
from skil_sdk.store.jobs import FAILED, JobStore

pytestmark = pytest.mark.slow

STORES = ("models", "plugins", "cache", "home.json")


def stored_state(home: Path) -> dict[str, str]:
    """Every file of the model, plugin and bundle stores with its sha256."""
    state: dict[str, str] = {}
    for top in STORES:
        root = home / top
        paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.exists() else []
        for path in paths:
            if path.is_file() and path.suffix != ".lock":
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[str(path.relative_to(home))] = digest
    return state


def infer(spark: Any, model_id: str, provider: str, output: Path, options: dict[str, str]) -> Any:
    request = InferenceRequest(
        model_id=model_id,
        provider=provider,
        output=str(output),
        spark_args=SparkArgs(master="local[2]"),
        provider_options=options,
    )
    return submit(request, spark=spark)


@dataclass(frozen=True)
class DataCase:
    """Rows built by the test (or provider options) and the error message the job gives."""

    id: str
    message: str
    rows: Callable[[Any], Any] | None = None
    options: Callable[[Path], dict[str, str]] | None = None
    provider: str = "_providers:RowsProvider"


def _frame(rows: list[Any], ddl: str) -> Callable[[Any], Any]:
    return lambda spark: spark.createDataFrame(rows, ddl).coalesce(1)


def _parquet(tmp: Path, width: int = 4) -> Path:
    return write_features_parquet(
        tmp / "d.parquet", np.arange(10, dtype=np.int64), np.zeros((10, width), np.float32)
    )


FLOATS = "id long, features array<float>"
DATA_CASES = [
    DataCase("data-wrong-feature-length", "4", options=lambda t: {"path": str(_parquet(t, 5))},
             provider="parquet"),
    DataCase("data-ragged-rows",
             "got rows of 3 values; send rows of 4 values (in the row with id 2)",
             _frame([(1, [0.0] * 4), (2, [0.0] * 3)], FLOATS)),
    DataCase("data-wrong-element-type", "could not be read as float32 rows",
             _frame([(1, ["a", "b", "c", "d"])], "id long, features array<string>")),
    DataCase("data-null-features", "null rows (first: the row with id 2)",
             _frame([(1, [0.0] * 4), (2, None)], FLOATS)),
    DataCase("data-null-feature-value", "null values inside its rows (first in the row with id 1)",
             _frame([(1, [0.0, None, 1.0, 2.0])], FLOATS)),
    DataCase("data-no-id-column", "without an 'id' column",
             _frame([(1, [0.0] * 4)], "key long, features array<float>")),
    DataCase("data-no-features-column", "no 'features' column",
             _frame([(1, [0.0] * 4)], "id long, values array<float>")),
]


@pytest.mark.parametrize("case", DATA_CASES, ids=[c.id for c in DATA_CASES])
def test_bad_data_is_refused(
    case: DataCase, spark: Any, tmp_path: Path, skil_home: Path
) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "bad")
    options: dict[str, str] = {}
    if case.rows is not None:
        RowsProvider.builders[case.id] = case.rows
        options = {"key": case.id}
    if case.options is not None:
        options = case.options(tmp_path)
    before = stored_state(skil_home)
    with pytest.raises(SkilError) as caught:
        infer(spark, model_id, case.provider, tmp_path / "out", options)
    assert case.message in caught.value.message, caught.value.message
    assert not (tmp_path / "out").exists()
    assert stored_state(skil_home) == before
    assert [j.state for j in JobStore().list()] == [FAILED]


def test_nan_features_pass_through(spark: Any, tmp_path: Path, skil_home: Path) -> None:
    """NaN is a float like any other: onnxruntime gets it, the output holds what it gives."""
    model = models.small_mlp_model(tmp_path)
    features = np.ones((6, 4), dtype=np.float32)
    features[2, 1] = np.nan
    RowsProvider.builders["nan"] = _frame(
        [(i, [float(v) for v in row]) for i, row in enumerate(features)], FLOATS
    )
    result = infer(spark, SkilContext().add_model_to_experiment(model, "bad"),
                   "_providers:RowsProvider", tmp_path / "out", {"key": "nan"})
    assert result.rows == 6
    out = np.array(read_output(tmp_path / "out").column("output").to_pylist())
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    assert np.isnan(out[2]).all() and not np.isnan(np.delete(out, 2, axis=0)).any()


def test_duplicate_ids_are_kept_one_row_each(spark: Any, tmp_path: Path) -> None:
    """Inference is per row: two rows with one id give two output rows, each its own."""
    model = models.small_mlp_model(tmp_path)
    features = np.arange(12, dtype=np.float32).reshape(3, 4)
    RowsProvider.builders["dup"] = _frame(
        [(7, features[0].tolist()), (7, features[1].tolist()), (8, features[2].tolist())], FLOATS
    )
    infer(spark, SkilContext().add_model_to_experiment(model, "bad"),
          "_providers:RowsProvider", tmp_path / "out", {"key": "dup"})
    table = read_output(tmp_path / "out")
    assert sorted(table.column("id").to_pylist()) == [7, 7, 8]
    expected = run_onnxruntime(model, {"input": features})["output"]
    got = sorted(map(tuple, np.array(table.column("output").to_pylist()).tolist()))
    assert got == sorted(map(tuple, expected.astype(np.float64).tolist()))


def test_tampered_stored_model_is_refused_by_the_executors(
    spark: Any, tmp_path: Path, skil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes changed after ``models add``: the executors' sha256 check names the mismatch."""
    monkeypatch.setenv("SKIL_NODE_CACHE", str(tmp_path / "fresh-node"))
    model = models.small_mlp_model(tmp_path, seed=8808)  # bytes no worker has loaded yet
    model_id = SkilContext().add_model_to_experiment(model, "bad")
    stored = skil_home / "models" / model_id / "model.onnx"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(SkilError) as caught:
        infer(spark, model_id, "parquet", tmp_path / "out", {"path": str(_parquet(tmp_path))})
    message = caught.value.message
    assert "sha256" in message and model_id in message, message
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "fresh-node" / "models").glob("[0-9a-f]*"))
    assert JobStore().list()[0].state == FAILED
