"""The local engine: a batch-inference job run by worker processes on this machine.

No JVM, no pyspark, no bundle and no server: the provider (one that reads on the
executors) lists its splits here, they are packed into tasks
(:mod:`skil_sdk.job.packing`), ``N`` workers (``local[N]``; ``local[*]``: one per core)
each load the stored model once (its sha256 verified once, here) and run the same
executor code a Spark job runs, and every task is committed once
(:mod:`skil_sdk.commit`). A worker that dies gives its task back to the queue (up
to ``F`` attempts for ``local[N,F]``, else :data:`DEFAULT_MAX_ATTEMPTS`); a failure of the
data or the model fails the job (within ``--max-bad-rows`` its rows are quarantined
instead). Ctrl-C, SIGTERM and ``skil-sdk jobs kill`` stop the workers; an output the job
created is removed, but the committed tasks of a job that can be resumed
(``skil-sdk jobs resume``, which runs only the others).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.commit import LocalCommitter, abandon_output
from skil_sdk.errors import ConflictError, InvalidValueError, JobError, SkilError
from skil_sdk.home import skil_home
from skil_sdk.job.spec import INFERENCE, OVERWRITE_NO, JobSpec
from skil_sdk.local.worker import WorkerSetup, worker_main
from skil_sdk.storage import ensure_dir, remove_entry
from skil_sdk.store.jobs import ROW_KEYS, SUCCEEDED, JobStore, recording_failure
from skil_sdk.uris import is_local, local_path

#: Attempts of a task whose worker died, when the master does not say (``local[N,F]``).
DEFAULT_MAX_ATTEMPTS = 4
_PROGRESS_EVERY_S = 0.5


def run_local_job(
    job_id: str,
    job: JobSpec,
    *,
    on_progress: Callable[[Any], None] | None = None,
    started: float | None = None,
    resume: bool = False,
) -> Any:
    """Run a recorded job on the local engine; return its :class:`JobResult`.

    With ``resume``, the job's committed tasks are kept and only the others run
    (``skil-sdk jobs resume``).
    """
    from skil_sdk.spark.request import JobResult

    store = JobStore()
    started = started or time.time()
    inference = job.kind == INFERENCE
    # an evaluation writes its metrics file once, atomically, at the end
    output = local_path(job.output) if inference else None
    # a resumed job's output (its kept tasks) is the one its first run created
    existed = output is None or (output.exists() and not resume)
    log_path = ensure_dir(skil_home() / "logs") / f"{job_id}.log"
    store.update(job_id, log_path=str(log_path))
    previous = signal.getsignal(signal.SIGTERM)
    in_main = _is_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    store.update(job_id, runner_pid=os.getpid())
    try:
        with recording_failure(
            store,
            job_id,
            lambda exc: _abandon(output, existed, job_id, exc, resume),
            "the engine",
        ):
            if output is not None and existed and job.overwrite != OVERWRITE_NO:
                # checked when the job was prepared: an earlier output, or --overwrite=force
                remove_entry(output)
                existed = False
            store.mark_running(job_id)
            rows, executors, metrics, summary = _run(
                job_id, job, output, log_path, store, on_progress, resume
            )
            record = store.get(job_id)
            store.update(
                job_id,
                rows_done=rows,
                rows_total=rows,
                executors=executors,
                **({"tasks_done": record.tasks_total} if record.tasks_total else {}),
                details={
                    **record.details,
                    **summary,
                    **({"metrics": metrics} if metrics else {}),
                },
            )
            store.finish(job_id, SUCCEEDED)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if on_progress is not None:
            with contextlib.suppress(SkilError):
                on_progress(store.get(job_id))
    return JobResult(
        job_id,
        SUCCEEDED,
        rows,
        job.output,
        time.time() - started,
        metrics=metrics,
        kind=job.kind,
        engine="local",
        **{k: summary[k] for k in (*ROW_KEYS, "tasks", "tasks_kept") if k in summary},
    )


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _abandon(
    output: Path | None, existed: bool, job_id: str, failure: BaseException, resumed: bool
) -> str | None:
    """What a failed job leaves: its committed tasks when it can be resumed (then the
    sentence that says so), else nothing at an output it created."""
    if output is None:
        return None
    return abandon_output(LocalCommitter(output), not existed, job_id, failure, resumed)


def _run(
    job_id: str,
    job: JobSpec,
    output: Path | None,
    log_path: Path,
    store: JobStore,
    on_progress: Callable[[Any], None] | None,
    resume: bool = False,
) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    """Run the job's tasks; return its rows, its workers' records, (for an evaluation) its
    metrics, and what the job record keeps of its rows and tasks."""
    from skil_sdk.job.plan import (
        account_rows,
        check_budget,
        kept_bad_rows,
        plan_tasks,
        require_resumable,
        schema_columns,
    )
    from skil_sdk.plugins import get_postprocessor, get_provider, load_plugins
    from skil_sdk.providers.arrays import arrow_type_of_spark_name
    from skil_sdk.providers.interface import ExecutorSource
    from skil_sdk.spark.adapter import call_provider, require_labels, source_package_dir
    from skil_sdk.spark.executor import ExecutorConfig
    from skil_sdk.spark.masters import local_threads
    from skil_sdk.spark.schema import output_columns
    from skil_sdk.store.models import verify_model

    compute_started = time.time()
    preloading = _preload_for_workers()
    model = verify_model(job.model.id)  # once per job, here; the workers trust it
    load_plugins()
    info = get_provider(job.provider.lookup)
    options = dict(job.provider_options)
    source = call_provider(info, None, options, job_id)
    if not isinstance(source, ExecutorSource):
        raise InvalidValueError(
            f"The {info.name} provider did not return an ExecutorSource, so it cannot run on "
            "the local engine; use --engine spark."
        )
    if job.label_column is not None:
        require_labels(source, info.name, job.label_column)
    if resume:
        require_resumable(source, info.name)
    post_fn = get_postprocessor(job.postprocess) if job.postprocess else None
    columns = output_columns(dict(job.model.signature), post_fn, dict(job.postprocess_options))
    committer = None
    if output is not None:
        committer = LocalCommitter(output)
        committer.setup()
        committer.discard_attempts()  # a stopped run's unfinished attempts
    splits = list(source.splits())
    workers, max_failures = local_threads(str(job.spark_args["master"]))
    id_arrow = arrow_type_of_spark_name(source.id_type())
    config = ExecutorConfig.of_job(job, job_id, id_type=source.id_type(), columns=columns)
    plan = plan_tasks(
        job, job_id, source, splits, workers, committer, resume=resume,
        provider_version=info.version,
        output_schema=schema_columns(config.arrow_schema(id_arrow)),
    )
    limit = job.budget().limit(plan.rows_in)
    config = dataclasses.replace(config, max_bad_rows=limit)
    hint = job_id if plan.resumable else ""  # who a budget's error tells to resume
    kept_bad = kept_bad_rows(plan, committer, limit, hint) if committer else 0
    tasks = {t: [splits[i] for i in plan.tasks[t]] for t in plan.todo}
    setup = WorkerSetup(
        job_id=job_id,
        provider=info.name,
        source=source,
        model_path=model.path,
        config=config,
        id_arrow=id_arrow,
        schema=config.arrow_schema(id_arrow),
        committer=committer,
        log_path=log_path,
        package_dir=source_package_dir(source),
        settings=job.settings() if job.evaluation is not None else None,
        resume_hint=hint,
    )
    store.report_progress(job_id, 0, len(plan.kept), len(plan.tasks), plan.rows_in)
    preloading.join()  # never fork while another thread imports
    outcome = _Outcome(quarantined=kept_bad)
    if tasks:
        pool = _Pool(
            setup,
            min(workers, len(tasks)),
            max_failures or DEFAULT_MAX_ATTEMPTS,
            spawn=_reads_remote_files(job),
        )
        try:
            outcome = pool.run(tasks, len(plan.tasks), job_id, store, on_progress, outcome)
        finally:
            pool.close()
    elif committer is not None and not plan.tasks:  # no rows: an empty part carries the schema
        import pyarrow.parquet as pq

        pq.write_table(setup.schema.empty_table(), committer.part_path(0))
    executors = [
        {
            "host": socket.gethostname(),
            "pid": pid,
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "bundle_hash": None,
            "rows": count,
            "engine": "local",
            "peak_rss_mb": round(outcome.peak_rss_kb.get(pid, 0) / 1024, 1),
        }
        for pid, count in sorted(outcome.per_worker.items())
    ]
    identity = {
        "job_id": job_id,
        "kind": job.kind,
        "engine": "local",
        "model_id": job.model.id,
        "model_sha256": job.model.sha256,
        "provider": job.provider.name,
        "provider_options": _redacted(job),
        "bundle_hash": None,
        "profile": job.profile,
    }
    tasks_summary = {
        "tasks": len(plan.tasks),
        "tasks_kept": len(plan.kept),
        "tasks_run": len(plan.todo),
    }
    if output is None or committer is None:
        rows, executors, metrics = _evaluated(
            job, setup.settings, outcome, identity, compute_started, executors
        )
        return rows, executors, metrics, tasks_summary
    account = account_rows(committer, range(len(plan.tasks)), plan.task_rows, plan.rows_in)
    check_budget(account, limit, committer, hint)
    finished = time.time()
    summary = {**account.to_dict(), **tasks_summary, "max_bad_rows": job.max_bad_rows}
    record = {
        **identity,
        **summary,
        "postprocess": job.postprocess,
        "batch_size": job.batch_size,
        "rows": account.rows_written,
        "columns": [{"name": "id", "type": source.id_type()}] + [c.to_dict() for c in columns],
        "master": job.spark_args["master"],
        "packing": plan.packing.to_dict(),
        "timings": {
            "compute_started_at": compute_started,
            "finished_at": finished,
            "compute_seconds": round(finished - compute_started, 3),
        },
        "executors": executors,
    }
    committer.finish(json.dumps(record, indent=2) + "\n")
    return account.rows_written, executors, None, summary


def _evaluated(
    job: JobSpec,
    settings: Any,
    outcome: _Outcome,
    identity: dict[str, Any],
    started: float,
    executors: list[dict[str, Any]],
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """An evaluation's end: the tasks' metric states merged, the metrics file written."""
    from skil_sdk.evaluation.job import merge_states, metrics_of, write_metrics

    rows = sum(outcome.task_rows.values())
    states = (outcome.states[task] for task in sorted(outcome.states))
    metrics = metrics_of(settings, rows, merge_states(states))
    if job.output:
        document = {
            **metrics,
            "job": {
                **identity,
                "evaluation": settings.to_dict(),
                "master": job.spark_args["master"],
                "started_at": started,
                "finished_at": time.time(),
            },
        }
        write_metrics(None, job.output, document)
    return rows, executors, metrics


#: What every worker imports before its first row, imported here before the fork. pyarrow's
#: first ``Array.to_numpy`` imports pandas when it is installed: about 0.5 s per process.
_WORKER_MODULES = (
    "pandas",
    "onnxruntime",
    "pyarrow.parquet",
    "skil_sdk.inference.runner",
    "skil_sdk.spark.executor",
)


def _preload_for_workers() -> threading.Thread:
    """Import the workers' modules in a thread while the model is checked and the
    provider lists its splits (file reads), so that each forked worker starts with them."""

    def load() -> None:
        for name in _WORKER_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="skil-preload", daemon=True)
    thread.start()
    return thread


def _reads_remote_files(job: JobSpec) -> bool:
    """Whether the provider reads from a remote file system (``s3://``): its client (the
    AWS SDK's threads and connections) is not safe across a fork, so workers are spawned
    and get the source pickled, as Spark's executors do."""
    return not all(is_local(value) for value in job.provider_options.values())


def _redacted(job: JobSpec) -> dict[str, str]:
    from skil_sdk.job.spec import redact_options

    return redact_options(job.provider_options)


class _Worker:
    """One worker process, its task queue, its result pipe, and the task it runs."""

    def __init__(self, context: Any, setup: WorkerSetup) -> None:
        self.tasks: Any = context.Queue()
        self.results, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=worker_main,
            args=(setup, self.tasks, sender),
            name="skil-local-worker",
            daemon=True,
        )
        self.process.start()
        sender.close()  # the worker holds the sending end; a dead worker reads as EOF
        self.task: tuple[int, int] | None = None

    def give(self, task: int, attempt: int, splits: list[Any]) -> None:
        """Hand the worker a task attempt (the splits it reads)."""
        self.task = (task, attempt)
        self.tasks.put((task, attempt, splits))


