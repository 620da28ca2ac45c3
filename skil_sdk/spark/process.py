"""Running ``spark-submit``: its argv and environment, the child process, and its log."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from skil_sdk.errors import SkilError
from skil_sdk.spark.request import InferenceRequest, ProgressCallback, node_cache_dir
from skil_sdk.spark.sparkhome import spark_submit
from skil_sdk.store.jobs import JobStore

_LOG_TAIL_LINES = 30


def submit_argv(request: InferenceRequest, bundle: Any, driver: Path, spec_path: Path) -> list[str]:
    args = request.spark_args
    bundle_path = str(Path(bundle.bundle).resolve())
    node_cache = node_cache_dir()
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
    # SparkArgs.p_args follow the spec path: they reach the driver program as its argv.
    return [*argv, str(driver), str(spec_path), *args.p_args]


def submit_env(request: InferenceRequest, bundle: Any, token: str) -> dict[str, str]:
    env = dict(os.environ)
    node_cache = node_cache_dir()
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


def run_spark_submit(
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


def log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])
