"""The driver program of a job; it runs inside the bundle.

``spark-submit`` starts it with the bundle as the driver's Python and the path of the
job's :class:`~skil_sdk.job.spec.DriverSpec` (JSON) as its only argument; the job
token comes through the environment. It asks the provider for keyed data, turns it
into the one form the executors consume (:mod:`skil_sdk.spark.adapter`), and hands it
to the job's sink: Parquet through Spark's commit protocol plus ``_skil_job.json`` for
batch inference, merged metric states for an evaluation. The outcome goes to the
spec's ``result_path`` for the runner.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from skil_sdk.commit import LocalCommitter, abandon_output
from skil_sdk.errors import ConflictError, InvalidValueError, SkilError
from skil_sdk.job.spec import (
    INFERENCE,
    OVERWRITE_FORCE,
    OVERWRITE_NO,
    DriverSpec,
)
from skil_sdk.providers.arrays import arrow_type_of_spark_name
from skil_sdk.spark.adapter import KeyedInput, adapt, call_provider
from skil_sdk.spark.hadoop import HadoopPath
from skil_sdk.storage import atomic_write_text, remove_entry
from skil_sdk.uris import is_local, local_path

_ERROR_LINE = re.compile(r"skil_sdk\.errors\.(\w+): (.+)")


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


def executor_config(
    spec: DriverSpec,
    token: str,
    keyed: KeyedInput | None = None,
    columns: Any = (),
    max_bad_rows: int = 0,
) -> Any:
    """The :class:`~skil_sdk.spark.executor.ExecutorConfig` of a job (its one place)."""
    from skil_sdk.spark.executor import ExecutorConfig

    return ExecutorConfig.of_job(
        spec.job,
        spec.job_id,
        id_type=keyed.id_type if keyed is not None else "bigint",
        columns=columns,
        keep=keyed.keep if keyed is not None else (),
        keep_types=keyed.keep_arrow if keyed is not None else (),
        server_url=spec.server_url,
        token=token,
        bundle_hash=spec.bundle_hash,
        node_cache=spec.node_cache,
        max_bad_rows=max_bad_rows,
    )


def provider_data(spec: DriverSpec, spark: Any) -> tuple[Any, dict[str, str], str]:
    """What the job's provider returns, the options it was called with, and the
    provider's installed version.

    A provider that only the bundle holds (an unpublished ``--plugin`` project) has its
    options checked here, as ``prepare`` checks the others'.
    """
    from skil_sdk.plugins import get_provider, load_plugins
    from skil_sdk.providers.options import resolve_options

    job = spec.job
    load_plugins()
    info = get_provider(job.provider.lookup)
    options = dict(job.provider_options)
    if not job.provider.resolved:
        options = resolve_options(info.name, info.options, options)
    logs_of = "" if spec.in_session else spec.job_id
    return call_provider(info, spark, options, logs_of), options, info.version


def _committer(job: Any) -> LocalCommitter | None:
    """The per-task commit of a batch-inference job's local (or mounted) output."""
    if job.kind != INFERENCE or not job.output or not is_local(job.output):
        return None
    # absolute: executors have other working directories
    return LocalCommitter(local_path(job.output).resolve())


#: Cores assumed for packing when a cluster's size is not configured (executors register
#: after the driver starts, so Spark's own count is not known yet when tasks are packed).
UNKNOWN_CLUSTER_CORES = 32


def planned_parallelism(sc: Any) -> int:
    """The cores the job's tasks are packed for, from the configuration (never from the
    executors registered so far, which vary from run to run): ``spark.default.parallelism``,
    a local master's threads, executors x cores, ``spark.cores.max``, dynamic allocation's
    maximum, else :data:`UNKNOWN_CLUSTER_CORES`."""
    conf = sc.getConf()

    def number(key: str) -> int | None:
        value = conf.get(key, None)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    configured = number("spark.default.parallelism")
    if configured:
        return configured
    if str(sc.master).startswith("local"):
        return int(sc.defaultParallelism)
    cores = number("spark.executor.cores") or 1
    executors = number("spark.executor.instances")
    if str(conf.get("spark.dynamicAllocation.enabled", "false")).lower() == "true":
        executors = number("spark.dynamicAllocation.maxExecutors") or executors
    if executors:
        return executors * cores
    return number("spark.cores.max") or UNKNOWN_CLUSTER_CORES


