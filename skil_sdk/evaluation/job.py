"""The evaluation sink: metric states computed on the executors, merged on the driver.

The provider's data reaches it through the one adapter (:mod:`skil_sdk.spark.adapter`)
with labels: a DataFrame's label column (``label_column``, ``label`` by default), an
RDD of ``(key, (features, label))`` pairs, or an :class:`~skil_sdk.ExecutorSource`
that has labels (the built-in ``parquet`` reads the label column on the executors
like the features). Each Spark task runs the model (one onnxruntime runner per Python
worker, the model fetched once per node, as batch inference does), folds every batch
into a metric state and sends the driver one small serialized state; ``treeAggregate``
merges them. Predictions are never collected.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from skil_sdk.errors import ModelError
from skil_sdk.evaluation.metrics import (
    EvaluationSettings,
    MetricState,
    merge_serialized,
    new_state,
    state_from_bytes,
)

_STATE_SCHEMA = "rows bigint, state binary"


def select_output(outputs: dict[str, Any], name: str | None) -> Any:
    """The model output to evaluate: ``name``, else the first probability or float output.

    scikit-learn's ZipMap output (a list of ``{class: probability}`` dicts) becomes a
    matrix with one column per class, in class order.
    """
    if name is not None:
        if name not in outputs:
            raise ModelError(
                f"The model has no output {name!r}; its outputs are {', '.join(outputs)}."
            )
        chosen = outputs[name]
    else:
        chosen = next(
            (
                value
                for value in outputs.values()
                if isinstance(value, list)
                or (isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating))
            ),
            next(iter(outputs.values())),
        )
    if isinstance(chosen, list):
        if not chosen:
            return np.empty((0, 0))
        keys = sorted(chosen[0])
        return np.array([[row[k] for k in keys] for row in chosen], dtype=np.float64)
    return np.asarray(chosen)


def partition_state(
    config: Any,
    settings: EvaluationSettings,
    batches: Iterable[Any],
    stats: Any = None,
    runner: Any = None,
) -> tuple[int, bytes]:
    """Run the model over labelled :class:`~skil_sdk.spark.adapter.Batch` es; return
    ``(rows, state bytes)``. ``runner`` is the model runner to use (the local engine's
    workers load the stored model directly); by default this process's runner."""
    from skil_sdk.inference.quarantine import BadRows, Quarantine, run_isolating
    from skil_sdk.spark import executor

    state: MetricState = new_state(settings)
    rows = 0
    # an evaluation quarantines nothing: its first bad row fails it, named by its id
    refusing = Quarantine(0, pa.null(), config.job_id)
    for batch in executor.rebatch(batches, int(config.batch_size)):
        if isinstance(batch, BadRows):
            refusing.add(batch)
            continue
        count = len(batch.ids)
        if count == 0:
            continue
        if len(batch.labels) != count:
            raise ModelError(
                f"A batch has {count} rows of features but {len(batch.labels)} labels; the "
                "provider must give one label per row."
            )
        if runner is None:
            runner = executor.model_runner(config)
        for rows_run, outputs in run_isolating(runner, batch, config.input_shapes, refusing):
            state.update(select_output(outputs, settings.output), rows_run.labels)
        rows += count
    if stats is not None:
        key = f"{socket.gethostname()}:{os.getpid()}"
        stats.add({key: executor.process_record(rows)})
    return rows, state.to_bytes()


def _state_batch(rows: int, state: bytes) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([rows], pa.int64()), pa.array([state], pa.binary())], names=["rows", "state"]
    )


def metrics_of(settings: EvaluationSettings, rows: int, merged: bytes | None) -> dict[str, Any]:
    """The metrics of merged states (of ``rows`` rows; no state: no rows)."""
    state = state_from_bytes(merged) if merged is not None else new_state(settings)
    return {"eval_type": settings.eval_type, "rows": int(rows), **state.result()}


def merge_states(states: Iterable[bytes]) -> bytes | None:
    """Serialized metric states merged into one (None when there are none)."""
    merged: bytes | None = None
    for state in states:
        merged = merge_serialized(merged, state)
    return merged


def write_metrics(spark: Any, output: str, document: dict[str, Any]) -> None:
    """Write the metrics JSON to ``output``: locally, or through Hadoop's FileSystem."""
    from skil_sdk.storage import atomic_write_text
    from skil_sdk.uris import is_local, local_path

    text = json.dumps(document, indent=2) + "\n"
    if is_local(output):
        target = local_path(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        return
    from skil_sdk.spark.hadoop import HadoopPath

    HadoopPath(spark, output).write_text(text)


def _add(left: tuple[int, bytes | None], right: tuple[int, bytes | None]) -> tuple[int, Any]:
    return left[0] + right[0], merge_serialized(left[1], right[1])


def evaluate(
    spark: Any, spec: Any, cfg: Any, keyed: Any, context: dict[str, Any]
) -> dict[str, Any]:
    """The evaluation sink of the job ``spec`` (a DriverSpec); return its result record.

    The record is ``{"state": "SUCCEEDED", "rows", "metrics", "executors"}``; with an
    output path the metrics (and the job's identity) are also written there as JSON.
    """
    job = spec.job
    settings = job.settings()
    stats = context["stats"]
    reader = keyed.reader
    sc = spark.sparkContext

    def evaluate_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield _state_batch(*partition_state(cfg, settings, reader(batches), stats))

    states = keyed.frame.mapInArrow(evaluate_batches, _STATE_SCHEMA).rdd.map(
        lambda row: (int(row[0]), bytes(row[1]))
    )
    rows, merged = states.treeAggregate((0, None), _add, _add, depth=2)
    metrics = metrics_of(settings, rows, merged)
    executors = sorted((stats.value or {}).values(), key=lambda r: (r["host"], r["pid"]))
    if job.output:
        document = {
            **metrics,
            "job": {
                **context["identity"],
                "evaluation": settings.to_dict(),
                "spark_version": spark.version,
                "master": sc.master,
                "started_at": context["started"],
                "finished_at": time.time(),
            },
        }
        write_metrics(spark, job.output, document)
    return {"state": "SUCCEEDED", "rows": int(rows), "metrics": metrics, "executors": executors}
