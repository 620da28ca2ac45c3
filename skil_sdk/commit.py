"""The per-task commit of a Parquet output on a local (or shared, mounted) file system.

Both engines use it: the local engine's workers and Spark's executors write their task
attempts themselves, and the parent (the driver) commits the attempt that counted.

A task attempt writes ``OUTPUT/_temporary/task-NNNNN-attempt-A.parquet``; committing it
links it to ``OUTPUT/part-NNNNN.parquet``, which fails when an earlier attempt of the
same task already committed, so each task's rows are in the output exactly once, whatever
attempts ran. A reader never sees a half-written part file. ``_SUCCESS`` comes last.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from skil_sdk.storage import fsync

TEMPORARY = "_temporary"


class LocalCommitter:
    """Task attempts and their commit into one output directory (picklable: executors
    write their attempts through it)."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.temporary = output / TEMPORARY

    def setup(self) -> None:
        """Create the output and its temporary directory."""
        self.temporary.mkdir(parents=True, exist_ok=True)

    def attempt_path(self, task: int, attempt: int) -> Path:
        """Where attempt ``attempt`` of task ``task`` writes."""
        return self.temporary / f"task-{task:05d}-attempt-{attempt}.parquet"

    def part_path(self, task: int) -> Path:
        """The committed part file of task ``task``."""
        return self.output / f"part-{task:05d}.parquet"

    def commit(self, task: int, attempt: int) -> bool:
        """Commit an attempt; False when another attempt of the task committed first."""
        source = self.attempt_path(task, attempt)
        target = self.part_path(task)
        fsync(source)
        try:
            os.link(source, target)
        except FileExistsError:
            return False
        except OSError:  # no hard links (FUSE mounts, SMB): the parent is the one committer
            if target.exists():
                return False
            os.rename(source, target)
        finally:
            source.unlink(missing_ok=True)
        fsync(self.output)
        return True

    def committed(self) -> list[int]:
        """The tasks whose part file exists."""
        return sorted(int(p.stem.split("-")[1]) for p in self.output.glob("part-*.parquet"))

    def finish(self) -> None:
        """Remove the temporary directory and write ``_SUCCESS`` (last)."""
        shutil.rmtree(self.temporary, ignore_errors=True)
        (self.output / "_SUCCESS").touch()
        fsync(self.output)
