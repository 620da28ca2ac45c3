"""The job runner: from an inference request to a finished Spark job.

It ensures the bundle (a cache hit normally), records the job, starts the built-in
server for the job's lifetime (unless ``SKIL_SERVER_URL`` names a running one),
issues a job-scoped token, and runs ``spark-submit`` with the bundle as the Python of
the driver and the executors. The token reaches the driver through the environment
and the executors inside the task closures; never through argv.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.errors import ConflictError, InvalidValueError, JobError, SkilError
from skil_sdk.home import atomic_write_text, ensure_dir, skil_home
from skil_sdk.spark.args import SparkArgs
from skil_sdk.spark.sparkhome import spark_submit
from skil_sdk.store.jobs import FAILED, KILLED, SUCCEEDED, JobRecord, JobStore

EXECUTION_PROVIDERS = ("cpu", "cuda")
_LOG_TAIL_LINES = 30


@dataclass
class InferenceRequest:
    """One batch-inference job, as ``skil-sdk infer`` and ``SkilContext`` describe it."""

    model_id: str
    provider: str
    output: str
    spark_args: SparkArgs = field(default_factory=SparkArgs)
    batch_size: int | None = None
    provider_options: dict[str, str] = field(default_factory=dict)
    overwrite: bool = False
    keep_columns: list[str] = field(default_factory=list)
    postprocess: str | None = None
    postprocess_options: dict[str, str] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    advertise_host: str | None = None
    execution_provider: str = "cpu"
    spark_home: str | None = None
    profile: str | None = None
    #: ``inference`` (write Parquet to ``output``) or ``evaluate`` (metrics; ``output``
    #: is then an optional JSON file), with the evaluation's settings in ``evaluation``.
    kind: str = "inference"
    evaluation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the detached runner reads it back with :meth:`from_dict`)."""
        data = dict(self.__dict__)
        data["spark_args"] = self.spark_args.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceRequest:
        """The request :meth:`to_dict` wrote."""
        values = dict(data)
        values["spark_args"] = SparkArgs.from_dict(values["spark_args"])
        return cls(**values)


@dataclass
class JobResult:
    """What a job produced (``skil-sdk infer --json``)."""

    job_id: str
    state: str
    rows: int | None
    output: str
    seconds: float
    bundle_hash: str | None = None
    log_path: str | None = None
    error: str | None = None
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


ProgressCallback = Callable[[JobRecord], None]
LogCallback = Callable[[str], None]


def _is_local_path(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path[len("file://") :] if path.startswith("file://") else path).expanduser()


def _check_request(request: InferenceRequest) -> None:
    request.spark_args.validate()
    if request.batch_size is not None and request.batch_size < 1:
        raise InvalidValueError(
            f"batch_size must be at least 1, not {request.batch_size}; e.g. 1024."
        )
    if request.execution_provider not in EXECUTION_PROVIDERS:
        raise InvalidValueError(
            f"execution provider must be one of {', '.join(EXECUTION_PROVIDERS)}, not "
            f"{request.execution_provider!r}."
        )
    if (
        request.output
        and _is_local_path(request.output)
        and _local(request.output).exists()
        and not request.overwrite
    ):
        raise ConflictError(
            f"The output path {request.output} already exists; choose another or pass --overwrite."
        )
    for project in request.plugins:
        if not (Path(project) / "pyproject.toml").exists():
            raise InvalidValueError(
                f"--plugin {project} is not a provider project (no pyproject.toml); pass the "
                "directory `skil-sdk new provider` created."
            )


def _advertise_host(request: InferenceRequest) -> str:
    host = request.advertise_host or os.environ.get("SKIL_ADVERTISE_HOST")
    if not host:
        master = request.spark_args.master
        if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
            host = "127.0.0.1"
        else:
            host = socket.getfqdn()
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise InvalidValueError(
            f"The advertise host {host!r} does not resolve ({exc.strerror}); pass "
            "--advertise-host with an address the executors can reach."
        ) from exc
    return host


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
    _check_request(request)
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
        details=_details(request, bundle.hash),
    )
    job_dir = ensure_dir(skil_home() / "jobs" / record.id)
    atomic_write_text(job_dir / "request.json", json.dumps(request.to_dict(), indent=2))
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


