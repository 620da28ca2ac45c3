"""Running a model whose batch dim is fixed: chunks of that size, the last one padded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def fixed_batch_size(inputs: Sequence[dict[str, Any]]) -> int | None:
    """The fixed batch dim of the model's tensor inputs, or None when it is symbolic."""
    for spec in inputs:
        shape = spec.get("shape")
        if spec.get("kind") == "tensor" and shape and isinstance(shape[0], int) and shape[0] > 0:
            return int(shape[0])
    return None


def run_in_chunks(
    run: Callable[[dict[str, np.ndarray]], dict[str, Any]],
    feeds: dict[str, np.ndarray],
    rows: int,
    batch: int,
    output_names: Sequence[str],
) -> dict[str, Any]:
    """Call ``run`` on chunks of exactly ``batch`` rows and join the first ``rows`` results."""
    parts: dict[str, list[Any]] = {name: [] for name in output_names}
    for start in range(0, rows, batch):
        chunk = {name: _pad(array[start : start + batch], batch) for name, array in feeds.items()}
        kept = min(batch, rows - start)
        for name, value in run(chunk).items():
            parts[name].append(_trim(value, kept, batch))
    return {name: _join(values) for name, values in parts.items()}


def _pad(array: np.ndarray, batch: int) -> np.ndarray:
    missing = batch - array.shape[0]
    if missing <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)], axis=0)


def _trim(value: Any, kept: int, batch: int) -> Any:
    if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == batch:
        return value[:kept]
    if isinstance(value, list) and len(value) == batch:
        return value[:kept]
    return value


def _join(values: list[Any]) -> Any:
    if all(isinstance(v, np.ndarray) and v.ndim for v in values):
        return np.concatenate(values, axis=0)
    joined: list[Any] = []
    for value in values:
        joined.extend(list(value))
    return joined


def slice_batch(batch: Any, start: int, stop: int) -> Any:
    """Rows ``start..stop`` of a :class:`~skil_sdk.spark.adapter.Batch`."""
    return batch._make(
        (
            batch.ids[start:stop],
            _slice_features(batch.features, start, stop),
            [k.slice(start, stop - start) for k in batch.kept],
            None if batch.labels is None else batch.labels[start:stop],
        )
    )


def _slice_features(features: Any, start: int, stop: int) -> Any:
    if isinstance(features, dict):
        return {k: v[start:stop] for k, v in features.items()}
    return features[start:stop]