def check_remote_output(spark: Any, output: str, overwrite: str, kind: str) -> None:
    """The output rule for paths only Spark's file systems reach (``hdfs://``, ``s3a://``):
    a Parquet directory for batch inference, a metrics file for an evaluation."""
    from skil_sdk.job.prepare import foreign_entries, is_metrics_document
    from skil_sdk.uris import is_local

    if is_local(output):
        return  # checked when the job was prepared
    path = HadoopPath(spark, output)
    if not path.exists():
        return
    if overwrite == OVERWRITE_NO:
        raise ConflictError(
            f"The output path {output} already exists; choose another or pass --overwrite."
        )
    if overwrite == OVERWRITE_FORCE:
        return
    if kind != INFERENCE:
        if not path.is_file() or not is_metrics_document(path.read_text()):
            raise ConflictError(
                f"The output path {output} is not an earlier skil-sdk metrics file; choose "
                "another path, or pass --overwrite=force to replace it."
            )
        return
    if path.is_file():
        raise ConflictError(
            f"The output path {output} is a file, not an earlier skil-sdk output; choose "
            "another path, or pass --overwrite=force to replace it."
        )
    foreign = foreign_entries(path.list_names())
    if foreign:
        raise ConflictError(
            f"The output path {output} holds entries that are not a skil-sdk output (such "
            f"as {foreign[0]!r}); choose another path, or pass --overwrite=force to delete "
            "them."
        )


def run(spec: DriverSpec, token: str, spark: Any = None) -> dict[str, Any]:
    """Run the job ``spec`` describes; return the result record.

    ``spark`` is an existing SparkSession to run in (a notebook's); by default the one
    ``spark-submit`` configured is used. A job that fails leaves nothing at a local output
    path it created, but the committed tasks of a job that can be resumed (and says so).
    """
    from pyspark.sql import SparkSession

    started = time.time()
    job = spec.job
    if spark is None:
        spark = SparkSession.builder.appName(spec.app_name).getOrCreate()
    if job.output:
        check_remote_output(spark, job.output, job.overwrite, job.kind)
    committer = _committer(job)
    if committer is None:
        return _run(spark, spec, token, None, started)
    existed = committer.output.exists() and not spec.resume
    if existed and job.overwrite != OVERWRITE_NO:
        # checked when the job was prepared: an earlier output, or --overwrite=force
        remove_entry(committer.output)
        existed = False
    try:
        return _run(spark, spec, token, committer, started)
    except BaseException as exc:
        kept = abandon_output(committer, not existed, spec.job_id, exc, spec.resume)
        if kept and isinstance(exc, SkilError):
            raise exc.with_note(kept) from exc
        raise


