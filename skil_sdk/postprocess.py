"""Built-in output post-processors (``skil-sdk infer --postprocess NAME``).

A post-processor maps one batch of model outputs (output name → array of N rows) to
the columns written instead. The built-ins act on every floating-point output of
shape ``[N, K]``, and leave other outputs unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _scores(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        name: value
        for name, value in outputs.items()
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind == "f"
    }


def argmax(outputs: dict[str, Any], **options: str) -> dict[str, Any]:
    """Replace each ``[N, K]`` score output by its class index (int64)."""
    result = dict(outputs)
    for name, value in _scores(outputs).items():
        result[name] = np.argmax(value, axis=1).astype(np.int64)
    return result


def softmax(outputs: dict[str, Any], **options: str) -> dict[str, Any]:
    """Replace each ``[N, K]`` score output by its softmax over K."""
    result = dict(outputs)
    for name, value in _scores(outputs).items():
        shifted = value - value.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        result[name] = (exp / exp.sum(axis=1, keepdims=True)).astype(value.dtype)
    return result


def topk(outputs: dict[str, Any], k: str = "5", **options: str) -> dict[str, Any]:
    """Replace each ``[N, K]`` score output by ``NAME_indices`` and ``NAME_scores`` of the top k."""
    count = int(k)
    result = {n: v for n, v in outputs.items() if n not in _scores(outputs)}
    for name, value in _scores(outputs).items():
        top = min(count, value.shape[1])
        order = np.argsort(-value, axis=1, kind="stable")[:, :top]
        result[f"{name}_indices"] = order.astype(np.int64)
        result[f"{name}_scores"] = np.take_along_axis(value, order, axis=1)
    return result
