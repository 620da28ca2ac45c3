"""The per-task commit: of two attempts of one task, exactly one is committed; a reader
never sees a task before the job's commit; quarantined rows travel with their task;
``_SUCCESS`` comes last; a stopped job keeps its committed tasks only with a plan."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from skil_sdk.commit import ERRORS, PART, LocalCommitter, abandon_output


def _write(path: Path, ids: list[int]) -> None:
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), path)


def test_two_attempts_of_one_task_commit_once(tmp_path: Path) -> None:
    committer = LocalCommitter(tmp_path / "out")
    committer.setup()
    first, second = committer.begin(3, 0), committer.begin(3, 1)
    _write(first / PART, [1, 2, 3])
    _write(second / PART, [1, 2, 3])
    _write(second / ERRORS, [9])
    assert committer.commit(3, 1) is True
    assert committer.commit(3, 0) is False, "a second attempt of a committed task is refused"
    assert committer.committed() == [3]
    assert committer.task_rows(3) == (3, 1)
    assert not first.exists() and not second.exists()
    visible = ds.dataset(tmp_path / "out", format="parquet", exclude_invalid_files=True)
    assert visible.count_rows() == 0, "no task is visible before the job's commit"
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    committer.finish('{"rows": 3}\n')
    assert (tmp_path / "out" / "_SUCCESS").exists()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["_SUCCESS", "_errors", "_skil_job.json", "part-00003.parquet"]
    assert pq.read_table(committer.part_path(3)).column("id").to_pylist() == [1, 2, 3]
    assert pq.read_table(committer.errors_path(3)).column("id").to_pylist() == [9]
    assert committer.committed() == [3] and committer.task_rows(3) == (3, 1)


def test_an_attempt_directory_is_never_shared(tmp_path: Path) -> None:
    committer = LocalCommitter(tmp_path / "out")
    committer.setup()
    committer.begin(0, 7)
    with pytest.raises(FileExistsError):  # a second writer of one attempt is refused
        committer.begin(0, 7)


def test_a_stopped_job_keeps_committed_tasks_only_with_a_plan(tmp_path: Path) -> None:
    planned = LocalCommitter(tmp_path / "planned")
    planned.setup()
    planned.write_plan({"job_id": "job-1", "tasks": [[0], [1]]})
    _write(planned.begin(0, 0) / PART, [0])
    planned.commit(0, 0)
    _write(planned.begin(1, 5) / PART, [1])  # an attempt that never committed
    note = abandon_output(planned, created=True, job_id="job-1")
    assert note is not None and "skil-sdk jobs resume job-1" in note
    assert planned.committed() == [0] and not planned.attempt_dir(1, 5).exists()
    assert planned.read_plan() == {"job_id": "job-1", "tasks": [[0], [1]]}

    unplanned = LocalCommitter(tmp_path / "unplanned")
    unplanned.setup()
    _write(unplanned.begin(0, 0) / PART, [0])
    unplanned.commit(0, 0)
    assert abandon_output(unplanned, created=True, job_id="job-2") is None
    assert not (tmp_path / "unplanned").exists(), "nothing is left at a path the job created"


def test_the_committer_travels_to_executors(tmp_path: Path) -> None:
    committer = pickle.loads(pickle.dumps(LocalCommitter(tmp_path / "out")))
    assert committer.attempt_dir(0, 2) == tmp_path / "out" / "_temporary" / "task-00000-attempt-2"
