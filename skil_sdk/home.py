"""The layout of ``SKIL_HOME`` and its file locks.

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
into place while a file lock is held, so a crash never leaves a half-written entry. The
atomic writes, directories and digests are :mod:`skil_sdk.storage`'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from skil_sdk.errors import HomeError
from skil_sdk.storage import ensure_dir

HOME_SCHEMA_VERSION = 1


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


@contextlib.contextmanager
def file_lock(name: str, timeout: float = -1) -> Iterator[None]:
    """Hold the named inter-process lock under ``SKIL_HOME/locks``."""
    lock_dir = ensure_dir(skil_home() / "locks")
    with FileLock(str(lock_dir / f"{name}.lock"), timeout=timeout):
        yield


__all__ = ["HOME_SCHEMA_VERSION", "file_lock", "home_path", "skil_home"]
