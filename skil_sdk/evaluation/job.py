"""The driver side of an evaluation job, and what its executors run.

The provider supplies features and labels: a DataFrame with a label column (named by
``label_column``, ``label`` by default), an RDD of ``(key, (features, label))`` pairs,
or an :class:`~skil_sdk.ExecutorSource` with ``labels()``. Each Spark task runs the
model (one onnxruntime runner per Python worker, the model fetched once per node, as
batch inference does), folds every batch into a metric state and sends the driver one
small serialized state; ``treeAggregate`` merges them. Predictions are never collected.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from skil_sdk.errors import ConflictError, InvalidValueError, ModelError
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


def _slices(features: Any, start: int, stop: int) -> Any:
    if isinstance(features, dict):
        return {k: v[start:stop] for k, v in features.items()}
    return features[start:stop]


def _rows_of(features: Any) -> int:
    if isinstance(features, dict):
        return len(next(iter(features.values())))
    return len(features)


def partition_state(
    config: Any,
    settings: EvaluationSettings,
    batches: Iterable[tuple[Any, Any]],
    stats: Any = None,
) -> tuple[int, bytes]:
    """Run the model over ``(features, labels)`` batches; return ``(rows, state bytes)``."""
    from skil_sdk.spark import executor

    state: MetricState = new_state(settings)
    runner = None
    rows = 0
    size = int(config.batch_size)
    for features, labels in batches:
        count = _rows_of(features)
        if len(labels) != count:
            raise ModelError(
                f"A batch has {count} rows of features but {len(labels)} labels; the provider "
                "must give one label per row."
            )
        if runner is None and count:
            runner = executor.model_runner(config)
        for start in range(0, count, size):
            stop = min(count, start + size)
            assert runner is not None
            outputs = runner.run(_slices(features, start, stop))
            state.update(select_output(outputs, settings.output), labels[start:stop])
        rows += count
    if stats is not None:
        stats.add({f"{socket.gethostname()}:{os.getpid()}": _process_record(rows)})
    return rows, state.to_bytes()


def _process_record(rows: int) -> dict[str, Any]:
    from skil_sdk.spark.executor import bundle_hash_in_process

    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "executable": sys.argv[0] if sys.argv and sys.argv[0] else sys.executable,
        "bundle_hash": bundle_hash_in_process(),
        "rows": rows,
    }


def _state_batch(rows: int, state: bytes) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([rows], pa.int64()), pa.array([state], pa.binary())], names=["rows", "state"]
    )


def _pair_batches(pairs: Iterable[Any], batch_size: int) -> Iterator[tuple[Any, Any]]:
    """``(features, labels)`` batches from ``(key, (features, label))`` pairs."""
    features: list[np.ndarray] = []
    labels: list[Any] = []
    for pair in pairs:
        try:
            _key, (row, label) = pair
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(
                "An evaluation needs (key, (features, label)) pairs from an RDD provider; "
                "return the label beside each row's features."
            ) from exc
        features.append(np.asarray(row).reshape(-1))
        labels.append(np.asarray(label).reshape(-1))
        if len(features) == batch_size:
            yield np.stack(features), np.stack(labels)
            features, labels = [], []
    if features:
        yield np.stack(features), np.stack(labels)


def _check_output(spark: Any, output: str, overwrite: bool) -> None:
    if _is_local(output):
        if _local(output).exists() and not overwrite:
            raise ConflictError(
                f"The output path {output} already exists; choose another or pass --overwrite."
            )
        return
    from skil_sdk.spark.hadoop import HadoopPath

    if HadoopPath(spark, output).exists() and not overwrite:
        raise ConflictError(
            f"The output path {output} already exists; choose another or pass --overwrite."
        )


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path[len("file://") :] if path.startswith("file://") else path).expanduser()


def write_metrics(spark: Any, output: str, document: dict[str, Any]) -> None:
    """Write the metrics JSON to ``output``: locally, or through Hadoop's FileSystem."""
    from skil_sdk.home import atomic_write_text

    text = json.dumps(document, indent=2) + "\n"
    if _is_local(output):
        target = _local(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        return
    from skil_sdk.spark.hadoop import HadoopPath

    HadoopPath(spark, output).write_text(text)


def _executor_config(spec: dict[str, Any], token: str) -> Any:
    from skil_sdk.spark.executor import ExecutorConfig

    return ExecutorConfig(
        job_id=spec["job_id"],
        model_id=spec["model"]["id"],
        model_sha256=spec["model"]["sha256"],
        server_url=spec["server_url"],
        token=token,
        batch_size=int(spec["batch_size"]),
        id_type="bigint",
        columns=(),
        execution_provider=spec.get("execution_provider", "cpu"),
        bundle_hash=spec.get("bundle_hash"),
        node_cache=spec.get("node_cache"),
    )


def _states(
    spark: Any, data: Any, spec: dict[str, Any], settings: EvaluationSettings, cfg: Any, stats: Any
) -> tuple[Any, int | None]:
    """The RDD of ``(rows, state bytes)``, one per partition, and the row count if known."""
    from pyspark.sql import DataFrame

    from skil_sdk.providers.arrays import column_to_matrix, features_from_batch
    from skil_sdk.providers.interface import ExecutorSource
    from skil_sdk.spark.driver import _feature_columns

    provider = spec["provider"]
    batch_size = cfg.batch_size
    if isinstance(data, ExecutorSource):
        if type(data).labels is ExecutorSource.labels:
            raise InvalidValueError(
                f"The {provider} provider supplies no labels; evaluate with a provider whose "
                "data has a label column or whose source implements labels()."
            )
        encoded = [pickle.dumps(s) for s in data.splits()]
        source = data

        def split_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[Any, Any]]:
            for batch in batches:
                for index in batch.column(0).to_pylist():
                    split = pickle.loads(encoded[index])
                    reads = source.read(split, batch_size)
                    for (ids, features), (label_ids, labels) in zip(
                        reads, source.labels(split, batch_size), strict=True
                    ):
                        if not np.array_equal(np.asarray(ids), np.asarray(label_ids)):
                            raise ModelError(
                                f"The {provider} provider's labels are not in the order of its "
                                "rows; labels() must yield the ids read() yields."
                            )
                        yield features, labels

        def evaluate_splits(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            yield _state_batch(*partition_state(cfg, settings, split_batches(batches), stats))

        frame = spark.range(0, len(encoded), 1, max(1, len(encoded)))
        states = frame.mapInArrow(evaluate_splits, _STATE_SCHEMA)
        return states.rdd.map(lambda row: (int(row[0]), bytes(row[1]))), data.count_hint()
    if not isinstance(data, DataFrame):
        rdd = data

        def evaluate_pairs(pairs: Iterable[Any]) -> Iterator[tuple[int, bytes]]:
            yield partition_state(cfg, settings, _pair_batches(pairs, batch_size), stats)

        first = rdd.take(1)
        if first and not (
            isinstance(first[0], tuple | list) and isinstance(first[0][1], tuple | list)
        ):
            raise InvalidValueError(
                f"The {provider} provider returns (key, features) pairs without labels; return "
                "(key, (features, label)) pairs to evaluate."
            )
        return rdd.mapPartitions(evaluate_pairs), None
    label = settings.label_column
    if label not in data.columns:
        raise InvalidValueError(
            f"The {provider} provider's data has no label column {label!r} (columns: "
            f"{', '.join(data.columns)}); pass --label-column with the column holding labels."
        )
    features = _feature_columns(data.drop(label), spec["model"]["signature"])

    def frame_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[Any, Any]]:
        for batch in batches:
            if batch.num_rows:
                yield (
                    features_from_batch(batch, features),
                    column_to_matrix(batch.column(label), label),
                )

    def evaluate_frame(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield _state_batch(*partition_state(cfg, settings, frame_batches(batches), stats))

    states = data.select(*features, label).mapInArrow(evaluate_frame, _STATE_SCHEMA)
    return states.rdd.map(lambda row: (int(row[0]), bytes(row[1]))), None


def _add(left: tuple[int, bytes | None], right: tuple[int, bytes | None]) -> tuple[int, Any]:
    return left[0] + right[0], merge_serialized(left[1], right[1])


def run_evaluation(spec: dict[str, Any], token: str, spark: Any = None) -> dict[str, Any]:
    """Run the evaluation job ``spec`` describes; return its result record.

    The record is ``{"state": "SUCCEEDED", "rows", "metrics", "executors"}``; with
    ``spec["output"]`` the metrics (and the job's identity) are also written there as JSON.
    """
    from pyspark.sql import SparkSession

    from skil_sdk.plugins import get_provider, load_plugins
    from skil_sdk.spark.driver import redact_options
    from skil_sdk.spark.executor import ExecutorStatsParam
    from skil_sdk.spark.progress import ProgressReporter

    started = time.time()
    settings = EvaluationSettings.from_dict(dict(spec.get("evaluation") or {}))
    if spark is None:
        spark = SparkSession.builder.appName(spec.get("app_name", "skil-sdk")).getOrCreate()
    sc = spark.sparkContext
    output = spec.get("output") or None
    if output:
        _check_output(spark, output, bool(spec.get("overwrite")))
    load_plugins()
    options = dict(spec.get("provider_options") or {})
    data = get_provider(spec["provider"]).cls().data(spark, **options)
    stats = sc.accumulator({}, ExecutorStatsParam())
    cfg = _executor_config(spec, token)
    states, rows_total = _states(spark, data, spec, settings, cfg, stats)

    group = f"skil-{spec['job_id']}"
    sc.setJobGroup(group, f"skil-sdk evaluation {spec['job_id']}", True)
    reporter = ProgressReporter(
        sc, group, spec.get("server_url"), token, spec["job_id"], rows_total, stats
    )
    reporter.start()
    try:
        rows, merged = states.treeAggregate((0, None), _add, _add, depth=2)
    finally:
        reporter.stop()
    state = state_from_bytes(merged) if merged is not None else new_state(settings)
    metrics = {"eval_type": settings.eval_type, "rows": int(rows), **state.result()}
    executors = sorted((stats.value or {}).values(), key=lambda r: (r["host"], r["pid"]))
    if output:
        document = {
            **metrics,
            "job": {
                "job_id": spec["job_id"],
                "model_id": spec["model"]["id"],
                "model_sha256": spec["model"]["sha256"],
                "provider": spec["provider"],
                "provider_options": redact_options(options),
                "bundle_hash": spec.get("bundle_hash"),
                "profile": spec.get("profile"),
                "evaluation": settings.to_dict(),
                "spark_version": spark.version,
                "master": sc.master,
                "started_at": started,
                "finished_at": time.time(),
            },
        }
        write_metrics(spark, output, document)
    return {"state": "SUCCEEDED", "rows": int(rows), "metrics": metrics, "executors": executors}
