"""The job runner: from an inference request to a finished Spark job.

It ensures the bundle (a cache hit normally), records the job, starts the built-in
server for the job's lifetime (unless ``SKIL_SERVER_URL`` names a running one),
issues a job-scoped token, and runs ``spark-submit`` with the bundle as the Python of
the driver and the executors. The token reaches the driver through the environment
and the executors inside the task closures; never through argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from skil_sdk.errors import JobError, SkilError
from skil_sdk.home import skil_home
from skil_sdk.job.prepare import EXECUTION_PROVIDERS, prepare
from skil_sdk.job.request import InferenceRequest
from skil_sdk.job.spec import INFERENCE, JobSpec
from skil_sdk.spark.jobserver import job_server
from skil_sdk.spark.jvmarchive import driver_archive
from skil_sdk.spark.process import (
    log_tail,
    prewarm_bundle,
    run_spark_submit,
    stop_prewarm,
    submit_argv,
    submit_env,
)
from skil_sdk.spark.request import (
    JobResult,
    LogCallback,
    ProgressCallback,
    advertise_host,
    bundle_hash_of,
    driver_spec,
    job_details,
)
from skil_sdk.spark.sparkhome import find_spark_home
from skil_sdk.storage import atomic_write_text, ensure_dir
from skil_sdk.store.jobs import FAILED, KILLED, SUCCEEDED, JobStore, recording_failure
from skil_sdk.uris import is_local, local_path

__all__ = ["EXECUTION_PROVIDERS", "InferenceRequest", "JobResult", "run_job", "submit"]

#: The job's spec, as prepared, beside its record (owner-only: it holds option values).
JOB_SPEC_FILE = "job.json"


def submit(
    request: InferenceRequest | JobSpec,
    *,
    detach: bool = False,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    spark: Any = None,
) -> JobResult:
    """Run (or, with ``detach``, start) a job and return its result.

    A request is prepared first (:func:`skil_sdk.job.prepare.prepare`): everything it
    refuses is refused before the bundle is looked up, before a JVM starts and before a
    job record exists. With ``spark`` (an existing SparkSession, e.g. a notebook's) the
    job runs in that session instead of a new ``spark-submit``; its executors use the
    session's Python. A failed job raises a :class:`JobError` naming the cause.
    """
    started = time.time()
    log = on_log or (lambda _message: None)
    in_session = spark is not None
    if isinstance(request, JobSpec):
        job = request
    else:
        job = prepare(request, in_session=in_session)
        _warn_of_ignored_settings(request, job)
    if spark is not None:
        return run_in_session(job, spark, on_log=log, started=started)
    local = job.engine == "local"
    bundle = None if local else _ensure_bundle(job, log)
    store = JobStore()
    record = _create_record(store, job, job_details(job, bundle.hash if bundle else None))
    job_dir = ensure_dir(skil_home() / "jobs" / record.id)
    # the spec holds the provider options unredacted: an owner-only file
    atomic_write_text(job_dir / JOB_SPEC_FILE, json.dumps(job.to_dict(), indent=2), mode=0o600)
    if detach:
        child = spawn_detached(record.id)
        store.update(record.id, runner_pid=child)
        return JobResult(
            record.id,
            store.get(record.id).state,
            None,
            job.output,
            time.time() - started,
            bundle.hash if bundle else None,
            kind=job.kind,
            engine=job.engine,
        )
    if local:
        from skil_sdk.local.engine import run_local_job

        return run_local_job(record.id, job, on_progress=on_progress, started=started)
    return run_job(record.id, job, bundle, on_progress=on_progress, on_log=log, started=started)


def _warn_of_ignored_settings(request: InferenceRequest, job: JobSpec) -> None:
    """A Python warning for Spark settings a local-engine job ignores (the CLI prints its
    own line)."""
    import warnings

    from skil_sdk.job.prepare import local_engine_warning

    message = local_engine_warning(request, job)
    if message is not None:
        warnings.warn(message, UserWarning, stacklevel=3)


def _create_record(store: JobStore, job: JobSpec, details: dict[str, Any]) -> Any:
    """The job's record (SUBMITTED), run by this process."""
    return store.create(
        kind=job.kind,
        model_id=job.model.id,
        provider=job.provider.name,
        output_path=job.output,
        runner_pid=os.getpid(),
        runner_host=socket.gethostname(),
        details=details,
    )


def _ensure_bundle(job: JobSpec, log: LogCallback) -> Any:
    from skil_sdk.builder.api import ensure_bundle

    return ensure_bundle(
        [Path(p) for p in job.plugins],
        progress=log,
        verify=True,
        gpu=job.execution_provider == "cuda",
    )


def spawn_detached(job_id: str, *, resume: bool = False) -> int:
    """Run job ``job_id`` (recorded, its spec in ``SKIL_HOME/jobs/ID``) in a process of its
    own, its output in the job's ``runner.log``; return the process id."""
    job_dir = skil_home() / "jobs" / job_id
    argv = [sys.executable, "-m", "skil_sdk.spark.submit", job_id]
    argv += ["--resume"] if resume else []
    with (job_dir / "runner.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # reap it when it ends, so a long-lived caller (a notebook) keeps no zombie
    threading.Thread(target=process.wait, name=f"skil-reap-{job_id}", daemon=True).start()
    return process.pid


def run_job(
    job_id: str,
    job: JobSpec,
    bundle: Any,
    *,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    started: float | None = None,
    resume: bool = False,
) -> JobResult:
    """Run a recorded job to its end (in this process) and return its result.

    A job that fails or is interrupted leaves nothing at a local output path it
    created (nor a half-written replacement of one it was told to overwrite), but the
    committed tasks of a job that can be resumed; ``resume`` runs only the others.
    """
    from skil_sdk.store.jobs import issue_job_token

    store = JobStore()
    log = on_log or (lambda _message: None)
    started = started or time.time()
    job_dir = ensure_dir(skil_home() / "jobs" / job_id)
    log_path = ensure_dir(skil_home() / "logs") / f"{job_id}.log"
    store.update(job_id, log_path=str(log_path), runner_pid=os.getpid())
    result_path = job_dir / "result.json"
    with contextlib.suppress(FileNotFoundError):
        result_path.unlink()
    output_existed = _output_exists(job) and not resume

    def cleanup(failure: BaseException | None = None) -> str | None:
        return discard_incomplete_output(job, output_existed, job_id, failure, resume)

    with recording_failure(store, job_id, cleanup, "the runner"):
        advertise = advertise_host(job)
        from skil_sdk.session.client import COLD, WARM, session_server_for, warm_session_for

        warm = warm_session_for(job, bundle, log)
        token = issue_job_token(job_id, [job.model.id])
        store.mark_running(job_id)
        returncode = None
        if warm is not None:
            shared = session_server_for(warm, advertise)
            with job_server(advertise, log, job_id, shared=shared) as server_url:
                spec = driver_spec(job_id, job, bundle.hash, server_url, result_path, resume=resume)
                returncode = _run_warm(warm, spec, token, log_path, store, on_progress, log)
        session = WARM if returncode is not None else COLD
        store.update(job_id, details={**store.get(job_id).details, "session": session})
        if returncode is None:
            with job_server(advertise, log, job_id) as server_url:
                spec = driver_spec(job_id, job, bundle.hash, server_url, result_path, resume=resume)
                returncode = _run_cold(job, bundle, spec, token, log_path, store, on_progress)
    try:
        result = _conclude(job_id, job, bundle, store, result_path, returncode, log_path, started)
        result.session = session
        result.jvm_archive = store.get(job_id).details.get("jvm_archive")
        return result
    except JobError:
        discard_incomplete_output(job, output_existed, job_id, None, resume)
        raise
    finally:
        if on_progress is not None:
            on_progress(store.get(job_id))


def _run_warm(
    warm: Any,
    spec: Any,
    token: str,
    log_path: Path,
    store: JobStore,
    on_progress: ProgressCallback | None,
    log: LogCallback,
) -> int | None:
    """Run the job in the warm session; its driver's result goes to the spec's
    ``result_path``. None when the session did not take it (the job then runs cold)."""
    from skil_sdk.session.client import run_warm

    def on_wait() -> None:
        if on_progress is not None:
            with contextlib.suppress(SkilError):
                on_progress(store.get(spec.job_id))

    with log_path.open("a") as job_log:
        job_log.write(f"Job {spec.job_id} runs in the Spark session {warm.app_id}.\n")
    result = run_warm(warm, spec, token, log_path, on_wait)
    if result is None:
        log("The Spark session did not take the job; it runs cold.")
        return None
    log(f"The job ran in the warm Spark session {warm.app_id}.")
    atomic_write_text(Path(spec.result_path), json.dumps(result, default=str))
    return 0


def _run_cold(
    job: JobSpec,
    bundle: Any,
    spec: Any,
    token: str,
    log_path: Path,
    store: JobStore,
    on_progress: ProgressCallback | None,
) -> int:
    """Run the job with a spark-submit of its own; return spark-submit's exit code."""
    job_dir = skil_home() / "jobs" / spec.job_id
    spec_path = job_dir / "spec.json"
    atomic_write_text(spec_path, json.dumps(spec.to_dict(), indent=2), mode=0o600)
    driver = job_dir / "driver.py"
    atomic_write_text(driver, "from skil_sdk.spark.driver import main\nraise SystemExit(main())\n")
    env = submit_env(job, bundle, token)
    archive, java_options = _jvm_archive(job, env)
    argv = submit_argv(job, bundle, driver, spec_path, java_options)
    # The job's own temp dir (the Python driver's and local workers' temp files), removed
    # when the job ends.
    env["TMPDIR"] = str(ensure_dir(job_dir / "tmp"))
    warming = prewarm_bundle(bundle, env)
    returncode = None
    try:
        returncode = run_spark_submit(
            argv, env, log_path, spec.job_id, store, on_progress,
            watch=archive.watch if archive else None,
        )  # fmt: skip
        return returncode
    finally:
        stop_prewarm(warming)
        shutil.rmtree(job_dir / "tmp", ignore_errors=True)
        if archive is not None:
            _after_jvm_archive(archive, returncode == 0, spec.job_id, store)


def _jvm_archive(job: JobSpec, env: dict[str, str]) -> tuple[Any, list[str]]:
    """The driver JVM's class-data archive and its options; (None, []) where it does not
    apply or its node cache cannot be used (the archive never fails a job)."""
    try:
        archive = driver_archive(job.spark(), find_spark_home(job.spark_home), env)
        return (archive, archive.java_options()) if archive is not None else (None, [])
    except (OSError, ValueError, SkilError):
        return None, []


def _after_jvm_archive(archive: Any, succeeded: bool, job_id: str, store: JobStore) -> None:
    """Keep or drop the job's class list, start the dump, record what the driver did;
    nothing of it fails the job."""
    state = archive.state()
    with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
        archive.after_job(succeeded)
    with contextlib.suppress(SkilError):
        details = store.get(job_id).details
        store.update(job_id, details={**details, "jvm_archive": state})


def _output_exists(job: JobSpec) -> bool:
    return bool(job.output) and is_local(job.output) and local_path(job.output).exists()


def discard_incomplete_output(
    job: JobSpec,
    existed: bool,
    job_id: str,
    failure: BaseException | None = None,
    resumed: bool = False,
) -> str | None:
    """What a failed job leaves at its local Parquet output without ``_SUCCESS``: the
    committed tasks of a job that can be resumed (then the sentence saying so), else
    nothing at a path it created (at one that existed, nothing temporary)."""
    from skil_sdk.commit import LocalCommitter, abandon_output

    if job.kind != INFERENCE or not _output_exists(job):
        return None
    path = local_path(job.output)
    if not path.is_dir() or (path / "_SUCCESS").exists():
        return None
    return abandon_output(LocalCommitter(path), not existed, job_id, failure, resumed)


def run_in_session(
    job: JobSpec,
    spark: Any,
    *,
    on_log: LogCallback | None = None,
    started: float | None = None,
) -> JobResult:
    """Run a prepared job inside an existing SparkSession and return its result."""
    from skil_sdk.spark.driver import error_message, run
    from skil_sdk.store.jobs import issue_job_token

    started = started or time.time()
    log = on_log or (lambda _message: None)
    bundle_hash = bundle_hash_of(str(getattr(spark.sparkContext, "pythonExec", "") or ""))
    master = spark.sparkContext.master
    store = JobStore()
    details = {**job_details(job, bundle_hash or ""), "in_session": True, "master": master}
    record = _create_record(store, job, details)
    job_dir = ensure_dir(skil_home() / "jobs" / record.id)
    try:
        with job_server(advertise_host(job, master), log, record.id) as server_url:
            token = issue_job_token(record.id, [job.model.id])
            spec = driver_spec(
                record.id, job, bundle_hash, server_url, job_dir / "result.json", in_session=True
            )
            store.mark_running(record.id)
            result = run(spec, token, spark=spark)
    except KeyboardInterrupt:
        store.finish(record.id, KILLED, error="the job was interrupted")
        raise
    except BaseException as exc:
        _code, message = error_message(exc)
        store.finish(record.id, FAILED, error=message)
        if isinstance(exc, SkilError):
            raise
        raise JobError(message) from exc
    rows = int(result["rows"])
    store.update(
        record.id,
        rows_done=rows,
        rows_total=rows,
        executors=result.get("executors", []),
        details={
            **store.get(record.id).details,
            **summary_of(result),
            "metrics": result.get("metrics"),
        },
    )
    store.finish(record.id, SUCCEEDED)
    return JobResult(
        record.id,
        SUCCEEDED,
        rows,
        job.output,
        time.time() - started,
        bundle_hash,
        metrics=result.get("metrics"),
        kind=job.kind,
        **result_counts(result),
    )


#: What a driver's result says of the job's rows and tasks, kept in the job's record.
_SUMMARY_KEYS = ("rows_in", "rows_written", "rows_quarantined", "tasks", "tasks_kept", "tasks_run")


def summary_of(result: dict[str, Any]) -> dict[str, Any]:
    """The rows and tasks a driver's result reports (for the job record's details)."""
    return {k: result[k] for k in _SUMMARY_KEYS if result.get(k) is not None}


def result_counts(result: dict[str, Any]) -> dict[str, Any]:
    """The :class:`JobResult` fields of a driver's result."""
    summary = summary_of(result)
    return {
        k: summary[k]
        for k in ("rows_in", "rows_written", "rows_quarantined", "tasks", "tasks_kept")
        if k in summary
    }


def _conclude(
    job_id: str,
    job: JobSpec,
    bundle: Any,
    store: JobStore,
    result_path: Path,
    returncode: int,
    log_path: Path,
    started: float,
) -> JobResult:
    result: dict[str, Any] = {}
    if result_path.exists():
        result = json.loads(result_path.read_text())
    seconds = time.time() - started
    if result.get("state") == SUCCEEDED:
        rows = int(result["rows"])
        tasks = store.get(job_id).tasks_total
        store.update(
            job_id,
            rows_done=rows,
            rows_total=rows,
            executors=result.get("executors", []),
            details={
                **store.get(job_id).details,
                **summary_of(result),
                "metrics": result.get("metrics"),
            },
            **({"tasks_done": tasks} if tasks else {}),
        )
        store.finish(job_id, SUCCEEDED)
        return JobResult(
            job_id,
            SUCCEEDED,
            rows,
            job.output,
            seconds,
            bundle.hash,
            str(log_path),
            metrics=result.get("metrics"),
            kind=job.kind,
            **result_counts(result),
        )
    if result.get("state") == KILLED:
        message = f"the job was cancelled in the Spark session: {result.get('error')}"
        store.finish(job_id, KILLED, error=message)
        raise JobError(f"Job {job_id} was cancelled in the Spark session ({result.get('error')}).")
    if result:
        message = result.get("error") or "the job failed"
    else:
        message = _early_failure(job, log_path, returncode, job_id)
    store.finish(job_id, FAILED, error=message)
    raise JobError(message)


_MASTER_UNREACHABLE = ("All masters are unresponsive", "Failed to connect to master")


def _early_failure(job: JobSpec, log_path: Path, returncode: int, job_id: str) -> str:
    """The message for a spark-submit that ended before the driver wrote a result."""
    tail = log_tail(log_path)
    master = str(job.spark_args.get("master"))
    if any(marker in tail for marker in _MASTER_UNREACHABLE):
        return (
            f"The Spark master {master} did not answer; check the URL and that the master "
            f"is running (the log is {log_path}, or `skil-sdk jobs logs {job_id}`)."
        )
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "")
    return (
        f"spark-submit exited with code {returncode} before the job started (last log "
        f"line: {last.strip()[:300]!r}); see `skil-sdk jobs logs {job_id}`."
    )


def main(argv: list[str] | None = None) -> int:
    """Run a job recorded by a detached ``submit``: ``python -m skil_sdk.spark.submit ID``."""
    from skil_sdk.builder.api import ensure_bundle

    args = sys.argv[1:] if argv is None else argv
    job_id = args[0]
    resume = "--resume" in args[1:]

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    job_dir = skil_home() / "jobs" / job_id
    job = JobSpec.from_dict(json.loads((job_dir / JOB_SPEC_FILE).read_text()))
    store = JobStore()
    try:
        if job.engine == "local":
            from skil_sdk.local.engine import run_local_job

            run_local_job(job_id, job, resume=resume)
            return 0
        bundle = ensure_bundle(
            [Path(p) for p in job.plugins],
            verify=True,
            gpu=job.execution_provider == "cuda",
        )
        run_job(job_id, job, bundle, resume=resume)
    except SkilError:
        return 1
    except KeyboardInterrupt:
        store.finish(job_id, KILLED, error="the job was stopped (SIGTERM)")
        return 1
    except BaseException as exc:
        store.finish(job_id, FAILED, error=f"the runner failed: {exc!r}")
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
