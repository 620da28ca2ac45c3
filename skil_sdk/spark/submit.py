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
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from skil_sdk.errors import JobError, SkilError
from skil_sdk.home import atomic_write_text, ensure_dir, skil_home
from skil_sdk.spark.jobserver import job_server
from skil_sdk.spark.process import (
    log_tail,
    prewarm_bundle,
    run_spark_submit,
    stop_prewarm,
    submit_argv,
    submit_env,
)
from skil_sdk.spark.request import (
    EXECUTION_PROVIDERS,
    InferenceRequest,
    JobResult,
    LogCallback,
    ProgressCallback,
    advertise_host,
    bundle_hash_of,
    check_request,
    job_details,
    job_spec,
)
from skil_sdk.store.jobs import FAILED, KILLED, SUCCEEDED, JobStore

__all__ = ["EXECUTION_PROVIDERS", "InferenceRequest", "JobResult", "run_job", "submit"]


def submit(
    request: InferenceRequest,
    *,
    detach: bool = False,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    spark: Any = None,
) -> JobResult:
    """Run (or, with ``detach``, start) a batch-inference job and return its result.

    With ``spark`` (an existing SparkSession, e.g. a notebook's) the job runs in that
    session instead of a new ``spark-submit``; its executors use the session's Python.
    Raises a :class:`SkilError` for bad input before anything is submitted, and a
    :class:`JobError` naming the cause when the job fails.
    """
    from skil_sdk.store.models import get_model

    started = time.time()
    check_request(request)
    model = get_model(request.model_id)
    if request.batch_size is None:
        request.batch_size = request.spark_args.batch_size
    log = on_log or (lambda _message: None)
    if spark is not None:
        return run_in_session(request, spark, on_log=log, started=started)
    bundle = _ensure_bundle(request, log)
    store = JobStore()
    record = store.create(
        model_id=model.id,
        provider=request.provider,
        output_path=request.output,
        runner_pid=os.getpid(),
        runner_host=socket.gethostname(),
        details=job_details(request, bundle.hash),
    )
    job_dir = ensure_dir(skil_home() / "jobs" / record.id)
    # the request and the spec hold the provider options unredacted: owner-only files
    atomic_write_text(job_dir / "request.json", json.dumps(request.to_dict(), indent=2), mode=0o600)
    if detach:
        child = _spawn_detached(record.id, job_dir)
        store.update(record.id, runner_pid=child)
        return JobResult(
            record.id,
            store.get(record.id).state,
            None,
            request.output,
            time.time() - started,
            bundle.hash,
        )
    return run_job(record.id, request, bundle, on_progress=on_progress, on_log=log, started=started)


def _ensure_bundle(request: InferenceRequest, log: LogCallback) -> Any:
    from skil_sdk.builder.api import ensure_bundle

    return ensure_bundle(
        [Path(p) for p in request.plugins],
        progress=log,
        verify=True,
        gpu=request.execution_provider == "cuda",
    )


def _spawn_detached(job_id: str, job_dir: Path) -> int:
    with (job_dir / "runner.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "skil_sdk.spark.submit", job_id],
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
    request: InferenceRequest,
    bundle: Any,
    *,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    started: float | None = None,
) -> JobResult:
    """Run a recorded job to its end (in this process) and return its result."""
    from skil_sdk.store.jobs import issue_job_token
    from skil_sdk.store.models import get_model

    store = JobStore()
    log = on_log or (lambda _message: None)
    started = started or time.time()
    job_dir = ensure_dir(skil_home() / "jobs" / job_id)
    log_path = ensure_dir(skil_home() / "logs") / f"{job_id}.log"
    store.update(job_id, log_path=str(log_path), runner_pid=os.getpid())
    model = get_model(request.model_id)
    result_path = job_dir / "result.json"
    with contextlib.suppress(FileNotFoundError):
        result_path.unlink()
    try:
        advertise = advertise_host(request)
        with job_server(advertise, log, job_id) as server_url:
            token = issue_job_token(job_id, [model.id])
            spec = job_spec(job_id, request, model, bundle.hash, server_url, result_path)
            spec_path = job_dir / "spec.json"
            atomic_write_text(spec_path, json.dumps(spec, indent=2), mode=0o600)
            driver = job_dir / "driver.py"
            atomic_write_text(
                driver, "from skil_sdk.spark.driver import main\nraise SystemExit(main())\n"
            )
            argv = submit_argv(request, bundle, driver, spec_path)
            env = submit_env(request, bundle, token)
            store.mark_running(job_id)
            warming = prewarm_bundle(bundle, env)
            try:
                returncode = run_spark_submit(argv, env, log_path, job_id, store, on_progress)
            finally:
                stop_prewarm(warming)
    except KeyboardInterrupt:
        store.finish(job_id, KILLED, error="the job was interrupted (Ctrl-C or SIGTERM)")
        raise
    except SkilError as exc:
        store.finish(job_id, FAILED, error=exc.message)
        raise
    except BaseException as exc:
        store.finish(job_id, FAILED, error=f"the runner failed: {exc!r}")
        raise
    try:
        return _conclude(job_id, request, bundle, store, result_path, returncode, log_path, started)
    finally:
        if on_progress is not None:
            on_progress(store.get(job_id))


