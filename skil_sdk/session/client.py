"""Starting, stopping and using the long-lived Spark session (``skil-sdk session``).

A session is one Spark application whose driver (:mod:`skil_sdk.session.server`) runs
inside the bundle and stays up, running the jobs sent to it. A Spark job of ``skil-sdk
infer``, ``skil-sdk evaluate`` or :class:`~skil_sdk.SkilContext` runs there ("warm")
when a session with the job's bundle and Spark settings is up; otherwise it runs as a
one-shot ``spark-submit`` ("cold"), and the log says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from skil_sdk.errors import ConflictError, JobError, SparkError
from skil_sdk.home import file_lock
from skil_sdk.processes import pid_alive
from skil_sdk.session.channel import Channel, ChannelClosed, request
from skil_sdk.session.state import (
    DEFAULT_KEEP_WARM_S,
    RUNNING,
    STARTING,
    STOPPED,
    SessionState,
    first_difference,
    log_path,
    read_state,
    session_dir,
    settings_of,
    update_state,
    write_state,
)
from skil_sdk.storage import atomic_write_text, ensure_dir

#: ``SKIL_SESSION=off`` makes every job run cold, even while a session is up.
SESSION_ENV = "SKIL_SESSION"

#: How long ``session start`` waits for the session to accept jobs.
START_TIMEOUT_S = 300.0

WARM = "warm"
COLD = "cold"

Log = Callable[[str], None]


def _admin_token() -> str:
    from skil_sdk.server.token import load_or_create_admin_token

    return load_or_create_admin_token()


@dataclasses.dataclass(frozen=True)
class SessionRequest:
    """What ``skil-sdk session start`` was asked for."""

    spark_args: Any
    spark_home: str | None = None
    profile: str | None = None
    idle_timeout_s: float = 1800.0
    keep_warm_s: float = DEFAULT_KEEP_WARM_S
    plugins: Sequence[str] = ()
    advertise_host: str | None = None


def resolved_settings(request: SessionRequest) -> tuple[Any, str]:
    """The session's SparkArgs (its profile applied, checked as a job's are) and its Spark
    install."""
    from skil_sdk.job.prepare import check_spark_args, probe_master
    from skil_sdk.job.request import InferenceRequest
    from skil_sdk.profiles import apply_profile
    from skil_sdk.spark.sparkhome import find_spark_home

    as_job = apply_profile(
        InferenceRequest(
            model_id="",
            provider="",
            output="",
            spark_args=request.spark_args,
            spark_home=request.spark_home,
            profile=request.profile,
        ),
        request.profile,
    )
    check_spark_args(as_job)
    spark_home = str(find_spark_home(as_job.spark_home))
    probe_master(as_job.spark_args.master)
    return as_job.spark_args, spark_home


def start_session(request: SessionRequest, on_log: Log | None = None) -> SessionState:
    """Start the session and return once it accepts jobs (its record says ``running``);
    a session already up with the same bundle and settings is returned as it is."""
    from skil_sdk.builder.api import ensure_bundle
    from skil_sdk.spark.jvmarchive import driver_archive, with_java_options
    from skil_sdk.spark.process import bundle_env, bundle_submit_flags
    from skil_sdk.spark.sparkhome import find_spark_home, spark_submit

    log = on_log or (lambda _message: None)
    args, spark_home = resolved_settings(request)
    bundle = ensure_bundle([Path(p) for p in request.plugins], progress=log, verify=True)
    settings = settings_of(args, spark_home)
    with file_lock("session"):
        current = read_state()
        if current.is_up:
            if current.bundle_hash == bundle.hash and current.settings == settings:
                log(f"A session with this bundle and these settings is already {current.state}.")
                return _wait_until_running(current, log)
            raise ConflictError(
                f"A Spark session is already {current.state} (master {current.master}, bundle "
                f"{(current.bundle_hash or '')[:12]}); stop it with `skil-sdk session stop` "
                "first."
            )
        folder = session_dir()
        ensure_dir(folder / "tmp")
        driver = folder / "session_main.py"
        atomic_write_text(
            driver, "from skil_sdk.session.server import main\nraise SystemExit(main())\n"
        )
        config = folder / "config.json"
        atomic_write_text(
            config,
            json.dumps(
                {"idle_timeout_s": request.idle_timeout_s, "keep_warm_s": request.keep_warm_s}
            ),
        )
        env = bundle_env(spark_home)
        archive = driver_archive(args, find_spark_home(spark_home), env)
        mapped = with_java_options(args, archive.mapping_options() if archive else [])
        argv = [str(spark_submit(spark_home)), *bundle_submit_flags(mapped, bundle)]
        if not args.name:
            argv += ["--name", "skil-sdk session"]
        if "spark.scheduler.mode" not in args.conf:
            argv += ["--conf", "spark.scheduler.mode=FAIR"]  # jobs at once share it fairly
        argv += [str(driver), str(config)]
        env["TMPDIR"] = str(folder / "tmp")
        now = time.time()
        write_state(
            SessionState(
                state=STARTING,
                bundle_hash=bundle.hash,
                bundle=str(bundle.bundle),
                master=args.master,
                settings=settings,
                spark_home=spark_home,
                profile=request.profile,
                idle_timeout_s=request.idle_timeout_s,
                keep_warm_s=request.keep_warm_s,
                started_at=now,
                last_activity=now,
            )
        )
        log(f"Starting a Spark session on {args.master} (bundle {bundle.hash[:12]}) ...")
        process = _spawn(argv, env)
        update_state(submit_pid=process.pid)
        _start_server(request, args.master)
        state = read_state()
    try:
        return _wait_until_running(state, log)
    except BaseException:
        _terminate(state)
        raise


def _spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start one of the session's processes in the background (a session of its own, its
    output into the session's log), reaped when it ends, so that a long-lived caller (a
    notebook, a test) keeps no zombie."""
    with log_path().open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    threading.Thread(target=process.wait, name="skil-session-reap", daemon=True).start()
    return process


