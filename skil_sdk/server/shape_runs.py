"""Predict requests whose rows have different shapes: runs of one shape, run one by one.

Text lines of different widths, images of different sizes: consecutive rows of one shape
are one onnxruntime call, in the order given, and the outputs are put back in that
order (an output whose rows differ in shape is returned row by row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ShapeRuns:
    """Features in runs of consecutive rows of one shape: ``(rows, features)`` each."""

    runs: list[tuple[int, Any]]


def _row_shape(row: Any) -> tuple[int, ...] | None:
    """The shape of a JSON row (nested lists), or None when it is not regular."""
    if not isinstance(row, list):
        return ()
    if not row:
        return (0,)
    inner = [_row_shape(item) for item in row]
    if any(s is None or s != inner[0] for s in inner):
        return None
    first = inner[0]
    assert first is not None
    return (len(row), *first)


def json_runs(columns: dict[str, list[Any]]) -> ShapeRuns | None:
    """Runs of JSON rows (input name to rows) when their shapes differ, else None."""
    names = list(columns)
    count = len(columns[names[0]])
    keys = [tuple(_row_shape(columns[n][i]) for n in names) for i in range(count)]
    if len(set(keys)) <= 1 or any(None in key for key in keys):
        return None  # one shape (or rows that are not tensors: shaping names them)
    runs: list[tuple[int, Any]] = []
    start = 0
    for index in range(1, count + 1):
        if index == count or keys[index] != keys[start]:
            part = {n: columns[n][start:index] for n in names}
            runs.append((index - start, part))
            start = index
    return ShapeRuns(runs)


def run_in_runs(run: Callable[[Any], dict[str, Any]], runs: ShapeRuns) -> dict[str, Any]:
    """Run each run and put the outputs back in row order (row by row where they differ)."""
    results = [run(features) for _rows, features in runs.runs]
    merged: dict[str, Any] = {}
    for name in results[0]:
        parts = [r[name] for r in results]
        arrays = [p for p in parts if isinstance(p, np.ndarray)]
        if len(arrays) == len(parts) and len({a.shape[1:] for a in arrays}) == 1:
            merged[name] = np.concatenate(arrays)
            continue
        rows: list[Any] = []
        for part in parts:
            rows.extend(list(part))
        merged[name] = rows
    return merged
