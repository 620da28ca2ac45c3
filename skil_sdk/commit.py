"""The per-task commit of a Parquet output on a local (or shared, mounted) file system.

Both engines use it: the local engine's workers and Spark's executors write their task
attempts themselves, and each finished attempt is committed once.

A task attempt writes ``OUTPUT/_temporary/task-NNNNN-attempt-A/part.parquet`` (and, when
it quarantined rows, ``errors.parquet``). Committing it renames that directory to
``OUTPUT/_temporary/committed/task-NNNNN``, which fails when another attempt of the same
task committed first: every attempt of a task reads the same splits, so whichever
finishes first holds the task's rows, exactly once. The job's commit
(:meth:`LocalCommitter.finish`) moves each committed task's files to
``OUTPUT/part-NNNNN.parquet`` and ``OUTPUT/_errors/part-NNNNN.parquet``, then writes
``_SUCCESS`` (last). Until then a reader of the output sees no rows, and a job that
stops keeps its committed tasks (and its plan, ``_temporary/plan.json``) for
``skil-sdk jobs resume``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from skil_sdk.storage import atomic_write_text, fsync

TEMPORARY = "_temporary"
COMMITTED = "committed"
#: Where an output keeps its quarantined rows (readers of the output skip it).
ERRORS_DIR = "_errors"
PLAN = "plan.json"
PART = "part.parquet"
ERRORS = "errors.parquet"


class LocalCommitter:
    """Task attempts and their commit into one output directory (picklable: executors
    write and commit their attempts through it)."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.temporary = output / TEMPORARY
        self.committed_dir = self.temporary / COMMITTED

    def setup(self) -> None:
        """Create the output and its temporary directories."""
        self.committed_dir.mkdir(parents=True, exist_ok=True)

    def attempt_dir(self, task: int, attempt: int) -> Path:
        """The directory attempt ``attempt`` of task ``task`` writes into."""
        return self.temporary / f"task-{task:05d}-attempt-{attempt}"

    def begin(self, task: int, attempt: int) -> Path:
        """Create an attempt's directory (exclusively: no two attempts share one)."""
        directory = self.attempt_dir(task, attempt)
        directory.mkdir()
        return directory

    def write_attempt(
        self,
        task: int,
        attempt: int,
        schema: Any,
        batches: Any,
        quarantine: Any,
        on_batch: Any = None,
    ) -> int:
        """Write an attempt's output ``batches`` (Arrow record batches of ``schema``) and
        the rows ``quarantine`` holds once they are written; return the rows written.
        ``on_batch(rows)`` is called after each batch (progress)."""
        import pyarrow.parquet as pq

        directory = self.begin(task, attempt)
        rows = 0
        with pq.ParquetWriter(directory / PART, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
                if on_batch is not None:
                    on_batch(batch.num_rows)
        if quarantine.count:
            pq.write_table(quarantine.table(), directory / ERRORS)
        return rows

    def task_dir(self, task: int) -> Path:
        """Where task ``task``'s committed files wait for the job's commit."""
        return self.committed_dir / f"task-{task:05d}"

    def part_path(self, task: int) -> Path:
        """The published part file of task ``task``."""
        return self.output / f"part-{task:05d}.parquet"

    def errors_path(self, task: int) -> Path:
        """The published quarantined rows of task ``task``."""
        return self.output / ERRORS_DIR / f"part-{task:05d}.parquet"

    def commit(self, task: int, attempt: int) -> bool:
        """Commit an attempt; False (its files removed) when another attempt of the task
        committed first."""
        source = self.attempt_dir(task, attempt)
        for name in (PART, ERRORS):
            if (source / name).exists():
                fsync(source / name)
        fsync(source)
        if self.is_committed(task):
            shutil.rmtree(source, ignore_errors=True)
            return False
        try:
            os.rename(source, self.task_dir(task))
        except OSError:  # the target exists (another attempt won), not empty
            shutil.rmtree(source, ignore_errors=True)
            return False
        fsync(self.committed_dir)
        return True

    def is_committed(self, task: int) -> bool:
        """Whether task ``task`` committed (its files waiting, or already published)."""
        return self.task_dir(task).is_dir() or self.part_path(task).exists()

    def committed(self) -> list[int]:
        """The tasks that committed, waiting for the job's commit or published."""
        tasks = {int(p.name.split("-")[1]) for p in self._committed_dirs()}
        tasks |= {int(p.stem.split("-")[1]) for p in self.output.glob("part-*.parquet")}
        return sorted(tasks)

    def _committed_dirs(self) -> list[Path]:
        if not self.committed_dir.is_dir():
            return []
        return [p for p in self.committed_dir.iterdir() if p.name.startswith("task-")]

    def task_rows(self, task: int) -> tuple[int, int]:
        """``(rows written, rows quarantined)`` of a committed task, from its footers."""
        import pyarrow.parquet as pq

        waiting = self.task_dir(task)
        part = waiting / PART if (waiting / PART).exists() else self.part_path(task)
        errors = waiting / ERRORS if (waiting / ERRORS).exists() else self.errors_path(task)
        written = pq.read_metadata(part).num_rows if part.exists() else 0
        quarantined = pq.read_metadata(errors).num_rows if errors.exists() else 0
        return written, quarantined

    def discard_attempts(self) -> None:
        """Remove attempts that never committed (a stopped run's), keeping committed tasks
        and the plan."""
        if not self.temporary.is_dir():
            return
        for entry in self.temporary.iterdir():
            if entry.name.startswith("task-"):
                shutil.rmtree(entry, ignore_errors=True)

    def write_plan(self, plan: dict[str, Any]) -> None:
        """Record the job's plan (its tasks' splits and what they were computed from)."""
        atomic_write_text(self.temporary / PLAN, json.dumps(plan) + "\n")

    def read_plan(self) -> dict[str, Any] | None:
        """The plan of the job whose tasks are kept here (None: there is none)."""
        try:
            data: dict[str, Any] = json.loads((self.temporary / PLAN).read_text())
        except (OSError, json.JSONDecodeError):  # none, or the output is not a directory
            return None
        return data

    def first_error(self) -> tuple[Any, str, str]:
        """``(id, stage, error)`` of the first quarantined row of the committed tasks."""
        import pyarrow.parquet as pq

        for task in self.committed():
            waiting = self.task_dir(task) / ERRORS
            path = waiting if waiting.exists() else self.errors_path(task)
            if path.exists():
                row = pq.read_table(path).slice(0, 1).to_pylist()
                if row:
                    return row[0]["id"], row[0]["stage"], row[0]["error"]
        return None, "?", "unknown"

    def finish(self, record: str | None = None) -> None:
        """The job's commit: publish every committed task's files, write ``record`` as
        ``_skil_job.json``, then ``_SUCCESS``, then remove the temporary directory (a
        crash before ``_SUCCESS`` leaves the plan, so the job can still be resumed)."""
        for directory in sorted(self._committed_dirs()):
            task = int(directory.name.split("-")[1])
            if (directory / ERRORS).exists():
                self.errors_path(task).parent.mkdir(exist_ok=True)
                os.replace(directory / ERRORS, self.errors_path(task))
            if (directory / PART).exists():
                os.replace(directory / PART, self.part_path(task))
        with contextlib.suppress(FileNotFoundError):
            fsync(self.output / ERRORS_DIR)
        if record is not None:
            atomic_write_text(self.output / "_skil_job.json", record)
        fsync(self.output)
        (self.output / "_SUCCESS").touch()
        fsync(self.output)
        shutil.rmtree(self.temporary, ignore_errors=True)

    def abandon(self, created: bool, keep: bool = True, keep_plan: bool = False) -> bool:
        """What a job that stopped leaves: with ``keep``, its committed tasks and plan when
        it has both (``keep_plan``: the plan alone is enough), for ``skil-sdk jobs resume``
        (unfinished attempts removed); else nothing at an output it ``created`` (at
        another, nothing temporary). A finished output (``_SUCCESS``) is never touched.
        Return whether anything was kept."""
        if (self.output / "_SUCCESS").exists():
            return False
        if keep and self.read_plan() is not None and (keep_plan or self._committed_dirs()):
            self.discard_attempts()
            return True
        shutil.rmtree(self.output if created else self.temporary, ignore_errors=True)
        return False


def abandon_output(
    committer: LocalCommitter,
    created: bool,
    job_id: str,
    failure: BaseException | None = None,
    resumed: bool = False,
) -> str | None:
    """:meth:`LocalCommitter.abandon` of a job that failed with ``failure``; the sentence
    its error gains when it kept tasks that a resume can use (None otherwise).

    A failure a resume would meet again (``failure.resumable`` False) keeps nothing on a
    first run, and keeps an earlier run's tasks on a resumed one. A job past its budget of
    bad rows keeps its plan even before any task committed: its error already says to
    resume it with a larger budget."""
    from skil_sdk.errors import BadRowsError

    resumable = failure is None or bool(getattr(failure, "resumable", True))
    over_budget = isinstance(failure, BadRowsError)
    if not committer.abandon(created, keep=resumable or resumed, keep_plan=over_budget):
        return None
    kept = len(committer.committed())
    if not resumable or (over_budget and not kept):
        return None
    return (
        f" {kept} committed task(s) are kept in {committer.temporary}; "
        f"`skil-sdk jobs resume {job_id}` runs only the others."
    )
