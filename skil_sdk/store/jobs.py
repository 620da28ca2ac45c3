"""The jobs store: one SQLite database in SKIL_HOME recording every batch-inference job.

States: SUBMITTED → RUNNING → SUCCEEDED | FAILED | KILLED. The runner records the job,
its spark-submit log path and its process id; the driver reports progress (through the
server, or directly when it runs beside the store); a job whose runner process died is
marked FAILED with the reason the next time anyone reads it.

Job-scoped tokens live here too (only their sha256): a token grants downloading the
job's models and reporting its progress, and stops working when the job ends.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.errors import NotFoundError
from skil_sdk.home import skil_home
from skil_sdk.processes import pid_alive
from skil_sdk.storage import sha256_bytes

SUBMITTED = "SUBMITTED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
KILLED = "KILLED"
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, KILLED})
#: A batch-inference job's row accounting, kept in its details and shown top-level.
ROW_KEYS = ("rows_in", "rows_written", "rows_quarantined")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'inference',
    state TEXT NOT NULL,
    model_id TEXT,
    provider TEXT,
    output_path TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    rows_done INTEGER NOT NULL DEFAULT 0,
    rows_total INTEGER,
    tasks_done INTEGER NOT NULL DEFAULT 0,
    tasks_total INTEGER,
    log_path TEXT,
    runner_pid INTEGER,
    runner_host TEXT,
    error TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    executors TEXT NOT NULL DEFAULT '[]',
    progress_history TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS downloads (
    job_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    file TEXT NOT NULL,
    client TEXT,
    byte_range TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS job_tokens (
    token_sha256 TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    model_ids TEXT NOT NULL
);
"""


@dataclass
class JobRecord:
    """One row of the jobs store."""

    id: str
    state: str
    kind: str = "inference"
    model_id: str | None = None
    provider: str | None = None
    output_path: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    rows_done: int = 0
    rows_total: int | None = None
    tasks_done: int = 0
    tasks_total: int | None = None
    log_path: str | None = None
    runner_pid: int | None = None
    runner_host: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    executors: list[dict[str, Any]] = field(default_factory=list)
    progress_history: list[list[float]] = field(default_factory=list)

    @property
    def is_finished(self) -> bool:
        """Whether the job reached a terminal state."""
        return self.state in TERMINAL_STATES

    @property
    def elapsed(self) -> float | None:
        """Seconds from start to finish (or to now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)

    @property
    def rows_per_second(self) -> float | None:
        """Average throughput so far."""
        elapsed = self.elapsed
        if not elapsed or not self.rows_done:
            return None
        return self.rows_done / elapsed

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``skil-sdk jobs show --json`` and the server)."""
        return {
            "job_id": self.id,
            "kind": self.kind,
            "state": self.state,
            "model_id": self.model_id,
            "provider": self.provider,
            "output": self.output_path,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed": self.elapsed,
            "rows_done": self.rows_done,
            "rows_total": self.rows_total,
            "tasks_done": self.tasks_done,
            "tasks_total": self.tasks_total,
            **{key: self.details.get(key) for key in ROW_KEYS},
            "rows_per_second": self.rows_per_second,
            "log_path": self.log_path,
            "error": self.error,
            "details": self.details,
            "executors": self.executors,
            "progress_history": self.progress_history,
        }


@dataclass(frozen=True)
class JobToken:
    """What a job-scoped token grants."""

    job_id: str
    model_ids: tuple[str, ...]


_COLUMNS = [
    "id",
    "kind",
    "state",
    "model_id",
    "provider",
    "output_path",
    "created_at",
    "started_at",
    "finished_at",
    "rows_done",
    "rows_total",
    "tasks_done",
    "tasks_total",
    "log_path",
    "runner_pid",
    "runner_host",
    "error",
    "details",
    "executors",
    "progress_history",
]
_JSON_COLUMNS = {"details", "executors", "progress_history"}
_HISTORY_LIMIT = 600


