"""The driver program of a batch-inference job; it runs inside the bundle.

``spark-submit`` starts it with the bundle as the driver's Python and the path of the
job's spec (JSON) as its only argument; the job token comes through the environment.
It asks the provider for keyed data, runs the model on the executors, writes Parquet
through Spark's commit protocol, adds ``_skil_job.json``, and writes the outcome to
the spec's ``result_path`` for the runner.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
import time
from pathlib import Path
from typing import Any

from skil_sdk.errors import ConflictError, InvalidValueError, SkilError
from skil_sdk.home import atomic_write_text
from skil_sdk.providers.arrays import arrow_type_of_spark_name
from skil_sdk.spark.hadoop import HadoopPath

_ERROR_LINE = re.compile(r"skil_sdk\.errors\.(\w+): (.+)")
_SECRET_OPTION = re.compile(r"(?i)(password|passwd|token|secret|key|credential)")
REDACTED = "***"


def redact_options(options: dict[str, str]) -> dict[str, str]:
    """Provider options with secret-looking values replaced by ``***``."""
    return {k: (REDACTED if _SECRET_OPTION.search(k) else v) for k, v in options.items()}


def error_message(exc: BaseException) -> tuple[str, str]:
    """``(code, message)`` of a failure, digging a skil-sdk error out of Spark's wrapping."""
    if isinstance(exc, SkilError):
        return exc.code, exc.message
    text = str(exc)
    matches = _ERROR_LINE.findall(text)
    if matches:
        name, message = matches[-1]
        return name, message.strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), repr(exc))
    return "spark_error", first[:2000]


def _arrow_type_of_spark(spark_type: Any) -> Any:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(spark_type)


def _feature_columns(frame: Any, signature: dict[str, Any]) -> list[str]:
    names = [i["name"] for i in signature["inputs"]]
    if len(names) > 1 and all(n in frame.columns for n in names):
        return names
    if "features" in frame.columns:
        return ["features"]
    if len(names) == 1 and names[0] in frame.columns:
        return names
    raise InvalidValueError(
        f"The provider's data has no 'features' column nor columns named after the model's "
        f"inputs ({', '.join(names)}); its columns are {', '.join(frame.columns)}."
    )


def _rdd_to_frame(spark: Any, rdd: Any) -> Any:
    import numpy as np

    first = rdd.take(1)
    if not first:
        return spark.createDataFrame([], "id bigint, features array<float>")
    key, value = first[0]
    id_type = {bool: "boolean", int: "bigint", float: "double", str: "string", bytes: "binary"}
    spark_id = id_type.get(type(key.item() if hasattr(key, "item") else key), "string")
    kind = np.asarray(value).dtype
    element = {"f": "double" if kind.itemsize == 8 else "float", "i": "bigint", "u": "bigint"}
    spark_elem = element.get(kind.kind, "double")
    caster = float if kind.kind == "f" else int

    def to_row(pair: tuple[Any, Any]) -> tuple[Any, list[Any]]:
        k, v = pair
        k = k.item() if hasattr(k, "item") else k
        return k, [caster(x) for x in np.asarray(v).reshape(-1)]

    return spark.createDataFrame(rdd.map(to_row), f"id {spark_id}, features array<{spark_elem}>")


