"""What runs inside the executors' Python workers.

Each worker fetches the model once per node (``skil_sdk.inference.fetch``: verified,
atomic, locked), keeps one onnxruntime session per process, and turns batches of
``(ids, features)`` into Arrow record batches of ``id`` plus the model's outputs.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from skil_sdk.inference.batching import slice_batch
from skil_sdk.spark.schema import ColumnSpec, spark_column_name

#: The models this Python worker has loaded, most recently used last.
_RUNNERS: OrderedDict[tuple[str, str], Any] = OrderedDict()

#: How many models one Python worker keeps loaded (``SKIL_MODEL_SESSIONS``, default 4):
#: a worker of a long-lived session serves job after job, and each model held costs its
#: weights and onnxruntime's arenas in memory.
MODEL_SESSIONS_ENV = "SKIL_MODEL_SESSIONS"
DEFAULT_MODEL_SESSIONS = 4


def default_node_cache() -> Path:
    """``$SKIL_NODE_CACHE``, or a per-user directory under the system temp dir."""
    raw = os.environ.get("SKIL_NODE_CACHE")
    if raw:
        return Path(raw)
    return Path(tempfile.gettempdir()) / f"skil-node-cache-{os.getuid()}"


@dataclass(frozen=True)
class ExecutorConfig:
    """Everything an executor needs, shipped inside the task closure (never in argv)."""

    job_id: str
    model_id: str
    model_sha256: str
    server_url: str
    token: str = field(repr=False)
    batch_size: int
    id_type: str
    columns: tuple[ColumnSpec, ...]
    keep_columns: tuple[str, ...] = ()
    keep_types: tuple[Any, ...] = ()
    postprocess: str | None = None
    postprocess_options: tuple[tuple[str, str], ...] = ()
    execution_provider: str = "cpu"
    bundle_hash: str | None = None
    node_cache: str | None = None
    #: ``(input name, per-row shape)`` pairs from ``--input-shape``.
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: The bad rows the job may quarantine (``--max-bad-rows`` as a count; 0: none).
    max_bad_rows: int = 0

    @classmethod
    def of_job(
        cls,
        job: Any,
        job_id: str,
        *,
        id_type: str = "bigint",
        columns: Any = (),
        keep: tuple[tuple[str, str], ...] = (),
        keep_types: tuple[Any, ...] = (),
        server_url: str = "",
        token: str = "",
        bundle_hash: str | None = None,
        node_cache: str | None = None,
        max_bad_rows: int = 0,
    ) -> ExecutorConfig:
        """The config of ``job`` (a :class:`~skil_sdk.job.spec.JobSpec`), for both engines
        (the local engine's workers need no server, token, bundle or node cache)."""
        return cls(
            job_id=job_id,
            model_id=job.model.id,
            model_sha256=job.model.sha256,
            server_url=server_url,
            token=token,
            batch_size=job.batch_size,
            id_type=id_type,
            columns=tuple(columns),
            keep_columns=tuple(name for name, _type in keep),
            keep_types=keep_types,
            postprocess=job.postprocess,
            postprocess_options=tuple(sorted(job.postprocess_options.items())),
            execution_provider=job.execution_provider,
            bundle_hash=bundle_hash,
            node_cache=node_cache,
            input_shapes=tuple(sorted((k, tuple(v)) for k, v in job.input_shapes.items())),
            max_bad_rows=max_bad_rows,
        )

    def arrow_schema(self, id_arrow_type: pa.DataType) -> pa.Schema:
        """The Arrow schema of the batches written."""
        fields = [pa.field("id", id_arrow_type)]
        fields += [pa.field(n, t) for n, t in zip(self.keep_columns, self.keep_types, strict=True)]
        fields += [pa.field(c.name, c.arrow_type) for c in self.columns]
        return pa.schema(fields)


def _intra_op_threads() -> int:
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
        if context is not None:
            return max(1, int(context.cpus()))
    except Exception:
        pass
    return 1


def model_runner(config: ExecutorConfig) -> Any:
    """This process's runner for the job's model (fetched once per node, loaded once)."""
    key = (config.model_sha256, config.execution_provider)
    runner = _RUNNERS.get(key)
    if runner is not None:
        _RUNNERS.move_to_end(key)
    else:
        from skil_sdk.inference.fetch import fetch_model
        from skil_sdk.inference.runner import ModelRunner

        cache = Path(config.node_cache) if config.node_cache else default_node_cache()
        path = fetch_model(config.server_url, config.model_id, config.token, cache / "models")
        _hold_and_bound(cache, path)
        providers = (
            ("CUDAExecutionProvider", "CPUExecutionProvider")
            if config.execution_provider == "cuda"
            else ("CPUExecutionProvider",)
        )
        runner = ModelRunner(path, intra_op_threads=_intra_op_threads(), providers=providers)
        remember_runner(key, runner)
    return runner


def remember_runner(key: tuple[str, str], runner: Any) -> None:
    """Keep ``runner`` as the most recently used, dropping the least recently used ones
    beyond :data:`MODEL_SESSIONS_ENV` (their onnxruntime sessions are then freed)."""
    _RUNNERS[key] = runner
    _RUNNERS.move_to_end(key)
    while len(_RUNNERS) > max(1, _model_sessions()):
        _RUNNERS.popitem(last=False)


def _model_sessions() -> int:
    raw = os.environ.get(MODEL_SESSIONS_ENV, "")
    try:
        return int(raw) if raw else DEFAULT_MODEL_SESSIONS
    except ValueError:
        return DEFAULT_MODEL_SESSIONS


def _hold_and_bound(cache: Path, model_path: Path) -> None:
    """Hold what this worker uses in the node cache, then bound the cache's size."""
    from skil_sdk.spark import nodecache
    from skil_sdk.spark.bytecode import precompile_in_background

    precompile_in_background()  # once per node: later workers import from .pyc files
    entry = model_path.parent
    while entry.parent != cache / "models" and entry.parent != entry:
        entry = entry.parent
    nodecache.hold(entry)
    nodecache.hold_running_bundle()
    nodecache.enforce(cache)


def _postprocessor(config: ExecutorConfig) -> Any:
    if config.postprocess is None:
        return None
    from skil_sdk.plugins import get_postprocessor

    return get_postprocessor(config.postprocess)


def rebatch(batches: Iterable[Any], size: int) -> Iterator[Any]:
    """Incoming :class:`~skil_sdk.spark.adapter.Batch` es as batches of at most ``size``
    rows: large ones cut, consecutive small ones of one shape joined (a packed task of
    small files gives the model full batches), the rows' order kept.
    :class:`~skil_sdk.BadRows` pass through as they come."""
    from skil_sdk.inference.quarantine import BadRows

    held: list[Any] = []
    held_rows = 0
    for batch in batches:
        if isinstance(batch, BadRows):
            yield batch
            continue
        rows = len(batch.ids)
        if rows == 0:
            continue
        if held and (held_rows + rows > size or not _joinable(held[0], batch)):
            yield _join(held)
            held, held_rows = [], 0
        if rows >= size:
            for start in range(0, rows, size):
                stop = min(rows, start + size)
                yield batch if stop - start == rows else slice_batch(batch, start, stop)
            continue
        held.append(batch)
        held_rows += rows
    if held:
        yield _join(held)


def _joinable(first: Any, other: Any) -> bool:
    """Whether two batches can be one model call: ids, features, kept columns and labels
    of the same kinds, types and per-row shapes."""
    if type(first.ids) is not type(other.ids) or not (_whole(first) and _whole(other)):
        return False
    if isinstance(first.ids, pa.Array) and first.ids.type != other.ids.type:
        return False
    if isinstance(first.ids, np.ndarray) and first.ids.dtype != other.ids.dtype:
        return False
    if not isinstance(first.ids, pa.Array | np.ndarray | list):
        return False
    if len(first.kept) != len(other.kept) or (first.labels is None) != (other.labels is None):
        return False
    if first.labels is not None and not _same_rows(first.labels, other.labels):
        return False
    if isinstance(first.features, dict):
        return (
            isinstance(other.features, dict)
            and first.features.keys() == other.features.keys()
            and all(_same_rows(first.features[k], other.features[k]) for k in first.features)
        )
    return _same_rows(first.features, other.features)


def _whole(batch: Any) -> bool:
    """Whether a batch has one feature row (and label, and kept value) per id; a batch
    that does not is never joined, so that its own error names it."""
    rows = len(batch.ids)
    features = batch.features.values() if isinstance(batch.features, dict) else [batch.features]
    return (
        all(len(f) == rows for f in features)
        and all(len(k) == rows for k in batch.kept)
        and (batch.labels is None or len(batch.labels) == rows)
    )


def _same_rows(left: Any, right: Any) -> bool:
    return (
        isinstance(left, np.ndarray)
        and isinstance(right, np.ndarray)
        and left.dtype == right.dtype
        and left.shape[1:] == right.shape[1:]
    )


def _join(batches: list[Any]) -> Any:
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    if isinstance(first.ids, pa.Array):
        ids: Any = pa.concat_arrays([b.ids for b in batches])
    elif isinstance(first.ids, np.ndarray):
        ids = np.concatenate([b.ids for b in batches])
    else:
        ids = [i for b in batches for i in b.ids]
    if isinstance(first.features, dict):
        features: Any = {
            k: np.concatenate([b.features[k] for b in batches]) for k in first.features
        }
    else:
        features = np.concatenate([b.features for b in batches])
    kept = [pa.concat_arrays([b.kept[c] for b in batches]) for c in range(len(first.kept))]
    labels = None if first.labels is None else np.concatenate([b.labels for b in batches])
    return first._make((ids, features, kept, labels))


def infer_batches(
    config: ExecutorConfig,
    batches: Iterable[Any],
    id_arrow_type: pa.DataType,
    stats: Any = None,
    runner: Any = None,
    quarantine: Any = None,
) -> Iterator[pa.RecordBatch]:
    """Run the model over :class:`~skil_sdk.spark.adapter.Batch` es; yield output batches.

    ``runner`` is the model runner to use (the local engine's workers load the stored
    model directly); by default this process's runner for the job's model. Rows the
    model cannot take go to ``quarantine`` (a :class:`~skil_sdk.inference.quarantine.
    Quarantine`; by default one that keeps them nowhere), within the job's budget.
    """
    from skil_sdk.inference.quarantine import BadRows, Quarantine, run_isolating

    runner = runner if runner is not None else model_runner(config)
    if quarantine is None:
        quarantine = Quarantine(config.max_bad_rows, id_arrow_type, config.job_id)
    postprocess = _postprocessor(config)
    options = dict(config.postprocess_options)
    schema = config.arrow_schema(id_arrow_type)
    rows_done = 0
    for item in rebatch(batches, config.batch_size):
        if isinstance(item, BadRows):
            quarantine.add(item)
            continue
        if len(item.ids) == 0:
            continue
        for batch, outputs in run_isolating(runner, item, config.input_shapes, quarantine):
            ids = batch.ids
            rows = len(ids)
            if postprocess is not None:
                outputs = postprocess(outputs, **options)
            by_column = {spark_column_name(name): value for name, value in outputs.items()}
            arrays = [ids if isinstance(ids, pa.Array) else pa.array(ids, type=id_arrow_type)]
            arrays += list(batch.kept)
            arrays += [spec.to_arrow(by_column[spec.name], rows) for spec in config.columns]
            rows_done += rows
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
    if stats is not None:
        record = process_record(rows_done, quarantine.count)
        stats.add({_process_key(): {**record, "first_bad": quarantine.first()}})


def _process_key() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_record(rows: int, quarantined: int = 0) -> dict[str, Any]:
    """This worker process's record: host, pid, Python, bundle, rows done and quarantined."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "executable": os.environ.get("PEX") or sys.executable,
        "bundle_hash": bundle_hash_in_process(),
        "rows": rows,
        "rows_quarantined": quarantined,
    }


def bundle_hash_in_process() -> str | None:
    """The short hash of the bundle this process runs from (None outside a bundle)."""
    pex = os.environ.get("PEX")
    if not pex:
        return None
    name = Path(pex).name
    if name.startswith("skil-bundle-") and name.endswith(".pex"):
        return name[len("skil-bundle-") : -len(".pex")]
    return None


class ExecutorStatsParam:
    """Accumulator merging per-process records (``host:pid`` → record, rows summed)."""

    def zero(self, value: dict[str, Any]) -> dict[str, Any]:
        return {}

    def addInPlace(self, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
        for key, record in right.items():
            if key in left:
                left[key] = {
                    **left[key],
                    "rows": left[key]["rows"] + record["rows"],
                    "rows_quarantined": left[key].get("rows_quarantined", 0)
                    + record.get("rows_quarantined", 0),
                    "first_bad": left[key].get("first_bad") or record.get("first_bad"),
                }
            else:
                left[key] = dict(record)
        return left