def new_job_id() -> str:
    """A new, URL-safe job id: a UTC timestamp and random suffix."""
    return time.strftime("job-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


class JobStore:
    """Access to ``SKIL_HOME/jobs.sqlite`` (safe across processes: SQLite locking)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or skil_home() / "jobs.sqlite"
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def create(self, job_id: str | None = None, **fields: Any) -> JobRecord:
        """Record a new job in state SUBMITTED and return it."""
        record = JobRecord(id=job_id or new_job_id(), state=SUBMITTED, created_at=time.time())
        for key, value in fields.items():
            setattr(record, key, value)
        values = [self._encode(c, getattr(record, c)) for c in _COLUMNS]
        with self._connect() as db:
            placeholders = ", ".join("?" * len(_COLUMNS))
            db.execute(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)
        return record

    @staticmethod
    def _encode(column: str, value: Any) -> Any:
        return json.dumps(value, default=str) if column in _JSON_COLUMNS else value

    def _row_to_record(self, row: sqlite3.Row | tuple[Any, ...]) -> JobRecord:
        data = dict(zip(_COLUMNS, row, strict=True))
        for column in _JSON_COLUMNS:
            data[column] = json.loads(data[column] or "null") or ([] if column != "details" else {})
        return JobRecord(**data)

    def get(self, job_id: str) -> JobRecord:
        """The job ``job_id`` (a dead runner's RUNNING job is marked FAILED first)."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"No job {job_id!r}; run `skil-sdk jobs list` to see the jobs.")
        return self._reap(self._row_to_record(row))

    def list(self, limit: int = 50) -> list[JobRecord]:
        """The newest ``limit`` jobs, newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._reap(self._row_to_record(r)) for r in rows]

    def _reap(self, record: JobRecord) -> JobRecord:
        """Mark a job FAILED when the process that runs it is gone."""
        if record.is_finished or record.runner_pid is None:
            return record
        if record.runner_host not in (None, _hostname()) or pid_alive(record.runner_pid):
            return record
        reason = (
            f"the skil-sdk process running this job (pid {record.runner_pid}) exited "
            "before the job finished"
        )
        self.finish(record.id, FAILED, error=reason)
        return self.get(record.id)

    def update(self, job_id: str, **fields: Any) -> None:
        """Set columns of a job."""
        if not fields:
            return
        assignments = ", ".join(f"{k} = ?" for k in fields)
        values = [self._encode(k, v) for k, v in fields.items()]
        with self._connect() as db:
            cursor = db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*values, job_id])
        if cursor.rowcount == 0:
            raise NotFoundError(f"No job {job_id!r}; run `skil-sdk jobs list` to see the jobs.")

    def mark_running(self, job_id: str) -> None:
        """SUBMITTED → RUNNING, recording the start time."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET state = ?, started_at = COALESCE(started_at, ?) "
                "WHERE id = ? AND state IN (?, ?)",
                (RUNNING, time.time(), job_id, SUBMITTED, RUNNING),
            )

    def finish(self, job_id: str, state: str, error: str | None = None) -> None:
        """Move a job to a terminal state (a finished job is never changed again)."""
        assert state in TERMINAL_STATES
        condition = "state NOT IN (?, ?, ?)"
        with self._connect() as db:
            db.execute(
                f"UPDATE jobs SET state = ?, error = COALESCE(?, error), finished_at = ? "
                f"WHERE id = ? AND {condition}",
                (state, error, time.time(), job_id, *sorted(TERMINAL_STATES)),
            )
            db.execute("DELETE FROM job_tokens WHERE job_id = ?", (job_id,))

    def reopen(self, job_id: str, **fields: Any) -> None:
        """A stopped job back to SUBMITTED, to be resumed (its error and end cleared)."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET state = ?, error = NULL, finished_at = NULL WHERE id = ?",
                (SUBMITTED, job_id),
            )
        self.update(job_id, **fields)

    def report_progress(
        self,
        job_id: str,
        rows_done: int,
        tasks_done: int,
        tasks_total: int | None = None,
        rows_total: int | None = None,
    ) -> None:
        """Record progress reported by the job's driver."""
        now = time.time()
        with self._connect() as db:
            row = db.execute(
                "SELECT progress_history, state FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"No job {job_id!r}.")
            history = json.loads(row[0] or "[]")
            history.append([now, rows_done])
            history = history[-_HISTORY_LIMIT:]
            db.execute(
                "UPDATE jobs SET rows_done = ?, tasks_done = ?, "
                "tasks_total = COALESCE(?, tasks_total), rows_total = COALESCE(?, rows_total), "
                "progress_history = ? WHERE id = ?",
                (rows_done, tasks_done, tasks_total, rows_total, json.dumps(history), job_id),
            )
        if row[1] == SUBMITTED:
            self.mark_running(job_id)

    def add_executor(self, job_id: str, record: dict[str, Any]) -> None:
        """Append an executor process record (host, pid, python, bundle_hash, rows)."""
        with self._connect() as db:
            row = db.execute("SELECT executors FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"No job {job_id!r}.")
            executors = json.loads(row[0] or "[]")
            executors.append(record)
            db.execute(
                "UPDATE jobs SET executors = ? WHERE id = ?", (json.dumps(executors), job_id)
            )

    def record_download(
        self, job_id: str, model_id: str, file: str, client: str | None, byte_range: str | None
    ) -> None:
        """Record that a job's executor requested a model file (for ``jobs show``)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO downloads (job_id, model_id, file, client, byte_range, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, model_id, file, client, byte_range, time.time()),
            )

    def downloads(self, job_id: str) -> builtins.list[dict[str, Any]]:
        """The model-file requests a job's executors made, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT model_id, file, client, byte_range, at FROM downloads WHERE job_id = ? "
                "ORDER BY at",
                (job_id,),
            ).fetchall()
        keys = ("model_id", "file", "client", "range", "at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def issue_token(self, job_id: str, model_ids: builtins.list[str]) -> str:
        """A new token for ``job_id`` granting its models; valid until the job ends."""
        token = "skj_" + secrets.token_urlsafe(32)
        with self._connect() as db:
            db.execute(
                "INSERT INTO job_tokens (token_sha256, job_id, model_ids) VALUES (?, ?, ?)",
                (sha256_bytes(token.encode()), job_id, json.dumps(list(model_ids))),
            )
        return token

    def check_token(self, token: str) -> JobToken | None:
        """What ``token`` grants, or None when unknown or its job has ended."""
        with self._connect() as db:
            row = db.execute(
                "SELECT t.job_id, t.model_ids, j.state FROM job_tokens t "
                "JOIN jobs j ON j.id = t.job_id WHERE t.token_sha256 = ?",
                (sha256_bytes(token.encode()),),
            ).fetchone()
        if row is None or row[2] in TERMINAL_STATES:
            return None
        return JobToken(job_id=row[0], model_ids=tuple(json.loads(row[1])))


def _hostname() -> str:
    import socket

    return socket.gethostname()


def issue_job_token(job_id: str, model_ids: list[str]) -> str:
    """A job-scoped token (see :meth:`JobStore.issue_token`)."""
    return JobStore().issue_token(job_id, model_ids)


def check_job_token(token: str) -> JobToken | None:
    """What a job-scoped token grants, or None (see :meth:`JobStore.check_token`)."""
    return JobStore().check_token(token)


@contextlib.contextmanager
def recording_failure(
    store: JobStore, job_id: str, cleanup: Callable[[BaseException], str | None], what: str
) -> Iterator[None]:
    """Record how a job's run ends if it raises: KILLED for Ctrl-C or SIGTERM (as
    ``KeyboardInterrupt``), FAILED with the message of a :class:`SkilError`, else FAILED
    naming ``what`` failed; ``cleanup`` (given the exception) runs first, and what it
    returns (a sentence on what the job kept) is added to the message. The exception goes
    on."""
    from skil_sdk.errors import SkilError

    try:
        yield
    except KeyboardInterrupt as exc:
        note = cleanup(exc) or ""
        store.finish(job_id, KILLED, error="the job was interrupted (Ctrl-C or SIGTERM)" + note)
        raise
    except SkilError as exc:
        kept = cleanup(exc)
        if kept:
            exc.with_note(kept)
        store.finish(job_id, FAILED, error=exc.message)
        raise
    except BaseException as exc:
        note = cleanup(exc) or ""
        store.finish(job_id, FAILED, error=f"{what} failed: {exc!r}{note}")
        raise