@dataclass
class _Outcome:
    """What the tasks did: rows per worker pid and per task, and (for an evaluation) each
    task's metric state, counted once per task whatever attempts ran."""

    per_worker: dict[int, int] = field(default_factory=dict)
    #: Each worker's peak resident memory (KiB), as it last reported it.
    peak_rss_kb: dict[int, int] = field(default_factory=dict)
    task_rows: dict[int, int] = field(default_factory=dict)
    states: dict[int, bytes] = field(default_factory=dict)
    #: Rows quarantined by the committed tasks (an earlier run's kept ones included).
    quarantined: int = 0
    #: ``(id, stage, error)`` of the first quarantined row seen.
    first_bad: tuple[Any, str, str] | None = None


class _Pool:
    """Worker processes, each handed one task at a time by the parent, so the task of a
    worker that dies is known and queued again (up to ``max_attempts`` attempts)."""

    def __init__(
        self, setup: WorkerSetup, size: int, max_attempts: int, spawn: bool = False
    ) -> None:
        forking = not spawn and "fork" in multiprocessing.get_all_start_methods()
        method = "fork" if forking else "spawn"
        self._context = multiprocessing.get_context(method)
        self._setup = setup
        self._size = size
        self._max_attempts = max_attempts
        self._workers: list[_Worker] = []

    def run(
        self,
        tasks: dict[int, list[Any]],
        total: int,
        job_id: str,
        store: JobStore,
        on_progress: Callable[[Any], None] | None,
        outcome: _Outcome,
    ) -> _Outcome:
        """Run every task (task number: its splits; of ``total`` in the job) to a commit
        (an evaluation: to its metric state), within the job's budget of bad rows."""
        from multiprocessing.connection import wait

        from skil_sdk.inference.quarantine import over_budget
        from skil_sdk.job.plan import not_resumable

        committer = self._setup.committer
        limit = self._setup.config.max_bad_rows
        waiting: list[tuple[int, int]] = [(task, 0) for task in sorted(tasks)]
        pending = set(tasks)
        running_rows: dict[int, int] = {}
        done_rows = outcome.task_rows
        self._workers = [_Worker(self._context, self._setup) for _ in range(self._size)]
        last_report = 0.0
        while pending:
            for worker in self._workers:
                if worker.task is None and waiting and worker.process.is_alive():
                    task, attempt = waiting.pop(0)
                    running_rows[task] = 0
                    worker.give(task, attempt, tasks[task])
            ready = wait([w.results for w in self._workers], timeout=0.2)
            for worker in [w for w in self._workers if w.results in ready]:
                try:
                    message = worker.results.recv()
                except (EOFError, OSError):
                    continue  # it died: _replace_dead requeues its task
                kind, task = message[0], message[1]
                if kind == "rows":
                    running_rows[task] = running_rows.get(task, 0) + message[2]
                elif kind == "done":
                    attempt, rows, pid, state, peak_kb, quarantined, first_bad = message[2:9]
                    worker.task = None
                    outcome.peak_rss_kb[pid] = max(peak_kb, outcome.peak_rss_kb.get(pid, 0))
                    committed = committer is None or committer.commit(task, attempt)
                    if not committed and task in pending:
                        raise not_resumable(ConflictError(
                            f"Task {task} of job {job_id} was committed by another run while "
                            "this one ran; run one job per output path at a time."
                        ))
                    if committed and task in pending:
                        pending.discard(task)
                        done_rows[task] = rows
                        outcome.per_worker[pid] = outcome.per_worker.get(pid, 0) + rows
                        if state is not None:
                            outcome.states[task] = state
                        outcome.quarantined += quarantined
                        outcome.first_bad = outcome.first_bad or first_bad
                        if outcome.quarantined > limit:
                            first_id, stage, error = (
                                outcome.first_bad or committer.first_error()
                            )
                            raise over_budget(
                                outcome.quarantined, limit, first_id, stage, error,
                                self._setup.resume_hint,
                            )
                else:
                    raise _error(message[2], message[3])
            waiting += self._replace_dead(pending)
            now = time.monotonic()
            if now - last_report >= _PROGRESS_EVERY_S or not pending:
                last_report = now
                rows_now = sum(done_rows.values()) + sum(
                    v for t, v in running_rows.items() if t in pending
                )
                store.report_progress(job_id, rows_now, total - len(pending))
                if on_progress is not None:
                    with contextlib.suppress(SkilError):
                        on_progress(store.get(job_id))
        return outcome

    def _replace_dead(self, pending: set[int]) -> list[tuple[int, int]]:
        """Replace workers that died; return their tasks' next attempts."""
        again: list[tuple[int, int]] = []
        for worker in list(self._workers):
            if worker.process.is_alive():
                continue
            self._workers.remove(worker)
            if worker.task is not None and worker.task[0] in pending:
                task, attempt = worker.task
                if attempt + 1 >= self._max_attempts:
                    raise JobError(
                        f"Task {task} failed {attempt + 1} times (its worker died, last with "
                        f"exit code {worker.process.exitcode}); see the job's log, or allow "
                        "more attempts with a local[N,F] master."
                    )
                again.append((task, attempt + 1))
            worker.results.close()
            self._workers.append(_Worker(self._context, self._setup))
        return again

    def close(self) -> None:
        """Stop the workers (a clean stop first, then terminate what is left)."""
        for worker in self._workers:
            with contextlib.suppress(Exception):
                worker.tasks.put(None)
        deadline = time.monotonic() + 5
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
            worker.results.close()
            worker.tasks.close()
            worker.tasks.cancel_join_thread()


def _error(code: str, message: str) -> SkilError:
    """A worker's failure as the SkilError subclass of its code."""
    from skil_sdk import errors

    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, SkilError) and cls.code == code:
            return cls(message)
    return JobError(message)