def _start_server(request: SessionRequest, master: str) -> None:
    """Start the session's server (:mod:`skil_sdk.session.jobserver`) in the background;
    jobs start their own while it is not up (it records its URL once it answers)."""
    import sys

    from skil_sdk.spark.request import default_advertise_host

    advertise = default_advertise_host(request.advertise_host, master)
    bind = "127.0.0.1" if advertise in ("127.0.0.1", "localhost") else "0.0.0.0"
    server = _spawn([sys.executable, "-m", "skil_sdk.session.jobserver", bind, advertise])
    update_state(server_pid=server.pid)


def _wait_until_running(state: SessionState, log: Log) -> SessionState:
    deadline = time.time() + START_TIMEOUT_S
    while True:
        current = read_state()
        if current.state == RUNNING and current.port and _server_settled(current):
            log(
                f"The Spark session accepts jobs (application {current.app_id}, Spark UI "
                f"{current.spark_ui})."
            )
            return current
        if not current.is_up:
            from skil_sdk.spark.process import log_tail

            tail = [ln for ln in log_tail(log_path()).splitlines() if ln.strip()]
            last = tail[-1].strip()[:300] if tail else ""
            raise SparkError(
                f"The Spark session stopped before it accepted jobs ({current.error or last!r}); "
                "see `skil-sdk session logs`."
            )
        if time.time() > deadline:
            raise SparkError(
                f"The Spark session did not accept jobs within {START_TIMEOUT_S:.0f} s; see "
                "`skil-sdk session logs`, then `skil-sdk session stop --force`."
            )
        time.sleep(0.2)


def _server_settled(state: SessionState) -> bool:
    """Whether the session's server is up, or will not be (its process has ended)."""
    return bool(state.server_url) or not (state.server_pid and pid_alive(state.server_pid))


def _terminate(state: SessionState) -> None:
    """Stop the session's processes with SIGTERM (its driver then stops as ``--force``)."""
    for pid in (state.submit_pid, state.pid, state.server_pid):
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)


def stop_session(force: bool = False, timeout: float | None = None) -> SessionState:
    """Stop the session and return once its processes have ended: running jobs finish
    first, or are cancelled with ``force``. A session that is not up is left as it is."""
    state = read_state()
    if not state.is_up:
        return state
    asked = False
    if state.port:
        with contextlib.suppress(OSError, ChannelClosed, TimeoutError):
            request(state.port, {"op": "stop", "force": force, "auth": _admin_token()})
            asked = True
    if not asked:
        _terminate(state)  # still starting, or not answering
    deadline = None if timeout is None else time.time() + timeout
    while _processes_alive(state):
        if deadline is not None and time.time() > deadline:
            jobs = ", ".join(read_state().jobs) or "none"
            raise ConflictError(
                f"The Spark session did not stop within {timeout:.0f} s (running jobs: {jobs}); "
                "wait for them, or cancel them with `skil-sdk session stop --force`."
            )
        time.sleep(0.2)
    final = read_state()
    if final.error is not None or final.state != STOPPED:
        # stopped on request (a session still starting ends by SIGTERM): nothing to report
        final = update_state(state=STOPPED, jobs=[], error=None)
    return final


