"""The build cache under ``SKIL_HOME/cache``.

Layout::

    cache/
      wheelhouse/           third-party wheels (or $SKIL_WHEELHOUSE), shared by all builds
      wheels/<key>/         a built project wheel + wheel.json, keyed by source digest
      locks/<key>.json      resolved third-party pins with their sha256
      build-envs/<key>/     reusable PEP 517 build environments
      bundles/<hash>/       skil-bundle-<hash12>.pex + manifest.json

Every entry is a directory written with :func:`skil_sdk.home.atomic_directory`; a
writer killed half-way leaves only a hidden ``.NAME.<uuid>.work`` folder, which
:func:`sweep_stale` removes once nobody holds the entry's lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skil_sdk.home import ensure_dir, path_lock, skil_home, tree_size

_WORK_DIR = re.compile(r"^\.(?P<target>.+)\.[0-9a-f]{32}\.work$")


def cache_root() -> Path:
    """``SKIL_HOME/cache``."""
    return ensure_dir(skil_home() / "cache")


def wheels_dir() -> Path:
    """Cached project wheels, keyed by source digest."""
    return ensure_dir(cache_root() / "wheels")


def bundles_dir() -> Path:
    """Built bundles, keyed by content hash."""
    return ensure_dir(cache_root() / "bundles")


def locks_dir() -> Path:
    """Resolved third-party pins."""
    return ensure_dir(cache_root() / "locks")


def build_envs_dir() -> Path:
    """Reusable PEP 517 build environments."""
    return ensure_dir(cache_root() / "build-envs")


def wheelhouse_dir() -> Path:
    """Third-party wheels: ``$SKIL_WHEELHOUSE`` or ``SKIL_HOME/cache/wheelhouse``."""
    raw = os.environ.get("SKIL_WHEELHOUSE")
    path = Path(raw).expanduser().resolve() if raw else cache_root() / "wheelhouse"
    return ensure_dir(path)


def sweep_stale(parent: Path) -> int:
    """Remove work folders of writers that were killed (their lock is free); count them."""
    from filelock import Timeout

    removed = 0
    if not parent.exists():
        return 0
    for entry in parent.iterdir():
        match = _WORK_DIR.match(entry.name)
        if not match:
            continue
        try:
            with path_lock(parent / match.group("target"), timeout=0):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except Timeout:
            continue
    return removed


def remove_entry(target: Path) -> bool:
    """Remove a cache entry atomically (rename aside under its lock, then delete)."""
    with path_lock(target):
        if not target.exists():
            return False
        aside = target.with_name(f".{target.name}.{uuid.uuid4().hex}.work")
        os.rename(target, aside)
    shutil.rmtree(aside, ignore_errors=True)
    return True


@dataclass(frozen=True)
class BundleEntry:
    """One cached bundle."""

    hash: str
    bundle: Path
    size: int
    last_used: float
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk cache list --json``."""
        return {
            "hash": self.hash,
            "bundle": str(self.bundle),
            "size": self.size,
            "last_used": self.last_used,
            "plugins": self.manifest.get("plugins", []),
        }


def read_manifest(entry: Path) -> dict[str, Any] | None:
    """The manifest of a finalized bundle entry whose pex file exists, else None."""
    try:
        manifest: dict[str, Any] = json.loads((entry / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not (entry / str(manifest.get("bundle", ""))).is_file():
        return None
    return manifest


def list_bundles() -> list[BundleEntry]:
    """Cached bundles, most recently used first."""
    found = []
    for entry in bundles_dir().iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        manifest = read_manifest(entry)
        if manifest is None:
            continue
        pex = entry / manifest["bundle"]
        used = (entry / "manifest.json").stat().st_mtime
        found.append(BundleEntry(entry.name, pex, pex.stat().st_size, used, manifest))
    return sorted(found, key=lambda b: (-b.last_used, b.hash))


def touch(entry: Path) -> None:
    """Record that a bundle was used now (``cache prune`` keeps the recently used)."""
    with contextlib.suppress(OSError):
        os.utime(entry / "manifest.json")


@dataclass(frozen=True)
class PruneResult:
    """What ``cache prune`` removed."""

    removed_bundles: list[str]
    removed_wheels: int
    removed_locks: int
    freed_bytes: int
    kept: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk cache prune --json``."""
        return {
            "removed_bundles": self.removed_bundles,
            "removed_wheels": self.removed_wheels,
            "removed_locks": self.removed_locks,
            "freed_bytes": self.freed_bytes,
            "kept": self.kept,
        }


def prune(keep: int = 1) -> PruneResult:
    """Keep the ``keep`` most recently used bundles and what they reference; remove the rest."""
    bundles = list_bundles()
    kept, dropped = bundles[: max(keep, 0)], bundles[max(keep, 0) :]
    freed = 0
    for entry in dropped:
        freed += tree_size(entry.bundle.parent)
        remove_entry(entry.bundle.parent)
    wheel_keys = {k for b in kept for k in b.manifest.get("wheel_entries", [])}
    lock_keys = {b.manifest.get("lock") for b in kept}
    removed_wheels = 0
    for wheel_entry in wheels_dir().iterdir():
        name = wheel_entry.name
        if wheel_entry.is_dir() and not name.startswith(".") and name not in wheel_keys:
            freed += tree_size(wheel_entry)
            removed_wheels += remove_entry(wheel_entry)
    removed_locks = 0
    for lock in locks_dir().glob("*.json"):
        if lock.stem not in lock_keys:
            freed += lock.stat().st_size
            lock.unlink(missing_ok=True)
            removed_locks += 1
    for parent in (bundles_dir(), wheels_dir(), build_envs_dir()):
        sweep_stale(parent)
    return PruneResult([b.hash for b in dropped], removed_wheels, removed_locks, freed,
                       [b.hash for b in kept])


