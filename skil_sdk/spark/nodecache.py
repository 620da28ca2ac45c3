"""The node cache: models and unpacked bundle wheels that jobs on a node share, bounded.

``SKIL_NODE_CACHE`` (default ``$TMPDIR/skil-node-cache-UID``) holds ``models/<sha256>/``
(from :mod:`skil_sdk.inference.fetch`) and ``pex/`` (the bundle's ``PEX_ROOT``).
With ``SKIL_NODE_CACHE_MAX`` (``20g``, ``500m``...) set, the least recently used entries
are removed after a model is fetched until the cache fits, but never one that a live
Python worker holds: each worker takes a shared ``flock`` on the entries it uses and
keeps it for its lifetime; eviction needs an exclusive one, without waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from skil_sdk.errors import InvalidValueError

_HELD: dict[str, int] = {}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmgt]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
USED_MARK = ".last-used"


def parse_size(text: str) -> int:
    """Bytes of a size such as ``500m``, ``20g`` or ``1048576``."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise InvalidValueError(
            f"SKIL_NODE_CACHE_MAX={text!r} is not a size; use e.g. 20g or 500m."
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _lock_path(entry: Path) -> Path:
    return entry.parent / f".{entry.name}.lock"


def hold(entry: Path) -> None:
    """Mark ``entry`` as in use by this process (shared lock, kept) and as just used."""
    key = str(entry)
    if key in _HELD or not entry.exists():
        return
    fd = os.open(_lock_path(entry), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _HELD[key] = fd
    with contextlib.suppress(OSError):
        if entry.is_dir():
            (entry / USED_MARK).touch()
        else:
            os.utime(entry)


@dataclass(frozen=True)
class Entry:
    """One evictable entry: a model directory or an unpacked wheel of a bundle."""

    path: Path
    size: int
    last_used: float


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _last_used(path: Path) -> float:
    mark = path / USED_MARK
    try:
        return (mark if mark.exists() else path).stat().st_mtime
    except OSError:
        return 0.0


def entries(root: Path) -> list[Entry]:
    """Every evictable entry under the node cache ``root``."""
    candidates: list[Path] = []
    models = root / "models"
    if models.is_dir():
        candidates += [p for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")]
    wheels = root / "pex" / "installed_wheels"
    if wheels.is_dir():
        for version in wheels.iterdir():
            for digest in version.iterdir() if version.is_dir() else []:
                candidates += [p for p in digest.iterdir() if p.is_dir()]
    return [Entry(p, _tree_size(p), _last_used(p)) for p in candidates]


def evict(root: Path, max_bytes: int) -> list[Path]:
    """Remove least recently used entries not held by a live process until ``root`` fits."""
    found = sorted(entries(root), key=lambda e: e.last_used)
    total = sum(e.size for e in found)
    removed: list[Path] = []
    for entry in found:
        if total <= max_bytes:
            break
        if str(entry.path) in _HELD:
            continue
        fd = os.open(_lock_path(entry.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            doomed = entry.path.with_name(f".{entry.path.name}.evicted-{time.time_ns()}")
            os.rename(entry.path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            total -= entry.size
            removed.append(entry.path)
        finally:
            os.close(fd)
    return removed


def hold_running_bundle(pex_root: Path) -> None:
    """Hold the unpacked wheels this process imports from (they are on ``sys.path``)."""
    wheels = (pex_root / "installed_wheels").resolve()
    for item in sys.path:
        path = Path(item)
        with contextlib.suppress(ValueError, OSError):
            relative = path.resolve().relative_to(wheels)
            if len(relative.parts) >= 3:
                hold(wheels.joinpath(*relative.parts[:3]))


def enforce(root: Path) -> list[Path]:
    """Apply ``SKIL_NODE_CACHE_MAX`` (if set) to ``root``; return what was removed."""
    raw = os.environ.get("SKIL_NODE_CACHE_MAX")
    if not raw:
        return []
    return evict(root, parse_size(raw))
