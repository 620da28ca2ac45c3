"""Running ``spark-submit``: its argv and environment, the child process, and its log."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from skil_sdk.builder.bundle import run_env
from skil_sdk.errors import SkilError
from skil_sdk.job.spec import JobSpec
from skil_sdk.spark.request import ProgressCallback, node_cache_dir
from skil_sdk.spark.sparkhome import spark_submit
from skil_sdk.store.jobs import JobStore

_LOG_TAIL_LINES = 30


def submit_argv(
    job: JobSpec,
    bundle: Any,
    driver: Path,
    spec_path: Path,
    java_options: list[str] | None = None,
) -> list[str]:
    """The spark-submit command line: SparkArgs' flags, the bundle as the driver's and the
    executors' Python (shipped with ``--files`` on cluster masters), the driver program;
    ``java_options`` are added to the driver's JVM options."""
    from skil_sdk.spark.jvmarchive import with_java_options

    args = with_java_options(job.spark(), java_options or [])
    argv = [str(spark_submit(job.spark_home)), *bundle_submit_flags(args, bundle)]
    if not args.name:
        argv += ["--name", f"skil-sdk {driver.parent.name}"]
    # SparkArgs.p_args follow the spec path: they reach the driver program as its argv.
    return [*argv, str(driver), str(spec_path), *args.p_args]


def bundle_submit_flags(args: Any, bundle: Any, driver_in_bundle: bool = True) -> list[str]:
    """spark-submit flags of ``args`` (a SparkArgs) whose executors run ``bundle``: it is
    shipped with ``--files`` on cluster masters, executors share this machine's node cache
    on local masters; ``driver_in_bundle`` makes it the driver's Python too."""
    bundle_path = str(Path(bundle.bundle).resolve())
    local = args.master_kind == "local"
    # The bundle travels with the user's own --files (spark-submit keeps one --files flag).
    shipped = args if local else dataclasses.replace(args, files=[*args.files, bundle_path])
    argv = list(shipped.to_submit_argv())
    executor_python = bundle_path if local else f"./{Path(bundle_path).name}"
    confs = {
        "spark.pyspark.python": executor_python,
        "spark.python.worker.reuse": "true",
        "spark.ui.showConsoleProgress": "false",
        **{f"spark.executorEnv.{key}": value for key, value in run_env().items()},
    }
    if driver_in_bundle:
        confs["spark.pyspark.driver.python"] = bundle_path
    explicit = os.environ.get("SKIL_NODE_CACHE")
    if local or explicit:
        # Executors on this machine share its node cache; remote executors get one only
        # when SKIL_NODE_CACHE names it (otherwise each node uses its own default).
        node_cache = explicit or node_cache_dir()
        confs["spark.executorEnv.SKIL_NODE_CACHE"] = node_cache
        confs["spark.executorEnv.PEX_ROOT"] = f"{node_cache}/pex"
    for key, value in confs.items():
        if key not in args.conf:
            argv += ["--conf", f"{key}={value}"]
    return argv


def submit_env(job: JobSpec, bundle: Any, token: str) -> dict[str, str]:
    """spark-submit's environment for a job: :func:`bundle_env` and the job token (never
    argv)."""
    env = bundle_env(job.spark_home)
    env["SKIL_JOB_TOKEN"] = token
    return env


def bundle_env(spark_home: str | None) -> dict[str, str]:
    """The environment of a spark-submit whose driver runs the bundle: the node cache,
    SPARK_HOME, the bundle's :func:`~skil_sdk.builder.bundle.run_env` and no
    ``PYTHONDONTWRITEBYTECODE`` (imports write ``.pyc`` files into ``PEX_ROOT``)."""
    env = {**os.environ, **run_env()}
    node_cache = node_cache_dir()
    env["SKIL_NODE_CACHE"] = node_cache
    env["PEX_ROOT"] = f"{node_cache}/pex"
    if spark_home:
        # bin/spark-submit prefers an inherited SPARK_HOME: point it at the chosen install.
        env["SPARK_HOME"] = str(Path(spark_home).expanduser())
    env.pop("PYSPARK_PYTHON", None)
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    env.pop("SKIL_JOB_TOKEN", None)
    # The bundle's processes cache their bytecode beside its unpacked wheels in PEX_ROOT,
    # so that the next process of this machine imports without compiling.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def prewarm_bundle(bundle: Any, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Start the bundle once (``-c pass``) while spark-submit's JVM starts.

    A bundle's first run on a machine unpacks its wheels and makes its venv in
    ``PEX_ROOT`` (seconds); the driver program starts from the same ``PEX_ROOT`` only
    once the JVM is up, so doing it meanwhile takes it off the job's path. pex's own
    locks keep one layout when both run at once; a warm bundle exits in milliseconds.
    """
    quiet_env = {k: v for k, v in env.items() if k != "SKIL_JOB_TOKEN"}
    try:
        return subprocess.Popen(
            [str(Path(bundle.bundle).resolve()), "-c", "pass"],
            env=quiet_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if _PRCTL is not None else None,
        )
    except OSError:
        return None


def stop_prewarm(process: subprocess.Popen[bytes] | None) -> None:
    """Reap the prewarm process; one still laying out the bundle is stopped (pex resumes)."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)


def _load_prctl() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


#: Resolved once here: a child between fork and exec must not load libraries.
_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child: receive SIGTERM when its parent dies (Linux), so nothing is orphaned."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def run_spark_submit(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    job_id: str,
    store: JobStore,
    on_progress: ProgressCallback | None,
    watch: Callable[[int], None] | None = None,
) -> int:
    """Run spark-submit (its output into ``log_path``) until it exits; return its exit code.

    Progress is read from the jobs store every half second (and ``watch`` is called with
    the child's pid); SIGTERM or Ctrl-C stop the child and raise ``KeyboardInterrupt``."""
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if _PRCTL is not None else None,
        )
        try:
            with sigterm_as_interrupt():
                while process.poll() is None:
                    if watch is not None:
                        watch(process.pid)
                    if on_progress is not None:
                        with contextlib.suppress(SkilError):
                            on_progress(store.get(job_id))
                    time.sleep(0.5)
        except KeyboardInterrupt:
            _stop(process)
            raise
        return int(process.returncode)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``skil-sdk jobs kill``) raises ``KeyboardInterrupt``, as
    Ctrl-C does (in the main thread only: other threads cannot take signals)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log_path: Path) -> str:
    """The last lines of a job log (empty when it cannot be read)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])