def _details(request: InferenceRequest, bundle_hash: str) -> dict[str, Any]:
    from skil_sdk.spark.driver import redact_options

    return {
        "spark_args": request.spark_args.to_dict(),
        "provider_options": redact_options(request.provider_options),
        "batch_size": request.batch_size,
        "bundle_hash": bundle_hash,
        "keep_columns": request.keep_columns,
        "postprocess": request.postprocess,
        "plugins": request.plugins,
        "profile": request.profile,
        "execution_provider": request.execution_provider,
        "spark_home": _spark_home_or_none(request.spark_home),
    }


def _spark_home_or_none(explicit: str | None) -> str | None:
    from skil_sdk.spark.sparkhome import find_spark_home

    try:
        return str(find_spark_home(explicit))
    except SkilError:
        return None


def _ensure_bundle(request: InferenceRequest, log: LogCallback) -> Any:
    from skil_sdk.builder.api import ensure_bundle

    return ensure_bundle([Path(p) for p in request.plugins], progress=log, verify=True)


def _spawn_detached(job_id: str, job_dir: Path) -> int:
    log = (job_dir / "runner.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "skil_sdk.spark.submit", job_id],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process.pid


@contextlib.contextmanager
def _job_server(advertise_host: str, on_log: LogCallback) -> Iterator[str]:
    external = os.environ.get("SKIL_SERVER_URL")
    if external:
        yield external.rstrip("/")
        return
    from skil_sdk.server.embedded import EmbeddedServer

    bind = "127.0.0.1" if advertise_host in ("127.0.0.1", "localhost") else "0.0.0.0"
    server = EmbeddedServer(host=bind)
    url = server.start()
    port = url.rsplit(":", 1)[1].rstrip("/")
    on_log(f"Serving models and progress for this job at http://{advertise_host}:{port}")
    try:
        yield f"http://{advertise_host}:{port}"
    finally:
        server.stop()


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
        advertise = _advertise_host(request)
        with _job_server(advertise, log) as server_url:
            token = issue_job_token(job_id, [model.id])
            spec = _spec(job_id, request, model, bundle.hash, server_url, result_path)
            spec_path = job_dir / "spec.json"
            atomic_write_text(spec_path, json.dumps(spec, indent=2))
            driver = job_dir / "driver.py"
            atomic_write_text(
                driver, "from skil_sdk.spark.driver import main\nraise SystemExit(main())\n"
            )
            argv = _submit_argv(request, bundle, driver, spec_path)
            env = _submit_env(request, bundle, token)
            store.mark_running(job_id)
            returncode = _run_spark_submit(argv, env, log_path, job_id, store, on_progress)
    except KeyboardInterrupt:
        store.finish(job_id, KILLED, error="the job was interrupted (Ctrl-C or SIGTERM)")
        raise
    except SkilError as exc:
        store.finish(job_id, FAILED, error=exc.message)
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
    bundle_hash = _bundle_hash_of(str(getattr(spark.sparkContext, "pythonExec", "") or ""))
    store = JobStore()
    record = store.create(
        model_id=model.id,
        provider=request.provider,
        output_path=request.output,
        runner_pid=os.getpid(),
        runner_host=socket.gethostname(),
        details=_details(request, bundle_hash or ""),
    )
    job_dir = ensure_dir(skil_home() / "jobs" / record.id)
    request.spark_args.master = spark.sparkContext.master
    try:
        with _job_server(_advertise_host(request), log) as server_url:
            token = issue_job_token(record.id, [model.id])
            spec = _spec(
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


def _bundle_hash_of(python: str) -> str | None:
    name = Path(python).name
    if name.startswith("skil-bundle-") and name.endswith(".pex"):
        return name[len("skil-bundle-") : -len(".pex")]
    return None


def _spec(
    job_id: str,
    request: InferenceRequest,
    model: Any,
    bundle_hash: str | None,
    server_url: str,
    result_path: Path,
) -> dict[str, Any]:
    from skil_sdk.spark.executor import default_node_cache

    return {
        "job_id": job_id,
        "model": {"id": model.id, "sha256": model.sha256, "signature": model.signature},
        "provider": request.provider,
        "provider_options": request.provider_options,
        "output": request.output,
        "overwrite": request.overwrite,
        "batch_size": request.batch_size,
        "keep_columns": request.keep_columns,
        "postprocess": request.postprocess,
        "postprocess_options": request.postprocess_options,
        "server_url": server_url,
        "bundle_hash": bundle_hash,
        "node_cache": os.environ.get("SKIL_NODE_CACHE") or str(default_node_cache()),
        "execution_provider": request.execution_provider,
        "result_path": str(result_path),
        "app_name": request.spark_args.name or f"skil-sdk {job_id}",
        "profile": request.profile,
        "submitted_at": time.time(),
        "kind": request.kind,
        "evaluation": request.evaluation,
    }


def _node_cache() -> str:
    from skil_sdk.spark.executor import default_node_cache

    return str(default_node_cache())


def _submit_argv(
    request: InferenceRequest, bundle: Any, driver: Path, spec_path: Path
) -> list[str]:
    args = request.spark_args
    bundle_path = str(Path(bundle.bundle).resolve())
    node_cache = _node_cache()
    argv = [str(spark_submit(request.spark_home)), *args.to_submit_argv()]
    if not args.name:
        argv += ["--name", f"skil-sdk {driver.parent.name}"]
    if args.master_kind == "local":
        executor_python = bundle_path
    else:
        argv += ["--files", bundle_path]
        executor_python = f"./{Path(bundle_path).name}"
    confs = {
        "spark.pyspark.python": executor_python,
        "spark.pyspark.driver.python": bundle_path,
        "spark.executorEnv.PEX_ROOT": f"{node_cache}/pex",
        "spark.executorEnv.SKIL_NODE_CACHE": node_cache,
        "spark.python.worker.reuse": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    for key, value in confs.items():
        if key not in args.conf:
            argv += ["--conf", f"{key}={value}"]
    return [*argv, str(driver), str(spec_path)]


def _submit_env(request: InferenceRequest, bundle: Any, token: str) -> dict[str, str]:
    env = dict(os.environ)
    node_cache = _node_cache()
    env["SKIL_JOB_TOKEN"] = token
    env["SKIL_NODE_CACHE"] = node_cache
    env["PEX_ROOT"] = f"{node_cache}/pex"
    if request.spark_home:
        # bin/spark-submit prefers an inherited SPARK_HOME: point it at the chosen install.
        env["SPARK_HOME"] = str(Path(request.spark_home).expanduser())
    env.pop("PYSPARK_PYTHON", None)
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    return env


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the runner dies (Linux), so nothing is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _run_spark_submit(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    job_id: str,
    store: JobStore,
    on_progress: ProgressCallback | None,
) -> int:
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(_signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt

        in_main_thread = _is_main_thread()
        if in_main_thread:
            signal.signal(signal.SIGTERM, on_sigterm)
        try:
            while process.poll() is None:
                if on_progress is not None:
                    with contextlib.suppress(SkilError):
                        on_progress(store.get(job_id))
                time.sleep(0.5)
        except KeyboardInterrupt:
            _stop(process)
            raise
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
        return int(process.returncode)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])


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
        last = next((ln for ln in reversed(_log_tail(log_path).splitlines()) if ln.strip()), "")
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
        bundle = ensure_bundle([Path(p) for p in request.plugins], verify=True)
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
