"""The long-lived Spark session's driver program; it runs inside the bundle.

``skil-sdk session start`` runs it with ``spark-submit`` (the bundle as the driver's and
the executors' Python). It creates one SparkSession, accepts jobs on a loopback port
from holders of the ``SKIL_HOME`` admin token, and runs each job in a thread of its own
(:func:`skil_sdk.spark.driver.run` in this session, one fair-scheduler pool per job),
so that executors, Python workers and their onnxruntime sessions stay warm from job
to job. A job whose client disconnects before its result is sent is cancelled. The
session stops on ``skil-sdk session stop`` or after its idle timeout.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from skil_sdk.session.channel import Channel, ChannelClosed
from skil_sdk.session.state import RUNNING, STOPPED, STOPPING, update_state

_LOG = logging.getLogger("skil_sdk.session")

#: How often the accept loop wakes to check the idle timeout and a stop request.
_TICK_S = 0.5

#: How long a task of the keep-warm job takes: long enough that the tasks of one such
#: job overlap, so that each of them takes an idle Python worker of its own.
_KEEP_WARM_TASK_S = 0.2


def keep_warm_task(batches: Any) -> Any:
    """A task of the keep-warm job: it only occupies a Python worker for a moment (Spark
    stops a worker that has had no task for a minute; the worker keeps its onnxruntime
    sessions only while it lives). It runs through ``mapInArrow``, as the jobs' tasks do:
    Spark keeps the workers of SQL and of RDD functions apart."""
    import pyarrow as pa

    time.sleep(_KEEP_WARM_TASK_S)
    rows = sum(batch.num_rows for batch in batches)
    yield pa.RecordBatch.from_pydict({"rows": pa.array([rows], pa.int64())})


class SessionJob:
    """One job running in the session: its thread, its result, its cancellation."""

    def __init__(self, spark: Any, spec: Any, token: str, log_path: str | None) -> None:
        self.spark = spark
        self.spec = spec
        self.job_id: str = spec.job_id
        self._token = token
        self._log_path = log_path
        self.result: dict[str, Any] | None = None
        self.done = threading.Event()
        self.cancelled: str | None = None
        from pyspark import InheritableThread

        self._thread = InheritableThread(target=self._run, name=f"skil-job-{self.job_id}")

    def start(self) -> None:
        """Start the job's thread."""
        self._thread.start()

    def cancel(self, why: str) -> None:
        """Cancel the job's Spark jobs now and until its thread ends (the driver-side part
        of a job, a provider's ``data()`` or the plan, ends on its own; the next Spark job
        it starts is cancelled)."""
        if self.cancelled is not None:
            return
        self.cancelled = why
        _LOG.warning("Cancelling job %s: %s.", self.job_id, why)
        threading.Thread(target=self._keep_cancelling, daemon=True).start()

    def _keep_cancelling(self) -> None:
        group = f"skil-{self.job_id}"
        while not self.done.is_set():
            with contextlib.suppress(Exception):
                self.spark.sparkContext.cancelJobGroup(group)
            self.done.wait(_TICK_S)

    def _run(self) -> None:
        from skil_sdk.spark.driver import error_message, run

        handler = self._job_log_handler()
        try:
            self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", f"skil-{self.job_id}")
            self.result = run(self.spec, self._token, spark=self.spark)
        except BaseException as exc:
            code, message = error_message(exc)
            if self.cancelled is not None:
                self.result = {"state": "KILLED", "code": "killed", "error": self.cancelled}
            else:
                _LOG.warning("Job %s failed: %s", self.job_id, message, exc_info=True)
                self.result = {"state": "FAILED", "code": code, "error": message}
        finally:
            if handler is not None:
                logging.getLogger("skil_sdk").removeHandler(handler)
                handler.close()
            self.done.set()

    def _job_log_handler(self) -> logging.Handler | None:
        """The job's own log (``skil-sdk jobs logs``) gets what its thread logs."""
        if not self._log_path:
            return None
        try:
            handler = logging.FileHandler(self._log_path)
        except OSError:
            return None
        ident = threading.get_ident()
        handler.addFilter(lambda record: record.thread == ident)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("skil_sdk").addHandler(handler)
        return handler


