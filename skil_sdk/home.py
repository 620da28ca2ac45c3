"""The layout of ``SKIL_HOME`` and the atomic-write idioms every store uses.

Layout (``SKIL_HOME`` defaults to ``~/.skil``)::

    SKIL_HOME/
      home.json            schema version of this layout
      models/              model store (skil_sdk.store.models)
      plugins/             plugin store (skil_sdk.store.plugins)
      cache/               wheelhouse, plugin wheels, bundles (skil_sdk.builder.cache)
      jobs.sqlite          jobs store (skil_sdk.store.jobs)
      logs/                spark-submit logs, one per job
      server.token         admin token of the built-in server (mode 0600)
      locks/               file locks

Every write is atomic: content is written in a temporary sibling, fsynced and renamed
into place while a file lock is held, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from skil_sdk.errors import HomeError

HOME_SCHEMA_VERSION = 1
_CHUNK = 1024 * 1024


def skil_home() -> Path:
    """The SKIL_HOME directory (``$SKIL_HOME`` or ``~/.skil``), created if missing."""
    raw = os.environ.get("SKIL_HOME") or str(Path.home() / ".skil")
    home = Path(raw).expanduser().resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(
            f"SKIL_HOME {home} cannot be created ({exc.strerror}); "
            "set SKIL_HOME to a writable directory."
        ) from exc
    _check_schema(home)
    return home


def _check_schema(home: Path) -> None:
    """Stamp a new home, migrate an older one, refuse a newer one (skil_sdk.migrations)."""
    from skil_sdk.migrations import migrate_home

    try:
        migrate_home(home, HOME_SCHEMA_VERSION)
    except OSError as exc:
        if (home / "home.json").exists():
            raise HomeError(
                f"SKIL_HOME {home} cannot be migrated ({exc.strerror}); make it writable."
            ) from exc


def home_path(*parts: str) -> Path:
    """A path inside SKIL_HOME (not created)."""
    return skil_home().joinpath(*parts)


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(name: str, timeout: float = -1) -> Iterator[None]:
    """Hold the named inter-process lock under ``SKIL_HOME/locks``."""
    lock_dir = ensure_dir(skil_home() / "locks")
    with FileLock(str(lock_dir / f"{name}.lock"), timeout=timeout):
        yield


@contextlib.contextmanager
def path_lock(path: Path, timeout: float = -1) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` (a ``.lock`` file beside it)."""
    ensure_dir(path.parent)
    with FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout):
        yield


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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

    def __init__(self, target: Path) -> None:
        self.target = target
        self.work_dir = target.with_name(f".{target.name}.{uuid.uuid4().hex}.work")

    def is_finalized(self) -> bool:
        """Whether ``target`` already exists (so there is nothing to write)."""
        return self.target.exists()


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[AtomicDirectory]:
    """Create ``target`` atomically; see :class:`AtomicDirectory`."""
    ensure_dir(target.parent)
    with path_lock(target):
        ad = AtomicDirectory(target)
        if ad.is_finalized():
            yield ad
            return
        ad.work_dir.mkdir()
        try:
            yield ad
            if not ad.is_finalized():
                _fsync_tree(ad.work_dir)
                os.rename(ad.work_dir, target)
                _fsync_dir(target.parent)
        finally:
            if ad.work_dir.exists():
                shutil.rmtree(ad.work_dir, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def remove_stale_work_dirs(parent: Path) -> int:
    """Remove leftovers of writers killed mid-write (``.*.work`` / ``.*.tmp``); count them."""
    removed = 0
    if not parent.exists():
        return 0
    for entry in parent.iterdir():
        if entry.name.startswith(".") and entry.name.endswith((".work", ".tmp")):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
            removed += 1
    return removed


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
