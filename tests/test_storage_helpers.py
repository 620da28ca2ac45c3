"""skil_sdk.storage: atomic files and directories, removal, scratch folders, the sweep."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from skil_sdk import home, storage
from skil_sdk.storage import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_text,
    path_lock,
    remove_dir,
    scratch_dir,
    sha256_bytes,
    sha256_file,
    staged_directory,
    sweep_stale,
    tree_size,
    work_path,
)


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_the_storage_helpers_live_in_storage_only() -> None:
    for name in ("atomic_directory", "atomic_write_text", "path_lock", "sha256_bytes",
                 "sha256_file", "tree_size"):
        assert callable(getattr(storage, name)) and name not in home.__all__


def test_atomic_write_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "record.json"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second", mode=0o600)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["record.json"]


def test_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    atomic_write_text(target, "kept")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_work_path_is_a_fresh_hidden_sibling(tmp_path: Path) -> None:
    first, second = work_path(tmp_path / "entry"), work_path(tmp_path / "entry")
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(".entry.") and first.name.endswith(".work")


def test_staged_directory_appears_whole_on_success(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    with staged_directory(target) as work:
        (work / "file.txt").write_text("content")
        assert not target.exists()
    assert (target / "file.txt").read_text() == "content"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_staged_directory_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    with pytest.raises(RuntimeError), staged_directory(target) as work:
        (work / "half.txt").write_text("half")
        raise RuntimeError("killed half-way")
    assert list(tmp_path.iterdir()) == []


def test_staged_directory_keeps_a_target_another_writer_finished(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    with staged_directory(target) as work:
        (work / "mine.txt").write_text("mine")
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_atomic_directory_is_written_once(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    writes = []
    for content in ("first", "second"):
        with atomic_directory(target) as ad:
            if not ad.is_finalized():
                (ad.work_dir / "value").write_text(content)
                writes.append(content)
    assert writes == ["first"]
    assert (target / "value").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry", "entry.lock"]


def test_remove_dir(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "file").write_text("x")
    assert remove_dir(target) is True
    assert remove_dir(target) is False
    assert [p.name for p in tmp_path.iterdir()] == ["entry.lock"]


def test_scratch_dir_is_named_by_the_process_and_removed(tmp_path: Path) -> None:
    with scratch_dir(tmp_path / "tmp", "tool") as scratch:
        (scratch / "left-by-a-tool").write_text("x")
        assert scratch.name.startswith(f".tool-{os.getpid()}-") and scratch.is_dir()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_sweep_removes_what_dead_writers_left_and_keeps_live_ones(tmp_path: Path) -> None:
    held, free = tmp_path / "held", tmp_path / "free"
    held_work, free_work = work_path(held), work_path(free)
    held_work.mkdir()
    free_work.mkdir()
    dead = tmp_path / f".download-{_dead_pid()}-{'0' * 32}.work"
    live = tmp_path / f".download-{os.getpid()}-{'1' * 32}.work"
    dead.mkdir()
    live.mkdir()
    temp_file = tmp_path / ".record.json.abc123.tmp"
    temp_file.write_text("x")
    with path_lock(held):
        assert sweep_stale(tmp_path) == 2
    assert not free_work.exists() and not dead.exists()
    assert held_work.exists() and live.exists() and temp_file.exists()


def test_a_locked_sweep_removes_every_work_dir_and_temp_file(tmp_path: Path) -> None:
    work = work_path(tmp_path / "entry")
    work.mkdir()
    (tmp_path / ".record.json.abc123.tmp").write_text("x")
    (tmp_path / "entry").mkdir()
    (tmp_path / ".hidden").write_text("not a leftover")
    assert sweep_stale(tmp_path, locked=True) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "entry"]
    assert sweep_stale(tmp_path / "missing") == 0


def test_digests_and_sizes(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"12345")
    assert sha256_file(tmp_path / "a") == hashlib.sha256(data).hexdigest()
    assert sha256_bytes(b"12345") == hashlib.sha256(b"12345").hexdigest()
    assert tree_size(tmp_path) == len(data) + 5
    assert tree_size(tmp_path / "sub" / "b") == 5