def _processes_alive(state: SessionState) -> bool:
    pids = (state.submit_pid, state.pid, state.server_pid)
    return any(pid_alive(pid) for pid in pids if pid)


def session_status() -> dict[str, Any]:
    """The session's record (``skil-sdk session status --json``), with its uptime."""
    state = read_state()
    data = state.to_dict()
    data["uptime_s"] = (
        round(time.time() - state.started_at, 1) if state.is_up and state.started_at else None
    )
    return data


def warm_session_for(job: Any, bundle: Any, on_log: Log) -> SessionState | None:
    """The running session a Spark job can run in, or None (the log says why not, when a
    session is up or has died)."""
    if os.environ.get(SESSION_ENV, "").lower() in ("off", "0", "no", "cold"):
        return None
    state = read_state()
    if state.state == STOPPED:
        if state.error and state.submit_pid:
            on_log(
                f"The last Spark session ended unexpectedly ({state.error}); this job runs cold."
            )
            update_state(
                state=STOPPED, error=None, submit_pid=None, pid=None, server_pid=None, jobs=[]
            )
        return None
    if state.state != RUNNING or not state.port:
        on_log(f"The Spark session is {state.state}; this job runs cold.")
        return None
    if state.bundle_hash != bundle.hash:
        on_log(
            f"The Spark session runs bundle {(state.bundle_hash or '')[:12]} and this job needs "
            f"{bundle.hash[:12]} (other plugins), so it runs cold; restart the session "
            "(`skil-sdk session stop`, then `skil-sdk session start`) to run warm again."
        )
        return None
    from skil_sdk.spark.sparkhome import find_spark_home

    difference = first_difference(
        settings_of(job.spark(), str(find_spark_home(job.spark_home))), state.settings
    )
    if difference is not None:
        on_log(f"The Spark session has other settings ({difference}), so this job runs cold.")
        return None
    return state


def session_server_for(state: SessionState, advertise_host: str) -> str | None:
    """The session's server URL when a job advertising ``advertise_host`` to its executors
    can use it (it is up and advertised under that host); None: the job starts its own."""
    from urllib.parse import urlsplit

    url = state.server_url
    if not url or not state.server_pid or not pid_alive(state.server_pid):
        return None
    return url if urlsplit(url).hostname == advertise_host else None


def run_warm(
    state: SessionState,
    spec: Any,
    token: str,
    job_log: Path,
    on_wait: Callable[[], None],
) -> dict[str, Any] | None:
    """Run the job ``spec`` in the session and return its driver's result; None when the
    session did not take it (the caller runs it cold). While it runs, ``on_wait`` is
    called every half second; Ctrl-C or SIGTERM cancel the job in the session (waiting
    for it to clean up) and raise ``KeyboardInterrupt``."""
    from skil_sdk.spark.process import sigterm_as_interrupt

    assert state.port is not None
    try:
        channel = Channel.connect(state.port)
    except OSError:
        return None
    try:
        channel.send(
            {
                "op": "run",
                "auth": _admin_token(),
                "spec": spec.to_dict(),
                "token": token,
                "log_path": str(job_log),
            }
        )
        answer = channel.receive(timeout=30)
    except ChannelClosed:
        channel.close()
        return None
    if answer is None or not answer.get("accepted"):
        channel.close()
        return None
    try:
        with sigterm_as_interrupt():
            try:
                return _result_of(channel, on_wait, spec.job_id)
            except KeyboardInterrupt:
                _cancel(channel)
                raise
    finally:
        channel.close()


def _result_of(channel: Channel, on_wait: Callable[[], None], job_id: str) -> dict[str, Any]:
    while True:
        try:
            message = channel.receive(timeout=0.5)
        except ChannelClosed:
            raise JobError(
                f"The Spark session stopped while job {job_id} ran (see `skil-sdk session "
                "logs`); run the job again: it runs cold when no session is up."
            ) from None
        if message is not None and "result" in message:
            result = message["result"]
            return result if isinstance(result, dict) else {"state": "FAILED"}
        on_wait()


def _cancel(channel: Channel) -> None:
    """Ask the session to cancel the job and wait (a minute at most) until it has
    cleaned up after it."""
    with contextlib.suppress(ChannelClosed):
        channel.send({"op": "cancel", "why": "its client was interrupted (Ctrl-C or SIGTERM)"})
        deadline = time.time() + 60
        while time.time() < deadline:
            message = channel.receive(timeout=1)
            if message is not None and "result" in message:
                return
