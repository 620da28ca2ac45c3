"""The node cache: models and unpacked bundle wheels that jobs on a node share, bounded.

``SKIL_NODE_CACHE`` (default ``$TMPDIR/skil-node-cache-UID``) holds ``models/<sha256>/``
(from :mod:`skil_sdk.inference.fetch`) and ``pex/`` (the bundle's ``PEX_ROOT``: unpacked
wheels shared by all bundles, and one venv per bundle linking into them).
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
import time
from dataclasses import dataclass
from pathlib import Path

from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.bundlepaths import (
    INSTALLED_WHEELS,
    UNZIPPED_PEXES,
    VENVS,
    linked_wheels,
    running_venv,
    running_wheel_dirs,
    venv_wheels,
)
from skil_sdk.storage import tree_size

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
    """One evictable entry: a model directory, an unpacked wheel or a bundle's venv."""

    path: Path
    size: int
    last_used: float


def _last_used(path: Path) -> float:
    mark = path / USED_MARK
    try:
        return (mark if mark.exists() else path).stat().st_mtime
    except OSError:
        return 0.0


def venv_dirs(pex_root: Path) -> list[Path]:
    """The bundle venvs under ``pex_root`` (``venvs/<v>/<hash>/<hash>``, not the short links)."""
    found: list[Path] = []
    for version in _subdirs(pex_root / VENVS):
        for digest in _subdirs(version):
            if digest.name == "s":
                continue
            found += [v for v in _subdirs(digest) if (v / "pyvenv.cfg").is_file()]
    return found


def unzipped_pex_dirs(pex_root: Path) -> list[Path]:
    """The bundles pex unzipped to boot them (``unzipped_pexes/<v>/<hash>``)."""
    return [d for v in _subdirs(pex_root / UNZIPPED_PEXES) for d in _subdirs(v)]


def wheel_users(pex_root: Path) -> dict[Path, set[Path]]:
    """Each venv and unzipped bundle under ``pex_root``, with the unpacked wheels it links to."""
    users = {venv: venv_wheels(venv) for venv in venv_dirs(pex_root)}
    users.update({d: linked_wheels(d / ".deps") for d in unzipped_pex_dirs(pex_root)})
    return users


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(
            p
            for p in path.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        )
    except OSError:
        return []


def entries(root: Path) -> list[Entry]:
    """Every evictable entry under the node cache ``root``: models, unpacked wheels, venvs."""
    candidates: list[Path] = _subdirs(root / "models")
    for version in _subdirs(root / "pex" / INSTALLED_WHEELS):
        for digest in _subdirs(version):
            candidates += _subdirs(digest)
    candidates += venv_dirs(root / "pex") + unzipped_pex_dirs(root / "pex")
    return [Entry(p, tree_size(p), _last_used(p)) for p in candidates]


def evict(root: Path, max_bytes: int) -> list[Path]:
    """Remove least recently used entries not held by a live process until ``root`` fits.

    Venvs and unzipped bundles link into unpacked wheels, so a wheel goes together with
    every one that uses it, and stays when one of those is held.
    """
    found = sorted(entries(root), key=lambda e: e.last_used)
    sizes = {e.path: e.size for e in found}
    users = wheel_users(root / "pex")
    total = sum(sizes.values())
    removed: list[Path] = []
    for entry in found:
        if total <= max_bytes:
            break
        if entry.path in removed:
            continue
        dependents = [u for u, wheels in users.items() if entry.path in wheels and u not in removed]
        group = [*dependents, entry.path]
        if any(str(p) in _HELD for p in group) or not _remove_unheld(group):
            continue
        for path in group:
            total -= sizes[path]
            removed.append(path)
    return removed


def _remove_unheld(paths: list[Path]) -> bool:
    """Remove ``paths`` (and a venv's short link) if no process holds any; True if removed."""
    fds: list[int] = []
    try:
        for path in paths:
            fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        for path in paths:
            if VENVS in path.parts:
                _remove_short_links(path)
            doomed = path.with_name(f".{path.name}.evicted-{time.time_ns()}")
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        return True
    finally:
        for fd in fds:
            os.close(fd)


def _remove_short_links(venv: Path) -> None:
    """Remove pex's short-path folders (``venvs/<v>/s/<id>/venv`` links) that name ``venv``."""
    real = os.path.realpath(venv)
    for short in (venv.parent.parent / "s").glob("*/venv"):
        if short.is_symlink() and os.path.realpath(short) == real:
            shutil.rmtree(short.parent, ignore_errors=True)


def hold_running_bundle() -> None:
    """Hold the unpacked wheels this process imports from, and the venv it runs in."""
    for wheel in running_wheel_dirs():
        hold(wheel)
    venv = running_venv()
    if venv is not None:
        hold(venv)


def enforce(root: Path) -> list[Path]:
    """Apply ``SKIL_NODE_CACHE_MAX`` (if set) to ``root``; return what was removed."""
    raw = os.environ.get("SKIL_NODE_CACHE_MAX")
    if not raw:
        return []
    return evict(root, parse_size(raw))
