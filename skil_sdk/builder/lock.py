"""The third-party pins of a bundle, with the sha256 of every wheel.

The lock pins each requirement to the version installed in the current environment
(which is what the SDK and the plugins were developed and tested against), walking
``Requires-Dist`` with the target's markers. Requirements the environment cannot
satisfy are resolved by ``pip download`` constrained to those pins. Every pinned wheel
is taken from the wheelhouse (``$SKIL_WHEELHOUSE`` or ``SKIL_HOME/cache/wheelhouse``)
or ``--find-links`` directories, and downloaded there by pip when missing.

A computed lock is stored in ``SKIL_HOME/cache/locks``, keyed by its inputs, so a
rebuild does no resolving and hashes no wheel.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from skil_sdk.builder import cache
from skil_sdk.builder.hashing import inputs_hash
from skil_sdk.builder.pipdl import pip_download
from skil_sdk.builder.targets import Target
from skil_sdk.errors import BuildError
from skil_sdk.storage import atomic_write_text, scratch_dir, sha256_file, sweep_stale
from skil_sdk.wheelinfo import read_wheel

Progress = Callable[[str], None]

#: What the skil_sdk runtime imports on the driver and the executors.
RUNTIME_REQUIREMENTS = (
    "onnxruntime",
    "numpy",
    "pyarrow",
    "pandas",
    "pluggy",
    "filelock",
    "click",
    "packaging",
    "httpx",
    "pillow",
)
#: Never inside a bundle: Spark ships pyspark/py4j itself; skil-sdk is its own wheel.
NEVER_BUNDLED = frozenset({"pyspark", "py4j", "skil-sdk"})
#: The CPU build of onnxruntime and the CUDA build a GPU bundle carries instead. Both
#: ship the same ``onnxruntime`` import package, so a bundle holds exactly one of them.
CPU_RUNTIME = "onnxruntime"
GPU_RUNTIME = "onnxruntime-gpu"


def runtime_requirements(gpu: bool = False) -> tuple[str, ...]:
    """What the skil_sdk runtime needs; with ``gpu``, onnxruntime-gpu instead of onnxruntime."""
    if not gpu:
        return RUNTIME_REQUIREMENTS
    return tuple(gpu_requirement(r) for r in RUNTIME_REQUIREMENTS)


def gpu_requirement(requirement: str) -> str:
    """``requirement`` with onnxruntime replaced by onnxruntime-gpu (same specifier and marker).

    >>> gpu_requirement("onnxruntime>=1.17")
    'onnxruntime-gpu>=1.17'
    >>> gpu_requirement("numpy>=2")
    'numpy>=2'
    """
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if canonicalize_name(req.name) != CPU_RUNTIME:
        return requirement
    req.name = GPU_RUNTIME
    return str(req)


@dataclass(frozen=True)
class Pin:
    """One locked third-party wheel."""

    name: str
    version: str
    filename: str
    sha256: str
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the path is where it lies on this machine, not a hash input)."""
        return {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "sha256": self.sha256,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class Lock:
    """The resolved pins and the key they are cached under."""

    key: str
    pins: tuple[Pin, ...]

    def hash_inputs(self) -> list[list[str]]:
        """What of the lock enters the bundle hash: name, version, file name, sha256."""
        return [[p.name, p.version, p.filename, p.sha256] for p in self.pins]


def lock_requirements(
    requirements: Sequence[str],
    target: Target,
    *,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    gpu: bool = False,
    progress: Progress | None = None,
) -> Lock:
    """Pin ``requirements`` and their dependencies to wheels for ``target``.

    With ``gpu`` every requirement on onnxruntime, direct or not, becomes one on
    onnxruntime-gpu, and onnxruntime itself is never pinned.
    """
    pinned, unresolved = _cached_closure(requirements, target, gpu)
    wheelhouse = cache.wheelhouse_dir()
    links = [Path(p).resolve() for p in find_links]
    key = inputs_hash(
        {
            "pins": sorted(pinned.items()),
            "unresolved": unresolved,
            "target": target.ident,
            "find_links": [str(p) for p in links],
            "no_index": no_index,
            "wheelhouse": str(wheelhouse),
            **({"gpu": True} if gpu else {}),
        }
    )
    stored = _load(key)
    if stored is not None:
        return stored
    sweep_stale(wheelhouse)  # download folders of killed builds
    if progress:
        progress(f"Resolving {len(pinned) + len(unresolved)} third-party requirements")
    if unresolved:
        pinned.update(_resolve_with_pip(unresolved, pinned, target, links, no_index, progress))
    if gpu:  # pip may pull onnxruntime in for a dependency; the gpu build replaces it
        pinned.pop(CPU_RUNTIME, None)
    found = _select_wheels(pinned, target, [wheelhouse, *links])
    missing = sorted(set(pinned) - set(found))
    if missing:
        specs = [f"{name}=={pinned[name]}" for name in missing]
        if progress:
            progress(f"Downloading {len(specs)} wheels into {wheelhouse}")
        _download_into(wheelhouse, specs, target, links, no_index, progress, no_deps=True)
        found = _select_wheels(pinned, target, [wheelhouse, *links])
    still_missing = sorted(set(pinned) - set(found))
    if still_missing:
        name = still_missing[0]
        raise BuildError(
            f"No wheel of {name}=={pinned[name]} for {target.ident} was found; pass "
            "--find-links DIR with one (or --complete-platform for another platform)."
        )
    pins = tuple(
        Pin(name, pinned[name], found[name].name, sha256_file(found[name]), found[name])
        for name in sorted(pinned)
        if name in found
    )
    lock = Lock(key, pins)
    atomic_write_text(
        cache.locks_dir() / f"{key}.json",
        json.dumps({"key": key, "pins": [p.to_dict() for p in pins]}, indent=2),
    )
    return lock


def _cached_closure(
    requirements: Sequence[str], target: Target, gpu: bool = False
) -> tuple[dict[str, str], list[str]]:
    """:func:`installed_closure`, cached until an import path of this interpreter changes."""
    stamps = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            stamps.append([entry, os.stat(entry or ".").st_mtime_ns])
    key = inputs_hash(
        {
            "requirements": sorted(requirements),
            "target": target.ident,
            "python": sys.executable,
            "paths": stamps,
            **({"gpu": True} if gpu else {}),
        }
    )
    path = cache.locks_dir() / f"closure-{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads(path.read_text())
        return dict(data["pins"]), list(data["unresolved"])
    pins, unresolved = installed_closure(requirements, target, gpu=gpu)
    atomic_write_text(path, json.dumps({"pins": pins, "unresolved": unresolved}))
    return pins, unresolved


def installed_closure(
    requirements: Iterable[str], target: Target, *, gpu: bool = False
) -> tuple[dict[str, str], list[str]]:
    """Pin what the current environment satisfies; return (pins, unresolved requirements).

    With ``gpu`` a requirement on onnxruntime, at any depth, is one on onnxruntime-gpu.
    """
    from packaging.requirements import Requirement

    installed: dict[str, metadata.Distribution | None] = {}

    def lookup(name: str) -> metadata.Distribution | None:
        if name not in installed:
            try:
                installed[name] = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                installed[name] = None
        return installed[name]

    pins: dict[str, str] = {}
    unresolved: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    rename = gpu_requirement if gpu else str
    stack: list[tuple[Any, frozenset[str]]] = [
        (Requirement(rename(r)), frozenset()) for r in requirements
    ]
    while stack:
        req, parent_extras = stack.pop()
        if req.marker is not None and not any(
            req.marker.evaluate({**target.markers, "extra": extra})
            for extra in (parent_extras or {""})
        ):
            continue
        key = canonicalize_name(req.name)
        if key in NEVER_BUNDLED:
            continue
        dist = lookup(key)
        version = pins.get(key) or (dist.version if dist is not None else None)
        if version is None or (req.specifier and not req.specifier.contains(version, True)):
            unresolved.add(_without_marker(req))
            continue
        pins[key] = version
        extras = frozenset(req.extras)
        if (key, extras) in seen or dist is None:
            continue
        seen.add((key, extras))
        for raw in dist.requires or ():
            stack.append((Requirement(rename(raw)), extras))
    return pins, sorted(unresolved)


def _without_marker(req: Any) -> str:
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def _load(key: str) -> Lock | None:
    try:
        data = json.loads((cache.locks_dir() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    pins = tuple(
        Pin(p["name"], p["version"], p["filename"], p["sha256"], Path(p["path"]))
        for p in data["pins"]
    )
    if not all(p.path.is_file() for p in pins):
        return None
    return Lock(key, pins)


def _select_wheels(pinned: dict[str, str], target: Target, dirs: Sequence[Path]) -> dict[str, Path]:
    """The best wheel for each pin among ``dirs`` (first directory wins a tie)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import Version

    rank = target.tag_rank()
    best: dict[str, tuple[int, int, Path]] = {}
    for order, directory in enumerate(dirs):
        if not directory.is_dir():
            continue
        for filename in sorted(os.listdir(directory)):
            if not filename.endswith(".whl") or filename.startswith("."):
                continue
            try:
                name, version, _build, tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            key = str(name)
            if key not in pinned or version != Version(pinned[key]):
                continue
            score = min((rank[str(t)] for t in tags if str(t) in rank), default=None)
            if score is None:
                continue
            current = best.get(key)
            if current is None or (score, order) < current[:2]:
                best[key] = (score, order, directory / filename)
    return {key: value[2] for key, value in best.items()}


def _resolve_with_pip(
    unresolved: list[str],
    pinned: dict[str, str],
    target: Target,
    links: Sequence[Path],
    no_index: bool,
    progress: Progress | None,
) -> dict[str, str]:
    files = _download_into(
        cache.wheelhouse_dir(),
        unresolved,
        target,
        links,
        no_index,
        progress,
        constraints=[f"{name}=={version}" for name, version in sorted(pinned.items())],
    )
    resolved: dict[str, str] = {}
    for path in files:
        info = read_wheel(path)
        if info.key not in NEVER_BUNDLED:
            resolved[info.key] = info.version
    return resolved


def _download_into(
    wheelhouse: Path,
    specs: Sequence[str],
    target: Target,
    links: Sequence[Path],
    no_index: bool,
    progress: Progress | None,
    *,
    no_deps: bool = False,
    constraints: Sequence[str] = (),
) -> list[Path]:
    """Download wheels for ``specs`` and move them into ``wheelhouse``; return their paths."""
    with scratch_dir(wheelhouse, "download") as work:
        downloaded = pip_download(
            specs,
            work,
            target=target,
            find_links=[wheelhouse, *links],
            no_index=no_index,
            no_deps=no_deps,
            constraints=constraints,
            progress=progress,
        )
        placed = []
        for path in downloaded:
            final = wheelhouse / path.name
            if not final.exists():
                os.replace(path, final)
            placed.append(final)
        return placed
