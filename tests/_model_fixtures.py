"""Small, deterministic ONNX models built with ``onnx.helper`` (and one from scikit-learn).

Every helper writes a model into a directory and returns its path; the same call gives
the same bytes, so model ids are stable across runs. Spark and server tests share them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _model(graph: onnx.GraphProto, opset: int = OPSET) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="skil-sdk-tests"
    )
    model.ir_version = 8
    return model


def mlp_graph(
    sizes: tuple[int, ...] = (784, 512, 512, 10), seed: int = 0, batch: int | str = "N"
) -> onnx.GraphProto:
    """A ReLU MLP ``input [batch, sizes[0]] -> output [batch, sizes[-1]]`` (float32)."""
    rng = np.random.default_rng(seed)
    nodes = []
    inits = []
    current = "input"
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weight = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        bias = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        inits += [
            numpy_helper.from_array(weight, f"w{index}"),
            numpy_helper.from_array(bias, f"b{index}"),
        ]
        last = index == len(sizes) - 2
        gemm_out = "output" if last else f"h{index}"
        nodes.append(helper.make_node("Gemm", [current, f"w{index}", f"b{index}"], [gemm_out]))
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [f"r{index}"]))
            current = f"r{index}"
    return helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, sizes[-1]])],
        initializer=inits,
    )


def mlp_model(
    directory: Path,
    sizes: tuple[int, ...] = (784, 512, 512, 10),
    seed: int = 0,
    name: str = "mlp.onnx",
) -> Path:
    """The benchmark MLP (784-512-512-10 by default), symbolic batch dim ``N``."""
    return _save(_model(mlp_graph(sizes, seed)), directory / name)


def small_mlp_model(directory: Path, seed: int = 0, name: str = "small.onnx") -> Path:
    """A tiny MLP ``input [N, 4] -> output [N, 3]``."""
    return mlp_model(directory, (4, 8, 3), seed, name)


def multi_io_model(directory: Path, name: str = "multi.onnx") -> Path:
    """Inputs ``a`` float [N, 3] and ``b`` int64 [N, 2]; outputs ``scaled`` = 2a [N, 3]
    and ``total`` = sum(b) as float [N, 1]."""
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Mul", ["a", "two"], ["scaled"]),
        helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["bf", "axes"], ["total"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "multi",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["N", 2]),
        ],
        [
            helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=[two, axes],
    )
    return _save(_model(graph), directory / name)


def fixed_batch_nchw_model(directory: Path, name: str = "nchw1.onnx", seed: int = 1) -> Path:
    """Input ``image`` float [1, 1, 28, 28] (batch fixed to 1) -> ``scores`` [1, 10]."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((784, 10)).astype(np.float32) / 28.0
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nchw1",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 10])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    return _save(_model(graph), directory / name)


def int64_input_model(directory: Path, name: str = "ids.onnx") -> Path:
    """Input ``ids`` int64 [N, 4] -> ``total`` int64 [N, 1] (row sums)."""
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["ids", "axes"], ["total"], keepdims=1)],
        "ids",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("total", TensorProto.INT64, ["N", 1])],
        initializer=[axes],
    )
    return _save(_model(graph), directory / name)


def gather_model(directory: Path, name: str = "gather.onnx") -> Path:
    """Input ``index`` int64 [N, 1] -> ``value`` float [N, 1], ``value = TABLE[index]`` for
    ``TABLE = [0.5, 1.5, 2.5]``: onnxruntime refuses a batch holding an index past 2."""
    table = numpy_helper.from_array(np.array([0.5, 1.5, 2.5], dtype=np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["value"], axis=0)],
        "gather",
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])],
        initializer=[table],
    )
    return _save(_model(graph), directory / name)


def external_data_model(directory: Path, name: str = "ext.onnx", seed: int = 2) -> Path:
    """A small MLP whose weights live in ``ext.weights`` beside it (onnx external data)."""
    model = _model(mlp_graph((4, 8, 3), seed))
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        model,
        str(directory / name),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=Path(name).stem + ".weights",
        size_threshold=0,
    )
    return directory / name


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    """The iris features (float32) and labels."""
    from sklearn.datasets import load_iris

    data: Any = load_iris()
    return data.data.astype(np.float32), data.target


def sklearn_classifier_model(directory: Path, name: str = "iris.onnx") -> Path:
    """A LogisticRegression on iris via skl2onnx: input ``X`` [N, 4];
    outputs ``output_label`` int64 [N] and ``output_probability`` seq(map(int64, float))."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    features, labels = iris_data()
    classifier = LogisticRegression(max_iter=500).fit(features, labels)
    model = to_onnx(classifier, features[:1], target_opset=OPSET)
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / name))
    return directory / name


def not_onnx_file(directory: Path, name: str = "not-a-model.onnx") -> Path:
    """A file that is not ONNX at all."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"this is not a protobuf \xff\xfe\x00 model\n" * 4)
    return path


def truncated_model(directory: Path, name: str = "truncated.onnx") -> Path:
    """A valid model cut in half."""
    full = small_mlp_model(directory / "full")
    data = full.read_bytes()
    path = directory / name
    path.write_bytes(data[: len(data) // 2])
    return path


def unsupported_op_model(directory: Path, name: str = "unsupported.onnx") -> Path:
    """A well-formed model using an operator no onnxruntime implements."""
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example.skil")],
        "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.example.skil", 1)],
    )
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / name))
    return directory / name


def dynamic_cnn_model(directory: Path, name: str = "cnn.onnx", seed: int = 5) -> Path:
    """``x [N, 3, H, W] -> scores [N, 4]``: a 3x3 convolution (padded) and a global average
    pool, so any H and W work (a vision model exported with dynamic spatial dims)."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("GlobalAveragePool", ["c"], ["p"]),
            helper.make_node("Flatten", ["p"], ["scores"]),
        ],
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return _save(_model(graph), directory / name)


def recognizer_model(directory: Path, name: str = "ocr.onnx", seed: int = 6) -> Path:
    """``x [N, 3, 8, W] -> logits [N, W, 5]``: one 5-class score per image column (a text
    recognizer's shape: the sequence length follows the image width)."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((24, 5)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
            helper.make_node("Reshape", ["t", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "ocr",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "W", 5])],
        initializer=[
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "shape"),
        ],
    )
    return _save(_model(graph), directory / name)


def two_rank_model(directory: Path, name: str = "ranks.onnx", seed: int = 7) -> Path:
    """``a [N, 4]`` and ``b [N, 2, 3]`` -> ``out [N, 2]``: two inputs of different ranks."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((10, 2)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["b"], ["bf"]),
            helper.make_node("Concat", ["a", "bf"], ["ab"], axis=1),
            helper.make_node("MatMul", ["ab", "w"], ["out"]),
        ],
        "ranks",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2, 3]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    return _save(_model(graph), directory / name)