def _run(
    spark: Any, spec: DriverSpec, token: str, committer: LocalCommitter | None, started: float
) -> dict[str, Any]:
    from skil_sdk.spark import executor
    from skil_sdk.spark.progress import ProgressReporter

    job = spec.job
    sc = spark.sparkContext
    data, options, version = provider_data(spec, spark)
    if spec.resume:
        from skil_sdk.job.plan import require_resumable
        from skil_sdk.providers.interface import ExecutorSource

        if not isinstance(data, ExecutorSource):
            raise InvalidValueError(
                f"The {job.provider.name} provider returns Spark data, whose partitions may "
                "differ from run to run, so its jobs cannot be resumed; run the job again."
            )
        require_resumable(data, job.provider.name)
    if committer is not None:
        committer.setup()
        committer.discard_attempts()  # a stopped run's unfinished attempts

    def planner(source: Any, splits: list[Any]) -> Any:
        from skil_sdk.job.plan import plan_tasks, schema_columns
        from skil_sdk.plugins import get_postprocessor
        from skil_sdk.spark.schema import output_columns

        post_fn = get_postprocessor(job.postprocess) if job.postprocess else None
        columns = output_columns(dict(job.model.signature), post_fn, dict(job.postprocess_options))
        schema = executor_config(spec, token, None, columns).arrow_schema(
            arrow_type_of_spark_name(source.id_type())
        )
        return plan_tasks(
            job,
            spec.job_id,
            source,
            splits,
            planned_parallelism(sc),
            committer,
            resume=spec.resume,
            bundle_hash=spec.bundle_hash,
            provider_version=version,
            output_schema=schema_columns(schema),
            record=not spec.in_session,  # resume needs the spec a submitted job records
        )

    keyed = adapt(
        spark,
        data,
        job.provider.name,
        job.model.signature,
        job.batch_size,
        keep=job.keep_columns,
        label_column=job.label_column,
        job_id="" if spec.in_session else spec.job_id,
        planner=planner,
    )
    budget = job.budget()
    rows_in = keyed.rows_total
    if rows_in is None and budget.needs_input_rows and keyed.plan is None:
        rows_in = keyed.frame.count()  # a share of a DataFrame's rows: counted first
    limit = budget.limit(rows_in)
    stats = sc.accumulator({}, executor.ExecutorStatsParam())
    group = f"skil-{spec.job_id}"
    sc.setJobGroup(group, f"skil-sdk {job.kind} {spec.job_id}", True)
    plan = keyed.plan
    hint = spec.job_id if plan is not None and plan.resumable else ""
    kept_bad = 0
    if committer is not None and plan is not None:
        from skil_sdk.job.plan import kept_bad_rows

        kept_bad = kept_bad_rows(plan, committer, limit, hint)
    reporter = ProgressReporter(
        sc,
        group,
        spec.server_url,
        token,
        spec.job_id,
        keyed.rows_total,
        stats,
        budget=(limit, kept_bad),
        tasks_kept=len(plan.kept) if plan is not None else 0,
        resume_hint=hint,
        first_error=committer.first_error if committer is not None else None,
    )
    context = {
        "started": started,
        "identity": spec.identity(options),
        "stats": stats,
        "limit": limit,
        "rows_in": rows_in,
        "committer": committer,
        "resume_hint": hint,
    }
    reporter.start()
    try:
        if job.kind == INFERENCE:
            return write_parquet(spark, spec, token, keyed, context)
        from skil_sdk.evaluation.job import evaluate

        return evaluate(spark, spec, executor_config(spec, token), keyed, context)
    except Exception:
        exceeded = reporter.over_budget()
        if exceeded is not None:  # the job group was cancelled for it
            raise exceeded from None
        raise
    finally:
        reporter.stop()


def write_parquet(
    spark: Any, spec: DriverSpec, token: str, keyed: KeyedInput, context: dict[str, Any]
) -> dict[str, Any]:
    """The batch-inference sink: the model's outputs written as Parquet, then
    ``_skil_job.json``; a failed write leaves nothing at an output path it created
    (but the committed tasks of a job that can be resumed)."""
    from skil_sdk.plugins import get_postprocessor
    from skil_sdk.spark import executor
    from skil_sdk.spark.schema import output_columns

    job = spec.job
    post_fn = get_postprocessor(job.postprocess) if job.postprocess else None
    columns = output_columns(dict(job.model.signature), post_fn, dict(job.postprocess_options))
    cfg = executor_config(spec, token, keyed, columns, context["limit"])
    id_arrow = arrow_type_of_spark_name(keyed.id_type)
    reader, stats = keyed.reader, context["stats"]
    paths = HadoopPath(spark, job.output)
    compute_started = time.time()
    committer = context["committer"]
    created = False  # a local output's removal is run()'s
    if committer is not None:
        counted = write_tasks(keyed, cfg, id_arrow, stats, committer, spec.job_id,
                              context["resume_hint"])
    else:

        def run_batches(batches: Any) -> Any:
            yield from executor.infer_batches(cfg, reader(batches), id_arrow, stats)

        schema = _ddl(keyed.id_type, list(keyed.keep), columns)
        result_frame = keyed.frame.mapInArrow(run_batches, schema)
        created = not paths.exists()
        counted = None
        try:
            mode = "errorifexists" if job.overwrite == OVERWRITE_NO else "overwrite"
            result_frame.write.mode(mode).parquet(job.output)
        except BaseException:
            if created or job.overwrite != OVERWRITE_NO:
                _remove_quietly(paths)
            raise
    try:
        return _record_output(
            spark, spec, keyed, columns, context, compute_started, paths, counted
        )
    except BaseException:
        if committer is None and created:  # nothing half-written at a path it created
            _remove_quietly(paths)
        raise


