"""The long-lived Spark session's record: ``SKIL_HOME/session/state.json``.

The session process writes it (atomically) whenever its state or its running jobs
change; clients read it to find the session, and check that its process still lives:
a record whose process is gone reads as ``stopped``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.errors import InvalidValueError
from skil_sdk.home import file_lock, skil_home
from skil_sdk.processes import pid_alive
from skil_sdk.storage import atomic_write_text, ensure_dir

STARTING = "starting"
RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"

#: The idle timeout when ``--idle-timeout`` is not given: 30 minutes.
DEFAULT_IDLE_TIMEOUT_S = 1800.0

#: How often an idle session runs its keep-warm job when ``--keep-warm`` is not given:
#: under the minute after which Spark stops an idle Python worker.
DEFAULT_KEEP_WARM_S = 40.0


def session_dir() -> Path:
    """``SKIL_HOME/session`` (owner-only): the record, the log, the driver program."""
    path = ensure_dir(skil_home() / "session")
    with contextlib.suppress(OSError):
        path.chmod(0o700)
    return path


def state_path() -> Path:
    """``SKIL_HOME/session/state.json`` (reading it creates nothing)."""
    return skil_home() / "session" / "state.json"


def log_path() -> Path:
    """``SKIL_HOME/session/session.log``: spark-submit's and the session driver's output
    (reading it creates nothing)."""
    return skil_home() / "session" / "session.log"


@dataclass
class SessionState:
    """What the session's record says (``skil-sdk session status --json``)."""

    state: str
    #: The spark-submit process (the session's JVM; its child runs the driver program).
    submit_pid: int | None = None
    #: The driver program's process (Python, inside the bundle).
    pid: int | None = None
    #: The loopback port it accepts jobs on (with the ``SKIL_HOME`` admin token).
    port: int | None = None
    bundle_hash: str | None = None
    bundle: str | None = None
    master: str | None = None
    #: The spark-submit flags a job must share to run here (:func:`settings_of`).
    settings: dict[str, str] = field(default_factory=dict)
    spark_home: str | None = None
    profile: str | None = None
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    started_at: float | None = None
    last_activity: float | None = None
    app_id: str | None = None
    spark_ui: str | None = None
    #: The session's server for its jobs (model files, progress, web pages) and its process.
    server_url: str | None = None
    server_pid: int | None = None
    #: The ids of the jobs running now, and the count of jobs run since the start.
    jobs: list[str] = field(default_factory=list)
    jobs_run: int = 0
    #: Seconds between keep-warm jobs while idle (0: none), and how many have run.
    keep_warm_s: float = 0.0
    keep_warm_runs: int = 0
    #: Why the session stopped, when it did not stop on request.
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionState:
        """The record from its JSON form (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def is_up(self) -> bool:
        """Whether the session is starting, running or stopping (its process lives)."""
        return self.state in (STARTING, RUNNING, STOPPING)


def read_state() -> SessionState:
    """The session's record, its liveness checked: ``stopped`` when there is none, or when
    its process has gone (a crash or a kill: ``error`` then says so)."""
    path = state_path()
    try:
        state = SessionState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return SessionState(state=STOPPED)
    if state.is_up and not _alive(state):
        state = dataclasses.replace(
            state,
            state=STOPPED,
            jobs=[],
            error=state.error
            or "the session's process ended without stopping (killed, or it crashed); "
            "see `skil-sdk session logs`",
        )
    return state


def _alive(state: SessionState) -> bool:
    pids = [pid for pid in (state.pid, state.submit_pid) if pid]
    return bool(pids) and any(pid_alive(pid) for pid in pids)


def write_state(state: SessionState) -> None:
    """Replace the session's record (atomically, owner-only)."""
    with file_lock("session-state"):
        _write(state)


def _write(state: SessionState) -> None:
    atomic_write_text(
        session_dir() / "state.json", json.dumps(state.to_dict(), indent=2), mode=0o600
    )


def update_state(**changes: Any) -> SessionState:
    """The record with ``changes`` applied, written back (under the record's lock: the
    session's threads and its clients update it)."""
    with file_lock("session-state"):
        try:
            current = SessionState.from_dict(json.loads(state_path().read_text()))
        except (OSError, ValueError, TypeError):
            current = SessionState(state=STARTING)
        updated = dataclasses.replace(current, **changes)
        _write(updated)
        return updated


def settings_of(spark_args: Any, spark_home: str | None) -> dict[str, str]:
    """The settings a job must share with a session to run in it: the spark-submit flags
    of its :class:`~skil_sdk.SparkArgs` but the application name (each conf by its key),
    and the Spark install."""
    from skil_sdk.spark.args import FIELD_MAPPING

    switches = {m.flag for m in FIELD_MAPPING.values() if m.kind == "switch"}
    argv = list(spark_args.to_submit_argv())
    settings: dict[str, str] = {}
    index = 0
    while index < len(argv):
        flag = argv[index]
        has_value = flag not in switches and index + 1 < len(argv)
        value = argv[index + 1] if has_value else "true"
        index += 2 if has_value else 1
        if flag == "--conf":
            key, _, value = value.partition("=")
            flag = f"--conf {key}"
        if flag != "--name":
            settings[flag] = value
    settings["spark home"] = spark_home or ""
    return settings


def first_difference(ours: dict[str, str], theirs: dict[str, str]) -> str | None:
    """A phrase naming the first setting in which a job (``ours``) and a session
    (``theirs``) differ, or None when they match."""
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            return (
                f"{key} is {ours.get(key) or '(unset)'} for the job and "
                f"{theirs.get(key) or '(unset)'} in the session"
            )
    return None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, option: str = "--idle-timeout") -> float:
    """Seconds of a duration such as ``90``, ``90s``, ``30m``, ``2h`` (``0``: never);
    ``option`` names it in the error."""
    match = _DURATION.match(str(text).lower())
    if match is None:
        raise InvalidValueError(
            f"{option} {text!r} is not a duration; give seconds or a number with s, m, h or "
            "d, e.g. 30m (0: never)."
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
