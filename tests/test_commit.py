"""The per-task commit: of two attempts of one task, exactly one is committed; a reader
never sees an uncommitted attempt; ``_SUCCESS`` comes last."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skil_sdk.commit import LocalCommitter


def _write(path: Path, ids: list[int]) -> None:
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), path)


def test_two_attempts_of_one_task_commit_once(tmp_path: Path) -> None:
    committer = LocalCommitter(tmp_path / "out")
    committer.setup()
    _write(committer.attempt_path(3, 0), [1, 2, 3])
    _write(committer.attempt_path(3, 1), [1, 2, 3])
    assert list((tmp_path / "out").glob("part-*")) == [], "attempts are not visible"
    assert committer.commit(3, 1) is True
    assert committer.commit(3, 0) is False, "a second attempt of a committed task is refused"
    assert committer.committed() == [3]
    assert pq.read_table(committer.part_path(3)).column("id").to_pylist() == [1, 2, 3]
    assert not committer.attempt_path(3, 0).exists() and not committer.attempt_path(3, 1).exists()
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    committer.finish()
    assert (tmp_path / "out" / "_SUCCESS").exists()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["_SUCCESS", "part-00003.parquet"]


def test_the_committer_travels_to_executors(tmp_path: Path) -> None:
    committer = pickle.loads(pickle.dumps(LocalCommitter(tmp_path / "out")))
    assert committer.attempt_path(0, 2) == tmp_path / "out" / "_temporary" / (
        "task-00000-attempt-2.parquet"
    )
