"""Helpers for the Spark tests: data files, and onnxruntime run directly for reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_features_parquet(
    path: Path, ids: Any, features: np.ndarray, row_group_size: int = 64
) -> Path:
    """A Parquet file with ``id`` and ``features`` (list<float>) columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = features.reshape(features.shape[0], int(np.prod(features.shape[1:])))
    offsets = pa.array((np.arange(flat.shape[0] + 1) * flat.shape[1]).astype(np.int32))
    column = pa.ListArray.from_arrays(offsets, pa.array(flat.ravel()))
    table = pa.table({"id": pa.array(ids), "features": column})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def run_onnxruntime(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The model run directly by onnxruntime (the reference the jobs are compared with)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def read_output(path: Path) -> pa.Table:
    """The Parquet output of a job, sorted by id."""
    from skil_sdk import load_results

    return load_results(path).sort_by("id")
