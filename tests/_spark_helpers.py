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


def write_small_files(directory: Path, files: int, rows: int, seed: int) -> np.ndarray:
    """``files`` Parquet files of ``rows`` rows each (ids 0.. in order, 4 float32 features,
    one row group per file) under ``directory``; return all the features in id order."""
    features = np.random.default_rng(seed).standard_normal((files * rows, 4)).astype(np.float32)
    for f in range(files):
        ids = np.arange(f * rows, (f + 1) * rows, dtype=np.int64)
        write_features_parquet(directory / f"f{f:03d}.parquet", ids,
                               features[f * rows:(f + 1) * rows], rows)
    return features


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
