"""Classify reads probabilities as probabilities, float32 rounding included; logits get a
softmax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from skil_sdk.inference.classify import classify
from skil_sdk.store.models import add_model

ROUNDED_UP = float(np.float32(1.0000001))  # 1 + 2**-23: one float32 step above 1

LABEL = {"name": "output_label", "type": "int64", "shape": ["N"], "kind": "tensor"}
PROBABILITY = {"name": "output_probability", "type": "float32", "shape": ["N", 3], "kind": "tensor"}
SCORES = {"name": "scores", "type": "float32", "shape": ["N", 3], "kind": "tensor"}
ZIPMAP = {
    "name": "output_probability",
    "type": None,
    "shape": None,
    "kind": "seq(map(int64,float))",
}


def _signature(*outputs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    inputs = [{"name": "X", "type": "float32", "shape": ["N", 3], "kind": "tensor"}]
    return {"inputs": inputs, "outputs": list(outputs)}


def test_float32_rounded_probabilities_with_a_label_are_not_softmaxed() -> None:
    probabilities = np.array([[1.0000001, 0, 0], [0, 0.25, 0.75]], dtype=np.float32)
    assert probabilities[0, 0] > 1.0  # the rounding the model really outputs
    outputs = {"output_label": np.array([0, 2]), "output_probability": probabilities}
    predictions = classify(_signature(LABEL, PROBABILITY), outputs)
    assert predictions == [{"label": 0, "probability": 1.0}, {"label": 2, "probability": 0.75}]


def test_float32_rounded_probabilities_alone_are_not_softmaxed() -> None:
    probabilities = np.array([[-1e-8, 1.0000001, 0], [0.5, 0.5, 0]], dtype=np.float32)
    predictions = classify(_signature(SCORES), {"scores": probabilities})
    assert predictions == [{"label": 1, "probability": 1.0}, {"label": 0, "probability": 0.5}]


def test_zipmap_probabilities_are_clipped_into_0_1() -> None:
    rows = [{0: ROUNDED_UP, 1: 0.0, 2: 0.0}, {0: 0.1, 1: 0.2, 2: 0.7}]
    outputs = {"output_label": np.array([0, 2]), "output_probability": rows}
    predictions = classify(_signature(LABEL, ZIPMAP), outputs)
    assert predictions == [
        {"label": 0, "probability": 1.0},
        {"label": 2, "probability": pytest.approx(0.7)},
    ]


@pytest.mark.parametrize(
    "scores",
    [
        [[2.0, 0.0, -1.0]],  # over 1
        [[1.01, 0.0, -0.01]],  # sums to 1, but outside [0, 1] by more than rounding
        [[0.2, 0.2, 0.2]],  # inside [0, 1], not summing to 1
    ],
)
def test_logits_still_get_a_softmax(scores: list[list[float]]) -> None:
    values = np.array(scores, dtype=np.float32)
    predictions = classify(_signature(SCORES), {"scores": values})
    soft = np.exp(values.astype(np.float64))
    soft /= soft.sum(axis=1, keepdims=True)
    assert predictions == [
        {"label": int(soft[0].argmax()), "probability": pytest.approx(float(soft[0].max()))}
    ]


def _identity_classifier(directory: Path) -> Path:
    """``X [N, 3]`` float in; ``output_label`` (argmax) and ``output_probability`` (X) out."""
    graph = helper.make_graph(
        [
            helper.make_node("ArgMax", ["X"], ["output_label"], axis=1, keepdims=0),
            helper.make_node("Identity", ["X"], ["output_probability"]),
        ],
        "identity_classifier",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
        [
            helper.make_tensor_value_info("output_label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("output_probability", TensorProto.FLOAT, ["N", 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = directory / "identity_classifier.onnx"
    onnx.save(model, str(path))
    return path


def test_classify_route_reports_a_rounded_probability_as_1(
    client: httpx.Client, tmp_path: Path
) -> None:
    record = add_model(_identity_classifier(tmp_path), "exp")
    rows = [[ROUNDED_UP, 0.0, 0.0], [0.0, 0.25, 0.75]]
    predicted = client.post(f"/models/{record.id}/predict", json={"instances": rows})
    assert predicted.json()["outputs"]["output_probability"][0][0] == ROUNDED_UP
    response = client.post(f"/models/{record.id}/classify", json={"instances": rows})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "predictions": [{"label": 0, "probability": 1.0}, {"label": 2, "probability": 0.75}]
    }
