"""Files and directories that appear complete or not at all, and the digests that check them.

Every store (models, plugins, the build cache, the executors' node cache) writes through
these; none of them knows about ``SKIL_HOME`` (:mod:`skil_sdk.home` does).

While a writer works, it leaves only hidden siblings of what it writes:

``.NAME.<random>.tmp``
    a file being written for ``NAME`` (:func:`atomic_write_bytes`)
``.NAME.<uuid>.work``
    a directory being filled for ``NAME`` (:func:`atomic_directory`,
    :func:`staged_directory`) or being deleted (:func:`remove_dir`)
``.PREFIX-<pid>-<uuid>.work``
    a scratch directory of process ``pid`` (:func:`scratch_dir`)

so a crash never leaves a half-written entry, and :func:`sweep_stale` removes what a
killed writer left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from skil_sdk.processes import pid_alive

_CHUNK = 1024 * 1024
_WORK_DIR = re.compile(r"^\.(?P<target>.+)\.[0-9a-f]{32}\.work$")
_SCRATCH_DIR = re.compile(r"^\.(?P<prefix>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{32}\.work$")


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def path_lock(path: Path, timeout: float = -1) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` (a ``.lock`` file beside it)."""
    ensure_dir(path.parent)
    with FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout):
        yield


def fsync(path: Path | str) -> None:
    """Flush a file's or a directory's entries to disk (raises OSError when it cannot)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fsync(path)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                fsync(os.path.join(dirpath, name))


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp file beside it, fsync, rename)."""
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def work_path(target: Path) -> Path:
    """A fresh hidden sibling of ``target`` to fill or to move it to: ``.NAME.<uuid>.work``."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.work")


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield a new work directory beside ``target``; on a clean exit it becomes ``target``.

    The work directory is fsynced and renamed to ``target``, unless ``target`` exists by
    then (another writer finished first). What is left of it is always removed. The
    caller serializes writers of ``target`` (see :func:`atomic_directory`).
    """
    work = work_path(target)
    work.mkdir(parents=True)
    try:
        yield work
        if not target.exists():
            _fsync_tree(work)
            os.rename(work, target)
            _fsync_dir(target.parent)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class AtomicDirectory:
    """A directory that appears complete or not at all.

    Use it as pex does::

        with atomic_directory(target) as ad:
            if not ad.is_finalized():
                write_everything_into(ad.work_dir)

    On a clean exit the work directory is renamed to ``target``; on an error it is
    removed. A concurrent writer of the same target waits on a file lock and then
    finds it finalized.
    """

    target: Path
    work_dir: Path

    def is_finalized(self) -> bool:
        """Whether ``target`` already exists (so there is nothing to write)."""
        return self.target.exists()


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[AtomicDirectory]:
    """Create ``target`` atomically under its lock; see :class:`AtomicDirectory`."""
    ensure_dir(target.parent)
    with path_lock(target):
        if target.exists():
            yield AtomicDirectory(target, work_path(target))
            return
        with staged_directory(target) as work_dir:
            yield AtomicDirectory(target, work_dir)


def remove_dir(target: Path) -> bool:
    """Remove the directory ``target`` atomically: renamed aside under its lock, then deleted.

    Returns whether there was one to remove.
    """
    with path_lock(target):
        if not target.exists():
            return False
        aside = work_path(target)
        os.rename(target, aside)
    shutil.rmtree(aside, ignore_errors=True)
    return True


@contextlib.contextmanager
def scratch_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new scratch directory ``parent/.PREFIX-<pid>-<uuid>.work``, removed on exit.

    One left by a killed process is removed by :func:`sweep_stale` once that process is
    gone. ``prefix`` is letters, digits and ``_``.
    """
    path = ensure_dir(parent) / f".{prefix}-{os.getpid()}-{uuid.uuid4().hex}.work"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_stale(parent: Path, *, locked: bool = False) -> int:
    """Remove what killed writers left in ``parent`` (see the module's docstring); count it.

    A scratch directory is stale once its process is gone; a work directory once
    nobody holds its target's lock. With ``locked`` the caller holds the lock that every
    writer into ``parent`` takes, so every work directory and temp file there is stale.
    """
    if not parent.exists():
        return 0
    removed = 0
    for entry in parent.iterdir():
        name = entry.name
        if not (name.startswith(".") and name.endswith((".work", ".tmp"))):
            continue
        if locked:
            _remove(entry)
            removed += 1
        elif (scratch := _SCRATCH_DIR.match(name)) is not None:
            if not pid_alive(int(scratch.group("pid"))):
                _remove(entry)
                removed += 1
        elif (work := _WORK_DIR.match(name)) is not None:
            removed += _remove_unlocked(entry, parent / work.group("target"))
    return removed


def _remove_unlocked(entry: Path, target: Path) -> bool:
    """Remove ``entry`` if nobody holds ``target``'s lock; whether it was removed."""
    try:
        with path_lock(target, timeout=0):
            _remove(entry)
            return True
    except Timeout:
        return False


def remove_entry(entry: Path) -> None:
    """Remove a directory tree, a file or a link (a link, not what it points to)."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file ``path``); links count as links."""
    if path.is_file() and not path.is_symlink():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "AtomicDirectory",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_text",
    "ensure_dir",
    "path_lock",
    "remove_dir",
    "scratch_dir",
    "sha256_bytes",
    "sha256_file",
    "staged_directory",
    "sweep_stale",
    "tree_size",
    "work_path",
]