def _record_output(
    spark: Any,
    spec: DriverSpec,
    keyed: KeyedInput,
    columns: Any,
    context: dict[str, Any],
    compute_started: float,
    paths: HadoopPath,
    counted: Any,
) -> dict[str, Any]:
    """The rows accounted for, ``_skil_job.json`` of the written output, then (local
    outputs) the job's commit and ``_SUCCESS``."""
    from skil_sdk.job.plan import RowAccount, account_rows, check_budget

    job = spec.job
    sc = spark.sparkContext
    stats = context["stats"]
    finished = time.time()
    executors = sorted(
        ({k: v for k, v in e.items() if k != "first_bad"} for e in (stats.value or {}).values()),
        key=lambda r: (r["host"], r["pid"]),
    )
    committer = context["committer"]
    plan = keyed.plan
    if committer is not None:
        if plan is not None:
            account = account_rows(
                committer, range(len(plan.tasks)), plan.task_rows, context["rows_in"]
            )
        else:  # a DataFrame's tasks: the rows each read
            account = account_rows(
                committer, range(len(counted.rows_read)), counted.rows_read,
                sum(counted.rows_read),
            )
        check_budget(account, context["limit"], committer, context["resume_hint"])
    else:
        reported = sum(int(e["rows"]) for e in executors)
        bad = sum(int(e.get("rows_quarantined", 0)) for e in executors)
        account = RowAccount(context["rows_in"], reported, bad)
    tasks = {
        "tasks": len(plan.tasks) if plan is not None else None,
        "tasks_kept": len(plan.kept) if plan is not None else 0,
        "tasks_run": len(plan.todo) if plan is not None else None,
    }
    record = {
        **context["identity"],
        **account.to_dict(),
        **tasks,
        "max_bad_rows": job.max_bad_rows,
        "engine": "spark",
        "postprocess": job.postprocess,
        "batch_size": job.batch_size,
        "rows": account.rows_written,
        "columns": [{"name": "id", "type": keyed.id_type}] + [c.to_dict() for c in columns],
        "spark_version": spark.version,
        "master": sc.master,
        **({"packing": keyed.packing.to_dict()} if keyed.packing is not None else {}),
        "timings": {
            "submitted_at": spec.submitted_at,
            "driver_started_at": context["started"],
            "compute_started_at": compute_started,
            "finished_at": finished,
            "compute_seconds": round(finished - compute_started, 3),
        },
        "executors": executors,
    }
    text = json.dumps(record, indent=2) + "\n"
    if committer is not None:
        committer.finish(text)  # parts published, _skil_job.json, then _SUCCESS
    else:
        paths.write_text(text, "_skil_job.json")
    return {
        "state": "SUCCEEDED",
        "rows": account.rows_written,
        "executors": executors,
        "record": record,
        **account.to_dict(),
        **tasks,
    }


_TASK_SCHEMA = "task int, attempt bigint, rows bigint, quarantined bigint, rows_read bigint"


class _Counted:
    """What the tasks of a per-task-committed job did."""

    def __init__(self, rows_read: list[int | None]) -> None:
        #: Per task: the input rows it read (a DataFrame's tasks; None where not counted).
        self.rows_read = rows_read