def run_in_session(
    request: InferenceRequest,
    spark: Any,
    *,
    on_log: LogCallback | None = None,
    started: float | None = None,
) -> JobResult:
    """Run a job inside an existing SparkSession and return its result."""
    from skil_sdk.spark.driver import dispatch, error_message
    from skil_sdk.store.jobs import issue_job_token
    from skil_sdk.store.models import get_model

    started = started or time.time()
    log = on_log or (lambda _message: None)
    model = get_model(request.model_id)
    if request.batch_size is None:
        request.batch_size = request.spark_args.batch_size
    bundle_hash = bundle_hash_of(str(getattr(spark.sparkContext, "pythonExec", "") or ""))
    store = JobStore()
    record = store.create(
        model_id=model.id,
        provider=request.provider,
        output_path=request.output,
        runner_pid=os.getpid(),
        runner_host=socket.gethostname(),
        details={**job_details(request, bundle_hash or ""), "in_session": True},
    )
    job_dir = ensure_dir(skil_home() / "jobs" / record.id)
    request.spark_args.master = spark.sparkContext.master
    try:
        with job_server(advertise_host(request), log, record.id) as server_url:
            token = issue_job_token(record.id, [model.id])
            spec = job_spec(
                record.id, request, model, bundle_hash, server_url, job_dir / "result.json"
            )
            store.mark_running(record.id)
            result = dispatch(spec, token, spark=spark)
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
        details={**store.get(record.id).details, "metrics": result.get("metrics")},
    )
    store.finish(record.id, SUCCEEDED)
    return JobResult(
        record.id,
        SUCCEEDED,
        rows,
        request.output,
        time.time() - started,
        bundle_hash,
        metrics=result.get("metrics"),
    )


def _conclude(
    job_id: str,
    request: InferenceRequest,
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
            details={**store.get(job_id).details, "metrics": result.get("metrics")},
            **({"tasks_done": tasks} if tasks else {}),
        )
        store.finish(job_id, SUCCEEDED)
        return JobResult(
            job_id,
            SUCCEEDED,
            rows,
            request.output,
            seconds,
            bundle.hash,
            str(log_path),
            metrics=result.get("metrics"),
        )
    if result:
        message = result.get("error") or "the job failed"
    else:
        last = next((ln for ln in reversed(log_tail(log_path).splitlines()) if ln.strip()), "")
        message = (
            f"spark-submit exited with code {returncode} before the job started (last log "
            f"line: {last.strip()[:300]!r}); see `skil-sdk jobs logs {job_id}`."
        )
    store.finish(job_id, FAILED, error=message)
    raise JobError(message)


def main(argv: list[str] | None = None) -> int:
    """Run a job recorded by a detached ``submit``: ``python -m skil_sdk.spark.submit ID``."""
    from skil_sdk.builder.api import ensure_bundle

    args = sys.argv[1:] if argv is None else argv
    job_id = args[0]

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    job_dir = skil_home() / "jobs" / job_id
    request = InferenceRequest.from_dict(json.loads((job_dir / "request.json").read_text()))
    store = JobStore()
    try:
        bundle = ensure_bundle(
            [Path(p) for p in request.plugins],
            verify=True,
            gpu=request.execution_provider == "cuda",
        )
        run_job(job_id, request, bundle)
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