def run(spec: dict[str, Any], token: str, spark: Any = None) -> dict[str, Any]:
    """Run the job described by ``spec``; return the result record.

    ``spark`` is an existing SparkSession to run in (a notebook's); by default the one
    ``spark-submit`` configured is used.
    """
    from pyspark.sql import DataFrame, SparkSession

    from skil_sdk.plugins import get_postprocessor, get_provider, load_plugins
    from skil_sdk.providers.interface import ExecutorSource
    from skil_sdk.spark import executor
    from skil_sdk.spark.progress import ProgressReporter
    from skil_sdk.spark.schema import output_columns

    started = time.time()
    if spark is None:
        spark = SparkSession.builder.appName(spec.get("app_name", "skil-sdk")).getOrCreate()
    sc = spark.sparkContext
    output = spec["output"]
    paths = HadoopPath(spark, output)
    if paths.exists() and not spec.get("overwrite"):
        raise ConflictError(
            f"The output path {output} already exists; choose another or pass --overwrite."
        )
    load_plugins()
    info = get_provider(spec["provider"])
    options = dict(spec.get("provider_options") or {})
    signature = spec["model"]["signature"]
    post_name = spec.get("postprocess")
    post_options = dict(spec.get("postprocess_options") or {})
    post_fn = get_postprocessor(post_name) if post_name else None
    columns = output_columns(signature, post_fn, post_options)

    data = info.cls().data(spark, **options)
    stats = sc.accumulator({}, executor.ExecutorStatsParam())
    keep = list(spec.get("keep_columns") or [])
    rows_total: int | None = None

    def config(id_type: str, keep_types: list[Any]) -> executor.ExecutorConfig:
        return executor.ExecutorConfig(
            job_id=spec["job_id"],
            model_id=spec["model"]["id"],
            model_sha256=spec["model"]["sha256"],
            server_url=spec["server_url"],
            token=token,
            batch_size=int(spec["batch_size"]),
            id_type=id_type,
            columns=tuple(columns),
            keep_columns=tuple(keep),
            keep_types=tuple(keep_types),
            postprocess=post_name,
            postprocess_options=tuple(sorted(post_options.items())),
            execution_provider=spec.get("execution_provider", "cpu"),
            bundle_hash=spec.get("bundle_hash"),
            node_cache=spec.get("node_cache"),
        )

    if isinstance(data, ExecutorSource):
        if keep:
            raise InvalidValueError(
                f"The {spec['provider']} provider reads its data on the executors and has no "
                "columns to keep; drop --keep-column."
            )
        splits = list(data.splits())
        rows_total = data.count_hint()
        id_type = data.id_type()
        id_arrow = arrow_type_of_spark_name(id_type)
        cfg = config(id_type, [])
        source = data
        batch_size = cfg.batch_size

        def run_splits(batches: Any) -> Any:
            def raw_splits() -> Any:
                for batch in batches:
                    for index in batch.column(0).to_pylist():
                        yield encoded[index]

            yield from executor.infer_batches(
                cfg, executor.source_batches(source, raw_splits(), batch_size), id_arrow, stats
            )

        # One task per split, scheduled without any Python on the JVM side: split i is
        # row i of spark.range, alone in partition i; the descriptors travel in the closure.
        encoded = [pickle.dumps(s) for s in splits]
        split_frame = spark.range(0, len(encoded), 1, max(1, len(encoded)))
        schema = _ddl(id_type, [], columns)
        result_frame = split_frame.mapInArrow(run_splits, schema)
    else:
        if not isinstance(data, DataFrame):
            data = _rdd_to_frame(spark, data)
        frame = data
        if "id" not in frame.columns:
            raise InvalidValueError(
                f"The {spec['provider']} provider returned data without an 'id' column "
                f"(columns: {', '.join(frame.columns)}); name the key column 'id'."
            )
        missing = [k for k in keep if k not in frame.columns]
        if missing:
            raise InvalidValueError(
                f"--keep-column {missing[0]!r} is not a column of the provider's data "
                f"(columns: {', '.join(frame.columns)})."
            )
        features = _feature_columns(frame, signature)
        id_field = frame.schema["id"].dataType
        keep_types = [frame.schema[k].dataType for k in keep]
        cfg = config(id_field.simpleString(), [_arrow_type_of_spark(t) for t in keep_types])
        id_arrow = _arrow_type_of_spark(id_field)

        def run_frame(batches: Any) -> Any:
            yield from executor.infer_batches(
                cfg, executor.frame_batches(batches, features, keep), id_arrow, stats
            )

        schema = _ddl(
            id_field.simpleString(),
            [(k, t.simpleString()) for k, t in zip(keep, keep_types, strict=True)],
            columns,
        )
        result_frame = frame.select("id", *features, *keep).mapInArrow(run_frame, schema)

    group = f"skil-{spec['job_id']}"
    sc.setJobGroup(group, f"skil-sdk batch inference {spec['job_id']}", True)
    reporter = ProgressReporter(
        sc, group, spec.get("server_url"), token, spec["job_id"], rows_total, stats
    )
    reporter.start()
    created = not paths.exists()
    compute_started = time.time()
    try:
        writer = result_frame.write.mode("overwrite" if spec.get("overwrite") else "errorifexists")
        writer.parquet(output)
    except BaseException:
        reporter.stop()
        if created or spec.get("overwrite"):
            _remove_quietly(paths)
        raise
    reporter.stop()
    finished = time.time()
    executors = sorted((stats.value or {}).values(), key=lambda r: (r["host"], r["pid"]))
    rows_written = _rows_written(output, sum(int(e["rows"]) for e in executors))
    record = {
        "job_id": spec["job_id"],
        "model_id": spec["model"]["id"],
        "model_sha256": spec["model"]["sha256"],
        "provider": spec["provider"],
        "provider_options": redact_options(options),
        "postprocess": post_name,
        "bundle_hash": spec.get("bundle_hash"),
        "profile": spec.get("profile"),
        "batch_size": spec["batch_size"],
        "rows": rows_written,
        "columns": [{"name": "id", "type": cfg.id_type}] + [c.to_dict() for c in columns],
        "spark_version": spark.version,
        "master": sc.master,
        "timings": {
            "submitted_at": spec.get("submitted_at"),
            "driver_started_at": started,
            "compute_started_at": compute_started,
            "finished_at": finished,
            "compute_seconds": round(finished - compute_started, 3),
        },
        "executors": executors,
    }
    paths.write_text(json.dumps(record, indent=2) + "\n", "_skil_job.json")
    return {"state": "SUCCEEDED", "rows": rows_written, "executors": executors, "record": record}