def write_tasks(
    keyed: KeyedInput,
    cfg: Any,
    id_arrow: Any,
    stats: Any,
    committer: LocalCommitter,
    job_id: str,
    resume_hint: str = "",
) -> _Counted:
    """The executors write their tasks' Parquet (and quarantined rows) themselves, one
    directory per task attempt, and commit it (:mod:`skil_sdk.commit`): the first attempt
    of a task to finish holds its rows."""
    import pyarrow as pa

    from skil_sdk.inference.quarantine import Quarantine
    from skil_sdk.spark import executor

    root = committer.output
    reader = keyed.reader
    schema = cfg.arrow_schema(id_arrow)
    from_frame = keyed.plan is None
    todo = keyed.plan.todo if keyed.plan is not None else None  # partition p runs todo[p]

    def write_task(batches: Any) -> Any:
        from pyspark import TaskContext

        task = TaskContext.get()
        if task is None:  # mapInArrow functions run in Spark tasks
            raise RuntimeError("write_task runs inside a Spark task")
        # taskAttemptId is unique in the application: a retried stage's attempts (which
        # count attemptNumber from 0 again) never share a directory
        partition, attempt = task.partitionId(), task.taskAttemptId()
        number = todo[partition] if todo is not None else partition
        if not committer.temporary.is_dir():
            raise InvalidValueError(
                f"The output {root} is not on a file system this executor shares with the "
                "driver; write to a shared path, or to hdfs:// or s3a://."
            )
        read = 0

        def counting(items: Any) -> Any:
            nonlocal read
            for item in items:
                read += item.num_rows
                yield item

        source = reader(counting(batches) if from_frame else batches)
        quarantine = Quarantine(cfg.max_bad_rows, id_arrow, resume_hint)
        outputs = executor.infer_batches(cfg, source, id_arrow, stats, quarantine=quarantine)
        rows = committer.write_attempt(number, attempt, schema, outputs, quarantine)
        committer.commit(number, attempt)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([number], pa.int32()),
                pa.array([attempt], pa.int64()),
                pa.array([rows], pa.int64()),
                pa.array([quarantine.count], pa.int64()),
                pa.array([read if from_frame else None], pa.int64()),
            ],
            names=["task", "attempt", "rows", "quarantined", "rows_read"],
        )

    try:
        counted = [] if todo == () else keyed.frame.mapInArrow(write_task, _TASK_SCHEMA).collect()
        done = {int(row["task"]) for row in counted}
        missing = [t for t in (todo if todo is not None else sorted(done)) if t not in done]
        lost = [t for t in sorted(done) if not committer.is_committed(t)]
        if missing or lost:
            raise ConflictError(
                f"Task {(missing or lost)[0]}'s output at {root} is gone, as if another job "
                "wrote there while this one ran; give each job its own output path."
            )
        if not counted and (keyed.plan is None or not keyed.plan.tasks):
            # no tasks ran: one empty part file carries the schema
            import pyarrow.parquet as pq

            pq.write_table(schema.empty_table(), committer.part_path(0))
    except BaseException:
        # stop what still runs (a notebook's Ctrl-C ends collect(), not the Spark job)
        with contextlib.suppress(Exception):
            keyed.frame.sparkSession.sparkContext.cancelJobGroup(f"skil-{job_id}")
        raise
    rows_read: list[int | None] = [None] * len(counted)
    if from_frame:
        rows_read = [None] * (max((int(r["task"]) for r in counted), default=-1) + 1)
        for row in counted:
            rows_read[int(row["task"])] = int(row["rows_read"])
    return _Counted(rows_read)


def _ddl(id_type: str, keep: list[tuple[str, str]], columns: list[Any]) -> str:
    parts = [f"id {id_type}"] + [f"`{n}` {t}" for n, t in keep]
    parts += [f"`{c.name}` {c.spark_type}" for c in columns]
    return ", ".join(parts)


def _remove_quietly(paths: HadoopPath) -> None:
    try:
        paths.delete()
    except Exception:
        return


def main(argv: list[str] | None = None) -> int:
    """Entry point of the driver program: ``driver.py SPEC_JSON``."""
    args = sys.argv[1:] if argv is None else argv
    from skil_sdk.spark.bytecode import precompile_in_background

    precompile_in_background()  # later processes on this node start faster
    # the driver's stderr is the job's log: tracebacks of a provider's failures go there
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    raw = json.loads(Path(args[0]).read_text())
    token = os.environ.pop("SKIL_JOB_TOKEN", "")
    try:
        result = run(DriverSpec.from_dict(raw), token)
    except BaseException as exc:
        code, message = error_message(exc)
        result = {"state": "FAILED", "code": code, "error": message}
    atomic_write_text(Path(raw["result_path"]), json.dumps(result, default=str))
    return 0 if result["state"] == "SUCCEEDED" else 1
