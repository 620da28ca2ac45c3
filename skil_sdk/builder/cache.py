"""The build cache under ``SKIL_HOME/cache``.

Layout::

    cache/
      wheelhouse/           third-party wheels (or $SKIL_WHEELHOUSE), shared by all builds
      wheels/<key>/         a built project wheel + wheel.json, keyed by source digest
      locks/<key>.json      resolved third-party pins with their sha256
      build-envs/<key>/     reusable PEP 517 build environments
      bundles/<hash>/       skil-bundle-<hash12>.pex + manifest.json
      tmp/                  TMPDIR of the tools a build runs, one folder each, removed after

``cache prune`` also removes what bundles' first runs on this machine left in the
system's temp dir (:func:`sweep_pex_leftovers`).

Every entry is a directory written with :func:`skil_sdk.storage.atomic_directory`; a
writer killed half-way leaves only a hidden ``.NAME.<uuid>.work`` folder, which
:func:`skil_sdk.storage.sweep_stale` removes once nobody holds the entry's lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skil_sdk.home import skil_home
from skil_sdk.storage import ensure_dir, remove_dir, scratch_dir, sweep_stale, tree_size


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


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A scratch folder under ``cache/tmp`` for one step of a build, removed after it.

    Folders that killed builds left there are removed first.
    """
    parent = ensure_dir(cache_root() / "tmp")
    sweep_stale(parent)
    with scratch_dir(parent, prefix) as path:
        yield path


@contextlib.contextmanager
def tool_env(base: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The environment for a tool a build runs (pip, a PEP 517 backend, pex).

    ``base`` (default: this process's environment) with ``TMPDIR`` pointing at a
    scratch folder that is removed when the tool is done, so that nothing the tool
    leaves in its temporary directory stays in the system's.
    """
    with scratch("tool") as tmp:
        env = dict(os.environ if base is None else base)
        env.update({"TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)})
        yield env


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


def closest_bundle(inputs: dict[str, Any]) -> BundleEntry | None:
    """The cached bundle for the same target and runtime sharing most plugins with ``inputs``.

    Among equals the most recently used; None when there is none for that target.
    """
    names = {p[0] for p in inputs.get("plugins", [])}
    same_target = [
        b
        for b in list_bundles()
        if all(
            b.manifest.get("inputs", {}).get(key) == inputs.get(key)
            for key in ("target", "onnxruntime")
        )
    ]
    if not same_target:
        return None

    def shared(bundle: BundleEntry) -> tuple[int, float]:
        plugins = bundle.manifest.get("inputs", {}).get("plugins", [])
        return len(names & {p[0] for p in plugins}), bundle.last_used

    return max(same_target, key=shared)


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
    #: pex's leftover wheel copies removed from the temp dir (:func:`sweep_pex_leftovers`).
    removed_temp_dirs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk cache prune --json``."""
        return {
            "removed_bundles": self.removed_bundles,
            "removed_wheels": self.removed_wheels,
            "removed_locks": self.removed_locks,
            "removed_temp_dirs": self.removed_temp_dirs,
            "freed_bytes": self.freed_bytes,
            "kept": self.kept,
        }


#: The folders pex unpacks a wheel through on a bundle's first run.
PEX_LEFTOVER_PREFIX = "pex-whl-install."
#: An unpacking takes seconds; a folder this old is no longer in use.
PEX_LEFTOVER_AGE_S = 3600.0


def pex_leftovers(
    temp_dir: Path | None = None, older_than_s: float = PEX_LEFTOVER_AGE_S
) -> list[Path]:
    """pex's wheel copies this user's bundles left in the temp dir (default: the system's).

    A bundle's first run started without :data:`skil_sdk.builder.bundle.RUN_ENV` (by
    hand, by an older skil-sdk, or killed half-way) leaves a ``pex-whl-install.*``
    folder per wheel, hundreds of megabytes per bundle. Only this user's folders older
    than ``older_than_s`` count, so an unpacking under way keeps its own.
    """
    root = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    cutoff = time.time() - older_than_s
    found: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            if not entry.name.startswith(PEX_LEFTOVER_PREFIX):
                continue
            try:
                info = entry.lstat()
            except OSError:
                continue
            if not stat.S_ISDIR(info.st_mode):
                continue
            if info.st_uid == os.getuid() and info.st_mtime <= cutoff:
                found.append(entry)
    return sorted(found)


def sweep_pex_leftovers(
    temp_dir: Path | None = None, older_than_s: float = PEX_LEFTOVER_AGE_S
) -> tuple[int, int]:
    """Remove :func:`pex_leftovers`; how many folders were removed, and their bytes."""
    removed = freed = 0
    for entry in pex_leftovers(temp_dir, older_than_s):
        size = tree_size(entry)
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed += 1
            freed += size
    return removed, freed


def _session_bundle() -> str | None:
    """The hash of the bundle the long-lived Spark session runs, while it is up (its
    executors may fetch the file at any time)."""
    from skil_sdk.session.state import read_state

    state = read_state()
    return state.bundle_hash if state.is_up else None


def prune(keep: int = 1) -> PruneResult:
    """Keep the ``keep`` most recently used bundles, the running Spark session's, and what
    they reference; remove the rest."""
    bundles = list_bundles()
    kept, dropped = bundles[: max(keep, 0)], bundles[max(keep, 0) :]
    in_use = _session_bundle()
    kept += [b for b in dropped if b.hash == in_use]
    dropped = [b for b in dropped if b.hash != in_use]
    freed = 0
    for entry in dropped:
        freed += tree_size(entry.bundle.parent)
        remove_dir(entry.bundle.parent)
    wheel_keys = {k for b in kept for k in b.manifest.get("wheel_entries", [])}
    lock_keys = {b.manifest.get("lock") for b in kept}
    removed_wheels = 0
    for wheel_entry in wheels_dir().iterdir():
        name = wheel_entry.name
        if wheel_entry.is_dir() and not name.startswith(".") and name not in wheel_keys:
            freed += tree_size(wheel_entry)
            removed_wheels += remove_dir(wheel_entry)
    removed_locks = 0
    for lock in locks_dir().glob("*.json"):
        if lock.stem not in lock_keys:
            freed += lock.stat().st_size
            lock.unlink(missing_ok=True)
            removed_locks += 1
    for parent in (bundles_dir(), wheels_dir(), build_envs_dir(), cache_root() / "tmp"):
        sweep_stale(parent)
    removed_temp, freed_temp = sweep_pex_leftovers()
    return PruneResult(
        [b.hash for b in dropped],
        removed_wheels,
        removed_locks,
        freed + freed_temp,
        [b.hash for b in kept],
        removed_temp,
    )