def _rows_written(output: str, reported: int) -> int:
    """Rows in the committed output: from the Parquet footers when it is a local path,
    else what the executors reported for the successful tasks (Spark merges a task's
    accumulator updates once, when it succeeds)."""
    if "://" in output and not output.startswith("file://"):
        return reported
    import pyarrow.parquet as pq

    root = Path(output[len("file://") :] if output.startswith("file://") else output)
    return sum(
        pq.read_metadata(part).num_rows
        for part in sorted(root.glob("*.parquet"))
        if not part.name.startswith(("_", "."))
    )


def _ddl(id_type: str, keep: list[tuple[str, str]], columns: list[Any]) -> str:
    parts = [f"id {id_type}"] + [f"`{n}` {t}" for n, t in keep]
    parts += [f"`{c.name}` {c.spark_type}" for c in columns]
    return ", ".join(parts)


def _remove_quietly(paths: HadoopPath) -> None:
    try:
        paths.delete()
    except Exception:
        return


def dispatch(spec: dict[str, Any], token: str, spark: Any = None) -> dict[str, Any]:
    """Run the job ``spec`` describes: batch inference, or an evaluation (``kind``)."""
    if spec.get("kind", "inference") == "evaluate":
        from skil_sdk.evaluation.job import run_evaluation

        result: dict[str, Any] = run_evaluation(spec, token, spark=spark)
        return result
    return run(spec, token, spark=spark)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the driver program: ``driver.py SPEC_JSON``."""
    args = sys.argv[1:] if argv is None else argv
    from skil_sdk.spark.bytecode import precompile_in_background

    precompile_in_background()  # later processes on this node start faster
    spec = json.loads(Path(args[0]).read_text())
    token = os.environ.pop("SKIL_JOB_TOKEN", "")
    try:
        result = dispatch(spec, token)
    except BaseException as exc:
        code, message = error_message(exc)
        result = {"state": "FAILED", "code": code, "error": message}
    atomic_write_text(Path(spec["result_path"]), json.dumps(result, default=str))
    return 0 if result["state"] == "SUCCEEDED" else 1
