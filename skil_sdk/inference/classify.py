"""Reading classifier outputs: the label and its probability for every row."""

from __future__ import annotations

from typing import Any

import numpy as np

from skil_sdk.errors import ModelError

PROBABILITY_TOLERANCE = 1e-6
"""How far outside [0, 1] a score may be and still count as a probability: a few float32
roundings (its machine epsilon is 1.2e-7), as in scikit-learn's ``[1.0000001, 0, 0]``."""


def classify(
    signature: dict[str, list[dict[str, Any]]], outputs: dict[str, Any]
) -> list[dict[str, Any]]:
    """``[{"label": ..., "probability": ...}, ...]`` from a classifier's outputs.

    A model with a label output (int64 or string tensor ``[N]``) and a probability
    output (ZipMap ``seq(map)`` or float ``[N, classes]``) gives its label and that
    label's probability. A model with one float output ``[N, classes]`` gives the index
    of the highest score, and its softmax probability unless the scores already are
    probabilities: every score in [0, 1] up to float32 rounding (``PROBABILITY_TOLERANCE``)
    and every row summing to 1. Probabilities are reported clipped into [0, 1].
    """
    specs = signature["outputs"]
    label_spec = _find(specs, _is_label)
    label_name = label_spec["name"] if label_spec else None
    prob_spec = _find(specs, lambda s: s["kind"].startswith("seq(map")) or _find(
        specs,
        lambda s: (
            s["kind"] == "tensor"
            and (s["type"] or "").startswith("float")
            and s["name"] != label_name
        ),
    )
    if prob_spec is None:
        raise ModelError(
            "This model has no classifier outputs (probabilities, or one score tensor "
            "[N, classes]); use /predict instead."
        )
    probs = outputs[prob_spec["name"]]
    if isinstance(probs, list):
        labels = outputs[label_spec["name"]] if label_spec else [max(r, key=r.get) for r in probs]
        return [
            {"label": _py(label), "probability": _clip(row.get(_py(label), 0.0))}
            for label, row in zip(labels, probs, strict=True)
        ]
    scores = np.asarray(probs, dtype=np.float64)
    if scores.ndim != 2:
        scores = scores.reshape(scores.shape[0], -1)
    if _are_probabilities(scores):
        scores = np.clip(scores, 0.0, 1.0)
    else:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    index = scores.argmax(axis=1)
    if label_spec is not None:
        labels = list(np.asarray(outputs[label_spec["name"]]).reshape(-1))
        return [
            {"label": _py(lab), "probability": _probability(scores[i], _py(lab))}
            for i, lab in enumerate(labels)
        ]
    return [{"label": int(i), "probability": float(scores[r, i])} for r, i in enumerate(index)]


def _is_label(spec: dict[str, Any]) -> bool:
    return (
        spec["kind"] == "tensor"
        and spec["type"] in ("int64", "int32", "string")
        and "label" in spec["name"].lower()
    )


def _probability(row: np.ndarray, label: Any) -> float:
    if isinstance(label, int) and 0 <= label < row.shape[0]:
        return float(row[label])
    return float(row.max())


def _find(specs: list[dict[str, Any]], test: Any) -> dict[str, Any] | None:
    return next((s for s in specs if test(s)), None)


def _are_probabilities(scores: np.ndarray) -> bool:
    if not np.isfinite(scores).all():
        return False
    if (scores < -PROBABILITY_TOLERANCE).any() or (scores > 1 + PROBABILITY_TOLERANCE).any():
        return False
    return bool(np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))


def _clip(probability: Any) -> float:
    return min(max(float(probability), 0.0), 1.0)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