class SessionServer:
    """Accepts jobs for one SparkSession until stopped or idle."""

    def __init__(self, spark: Any, idle_timeout_s: float, keep_warm_s: float = 0.0) -> None:
        from skil_sdk.server.token import load_or_create_admin_token

        self.spark = spark
        self.idle_timeout_s = idle_timeout_s
        self.keep_warm_s = keep_warm_s
        self._last_warmed = time.time()
        self._warming: threading.Thread | None = None
        self._warm_runs = 0
        self._admin_token = load_or_create_admin_token()
        self._jobs: dict[str, SessionJob] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._force = False
        self._last_activity = time.time()
        self._jobs_run = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_TICK_S)
        self.port: int = self._listener.getsockname()[1]

    def serve(self) -> str:
        """Accept jobs until a stop request or the idle timeout; return why it stopped."""
        sc = self.spark.sparkContext
        now = time.time()
        update_state(
            state=RUNNING,
            pid=os.getpid(),
            port=self.port,
            app_id=sc.applicationId,
            spark_ui=sc.uiWebUrl,
            started_at=now,
            last_activity=now,
            jobs=[],
            jobs_run=0,
            error=None,
        )
        _LOG.warning("The session accepts jobs on 127.0.0.1:%d (application %s).",
                     self.port, sc.applicationId)
        why = "stopped with `skil-sdk session stop`"
        while not self._stopping.is_set():
            if self._idle_too_long():
                why = f"idle for {self.idle_timeout_s:.0f} s (its idle timeout)"
                break
            self._keep_warm_if_due()
            try:
                conn, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        self._shut_down(why)
        return why

    def request_stop(self, force: bool) -> None:
        """Stop accepting jobs; ``force`` cancels the running ones, else they finish."""
        self._force = self._force or force
        self._stopping.set()

    def _keep_warm_if_due(self) -> None:
        """While no job runs, start the keep-warm job every ``keep_warm_s`` seconds."""
        if self.keep_warm_s <= 0 or (self._warming is not None and self._warming.is_alive()):
            return
        now = time.time()
        if self._busy() or now - max(self._last_warmed, self._last_activity) < self.keep_warm_s:
            return
        self._last_warmed = now
        from pyspark import InheritableThread

        self._warming = InheritableThread(target=self._warm, name="skil-keep-warm", daemon=True)
        self._warming.start()

    def _warm(self) -> None:
        """One task per core, each taking an idle Python worker for a moment."""
        sc = self.spark.sparkContext
        try:
            sc.setJobGroup("skil-keep-warm", "skil-sdk session: keep the Python workers warm")
            sc.setLocalProperty("spark.scheduler.pool", "skil-keep-warm")
            cores = max(1, int(sc.defaultParallelism))
            self.spark.range(0, cores, 1, cores).mapInArrow(keep_warm_task, "rows long").collect()
            self._warm_runs += 1
            update_state(keep_warm_runs=self._warm_runs)
        except Exception as exc:  # a stopping session, a lost executor: try again later
            _LOG.warning("The keep-warm job failed: %r", exc)

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._jobs)

    def _idle_too_long(self) -> bool:
        return (
            not self._busy()
            and self.idle_timeout_s > 0
            and time.time() - self._last_activity > self.idle_timeout_s
        )

    def _shut_down(self, why: str) -> None:
        _LOG.warning("The session is stopping: %s.", why)
        self._stopping.set()
        update_state(state=STOPPING)
        self._listener.close()
        if self._warming is not None:
            with contextlib.suppress(Exception):
                self.spark.sparkContext.cancelJobGroup("skil-keep-warm")
            self._warming.join(60)
        with self._lock:
            running = list(self._jobs.values())
        for job in running:
            if self._force:
                job.cancel("the session was stopped with --force")
        for job in running:
            job.done.wait()
        with contextlib.suppress(Exception):
            self.spark.stop()
        update_state(state=STOPPED, jobs=[], error=None, last_activity=time.time())

    def _handle(self, conn: socket.socket) -> None:
        channel = Channel(conn)
        try:
            message = channel.receive(timeout=30)
            if message is None:
                return
            if not hmac.compare_digest(str(message.get("auth", "")), self._admin_token):
                channel.send({"error": "The session accepts jobs only with the SKIL_HOME token."})
                return
            op = message.get("op")
            if op == "run":
                self._run_job(channel, message)
            elif op == "stop":
                self.request_stop(force=bool(message.get("force")))
                channel.send({"ok": True})
            elif op == "status":
                with self._lock:
                    jobs = sorted(self._jobs)
                channel.send({"ok": True, "jobs": jobs, "jobs_run": self._jobs_run})
            else:
                channel.send({"error": f"Unknown request {op!r}."})
        except ChannelClosed:
            pass
        except Exception as exc:  # one bad request never stops the session
            _LOG.warning("A request failed: %r", exc, exc_info=True)
        finally:
            channel.close()

    def _run_job(self, channel: Channel, message: dict[str, Any]) -> None:
        from skil_sdk.job.spec import DriverSpec

        spec = DriverSpec.from_dict(message["spec"])
        job = SessionJob(self.spark, spec, str(message.get("token", "")), message.get("log_path"))
        with self._lock:
            if self._stopping.is_set():
                channel.send({"error": "The session is stopping; the job was not started."})
                return
            self._jobs[job.job_id] = job
            self._publish_jobs()
        try:
            channel.send({"accepted": True, "app_id": self.spark.sparkContext.applicationId})
            job.start()
            self._follow(channel, job)
            job.done.wait()
            with contextlib.suppress(ChannelClosed):
                channel.send({"result": job.result})
        finally:
            with self._lock:
                self._jobs.pop(job.job_id, None)
                self._jobs_run += 1
                self._last_activity = time.time()
                self._publish_jobs()

    def _follow(self, channel: Channel, job: SessionJob) -> None:
        """Until the job ends: cancel it when its client asks or disconnects."""
        while not job.done.wait(_TICK_S):
            try:
                message = channel.receive(timeout=0)
            except ChannelClosed:
                job.cancel("its client disconnected (interrupted or killed)")
                return
            if message is not None and message.get("op") == "cancel":
                job.cancel(str(message.get("why") or "cancelled by its client"))

    def _publish_jobs(self) -> None:
        update_state(
            jobs=sorted(self._jobs), jobs_run=self._jobs_run, last_activity=self._last_activity
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``session_main.py CONFIG_JSON`` (its ``idle_timeout_s`` and
    ``keep_warm_s``)."""
    from pyspark.sql import SparkSession

    from skil_sdk.spark.bytecode import precompile_in_background

    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text())
    precompile_in_background()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    try:
        spark = SparkSession.builder.appName("skil-sdk session").getOrCreate()
        server = SessionServer(
            spark,
            float(config.get("idle_timeout_s", 0)),
            float(config.get("keep_warm_s", 0)),
        )
        # SIGTERM (spark-submit stopped, a kill) stops it as `session stop --force` does
        signal.signal(signal.SIGTERM, lambda _signum, _frame: server.request_stop(force=True))
        server.serve()
    except BaseException as exc:
        update_state(state=STOPPED, jobs=[], error=f"the session failed: {exc!r}")
        raise
    return 0
