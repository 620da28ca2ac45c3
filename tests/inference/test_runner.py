"""ModelRunner: reshape, cast, fixed batch dims, ZipMap outputs, errors, caching."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from _model_fixtures import (
    fixed_batch_nchw_model,
    int64_input_model,
    iris_data,
    mlp_model,
    multi_io_model,
    sklearn_classifier_model,
    unsupported_op_model,
)

from skil_sdk.errors import ModelError
from skil_sdk.inference.runner import ModelRunner, get_runner


def test_mlp_matches_onnxruntime_and_casts(tmp_path: Path) -> None:
    path = mlp_model(tmp_path, sizes=(784, 32, 10))
    rows = np.random.default_rng(0).random((7, 784))
    runner = ModelRunner(path)
    assert runner.input_names == ["input"] and runner.output_names == ["output"]
    (expected,) = ort.InferenceSession(str(path)).run(None, {"input": rows.astype(np.float32)})
    np.testing.assert_allclose(runner.run(rows)["output"], expected, rtol=1e-6)


def test_fixed_batch_one_nchw_runs_in_chunks_and_warns_once(tmp_path: Path) -> None:
    path = fixed_batch_nchw_model(tmp_path)
    runner = ModelRunner(path)
    rows = np.random.default_rng(1).random((5, 784), dtype=np.float32)
    session = ort.InferenceSession(str(path))
    expected = np.concatenate(
        [session.run(None, {"image": r.reshape(1, 1, 28, 28)})[0] for r in rows]
    )
    with pytest.warns(RuntimeWarning, match="fixed batch size of 1"):
        out = runner.run(rows)["scores"]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runner.run(rows[:3])["scores"].shape == (3, 10)
        assert runner.run(rows[:1])["scores"].shape == (1, 10)


def test_multi_input_dict_and_int64(tmp_path: Path) -> None:
    runner = ModelRunner(multi_io_model(tmp_path))
    out = runner.run({"a": [[1, 2, 3], [4, 5, 6]], "b": np.array([[1, 2], [3, 4]], dtype=np.int32)})
    np.testing.assert_allclose(out["scaled"], [[2, 4, 6], [8, 10, 12]])
    np.testing.assert_allclose(out["total"], [[3], [7]])
    with pytest.raises(ModelError, match="pass a dict"):
        runner.run(np.zeros((2, 3)))
    with pytest.raises(ModelError, match="takes inputs"):
        runner.run({"a": [[1, 2, 3]]})
    ids = ModelRunner(int64_input_model(tmp_path))
    assert ids.signature["inputs"][0]["type"] == "int64"
    assert ids.run(np.array([[1, 2, 3, 4]], dtype=np.float64))["total"].tolist() == [[10]]


def test_zipmap_outputs_are_lists_of_dicts(tmp_path: Path) -> None:
    runner = ModelRunner(sklearn_classifier_model(tmp_path))
    outputs = runner.signature["outputs"]
    assert outputs[1]["kind"] == "seq(map(int64,float))" and outputs[1]["shape"] is None
    features, labels = iris_data()
    result = runner.run(features[:10])
    assert result["output_label"].tolist() == labels[:10].tolist()
    assert (
        isinstance(result["output_probability"], list) and len(result["output_probability"]) == 10
    )
    assert set(result["output_probability"][0]) == {0, 1, 2}


def test_wrong_row_length_names_expected_and_received(tmp_path: Path) -> None:
    runner = ModelRunner(fixed_batch_nchw_model(tmp_path))
    with pytest.raises(ModelError) as caught:
        runner.run(np.zeros((2, 780)))
    assert "784" in caught.value.message and "780" in caught.value.message
    assert "[1, 1, 28, 28]" in caught.value.message


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="onnxruntime"):
        ModelRunner(unsupported_op_model(tmp_path))


def test_get_runner_caches_one_per_model(tmp_path: Path) -> None:
    path = mlp_model(tmp_path, sizes=(4, 3))
    assert get_runner(path) is get_runner(path)
    assert get_runner(path) is not get_runner(path, intra_op_threads=2)


def test_zero_rows_give_empty_outputs(tmp_path: Path) -> None:
    runner = ModelRunner(mlp_model(tmp_path, sizes=(4, 3)))
    assert runner.run(np.zeros((0, 4)))["output"].shape[0] == 0


CUDA_FIRST = ("CUDAExecutionProvider", "CPUExecutionProvider")


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(),
    reason="this onnxruntime has a CUDA provider",
)
@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider':UserWarning")
def test_cuda_asked_of_the_cpu_build_is_a_model_error(tmp_path: Path) -> None:
    """onnxruntime only warns and runs on the CPU; a job that asked for CUDA fails."""
    with pytest.raises(ModelError) as caught:
        ModelRunner(mlp_model(tmp_path, sizes=(4, 3)), providers=CUDA_FIRST)
    message = caught.value.message
    assert message.startswith(f"onnxruntime {ort.__version__} on this machine has no ")
    assert "(available: " + ", ".join(ort.get_available_providers()) + ")" in message
    assert message.endswith("or use --execution-provider cpu.") and "\n" not in message


class _FakeOrt:
    """onnxruntime-gpu 1.31.1 on a node whose CUDA libraries are missing."""

    __version__ = "1.31.1"
    cuda_version = "13.0"

    @staticmethod
    def get_available_providers() -> list[str]:
        return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


class _FakeSession:
    def __init__(self, providers: list[str]) -> None:
        self.providers = providers

    def get_providers(self) -> list[str]:
        return self.providers


def test_cuda_that_cannot_start_names_the_libraries() -> None:
    from skil_sdk.inference.runner import _check_cuda

    with pytest.raises(ModelError) as caught:
        _check_cuda(_FakeOrt, _FakeSession(["CPUExecutionProvider"]), CUDA_FIRST)
    assert caught.value.message == (
        "onnxruntime 1.31.1's CUDAExecutionProvider could not start on this machine "
        "(available: TensorrtExecutionProvider, CUDAExecutionProvider, CPUExecutionProvider); "
        "run on nodes with an NVIDIA GPU, its driver and the CUDA 13.0 and cuDNN libraries "
        "onnxruntime-gpu was built for, or use --execution-provider cpu."
    )
    _check_cuda(_FakeOrt, _FakeSession(list(CUDA_FIRST)), CUDA_FIRST)  # started: no error
    _check_cuda(_FakeOrt, _FakeSession(["CPUExecutionProvider"]), ("CPUExecutionProvider",))
