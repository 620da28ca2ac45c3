"""Reading a job's results: a Parquet directory with ``_SUCCESS`` and ``_skil_job.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skil_sdk.errors import InvalidValueError, NotFoundError


def _local(path: str | Path) -> Path:
    text = str(path)
    return Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()


def load_results(path: str | Path) -> Any:
    """The results of a finished job as a ``pyarrow.Table`` (``.to_pandas()`` for pandas).

    Only complete outputs are read: the directory must hold ``_SUCCESS``.
    Spark users read the same directory with ``spark.read.parquet(path)``.
    """
    import pyarrow.dataset as ds

    root = _local(path)
    if not root.exists():
        raise NotFoundError(f"No results at {root}; check the output path of the job.")
    if not (root / "_SUCCESS").exists():
        raise InvalidValueError(
            f"{root} has no _SUCCESS marker, so its job did not finish; rerun it with --overwrite."
        )
    dataset = ds.dataset(str(root), format="parquet", exclude_invalid_files=True)
    return dataset.to_table()


def job_metadata(path: str | Path) -> dict[str, Any]:
    """The ``_skil_job.json`` record of an output directory."""
    meta = _local(path) / "_skil_job.json"
    if not meta.exists():
        raise NotFoundError(f"No _skil_job.json in {_local(path)}; it is not a skil-sdk output.")
    data: dict[str, Any] = json.loads(meta.read_text())
    return data
