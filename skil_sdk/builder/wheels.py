"""Wheels of provider projects and of skil_sdk itself, cached by source digest.

A project is built with its PEP 517 backend in a clean copy of its source (a scratch
folder under ``SKIL_HOME/cache/tmp``, so files deleted from the source never linger)
with ``SOURCE_DATE_EPOCH`` and the umask fixed, so the same source gives the same wheel
bytes. The backend runs with this interpreter when the project's build requirements are
installed here, otherwise in a build environment that is created once and reused
(``SKIL_HOME/cache/build-envs``). An installed skil-sdk without a source tree is
repacked from its installed files (:mod:`skil_sdk.builder.repack`), keyed by its RECORD.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from skil_sdk.builder import cache
from skil_sdk.builder.hashing import (
    BUILDER_SCHEMA_VERSION,
    inputs_hash,
    source_digest,
    source_files,
)
from skil_sdk.errors import BuildError, InvalidValueError
from skil_sdk.storage import (
    atomic_directory,
    atomic_write_text,
    sha256_bytes,
    sha256_file,
    sweep_stale,
)
from skil_sdk.wheelinfo import WheelInfo, read_wheel

Progress = Callable[[str], None]

#: What of the skil-sdk source tree goes into its wheel (see pyproject.toml).
SDK_SOURCE_ENTRIES = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "skil_sdk",
    "templates",
)


@dataclass(frozen=True)
class BuiltWheel:
    """A wheel in the cache and what it was built from."""

    path: Path
    sha256: str
    info: WheelInfo
    digest: str
    cached: bool


def project_wheel(
    project_dir: Path,
    *,
    include: Sequence[str] | None = None,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    progress: Progress | None = None,
) -> BuiltWheel:
    """The wheel of the project at ``project_dir``: from the cache, or built now."""
    project_dir = Path(project_dir).resolve()
    if not (project_dir / "pyproject.toml").exists() and not (project_dir / "setup.py").exists():
        raise InvalidValueError(
            f"{project_dir} is not a Python project (no pyproject.toml or setup.py); pass a "
            "provider project directory or a wheel."
        )
    digest = source_digest(project_dir, include)
    key = inputs_hash(
        {"schema": BUILDER_SCHEMA_VERSION, "source": digest, "python": sys.implementation.cache_tag}
    )

    def build(work_dir: Path) -> Path:
        label = _project_name(project_dir)
        if progress:
            progress(f"Building the wheel of {label} ({project_dir})")
        files = source_files(project_dir, include)
        return _build_in_clean_copy(
            project_dir, label, files, work_dir, find_links, no_index, progress
        )

    return _cached_wheel(cache.wheels_dir() / key, digest, build)


def sdk_wheel(progress: Progress | None = None) -> BuiltWheel:
    """The wheel of the running skil_sdk, built from its source tree (also when editable)."""
    root = sdk_source_root()
    if root is not None:
        return project_wheel(root, include=SDK_SOURCE_ENTRIES, progress=progress)
    return installed_sdk_wheel(progress)


def installed_sdk_wheel(progress: Progress | None = None) -> BuiltWheel:
    """The wheel of the installed (non-editable) skil-sdk, from the cache or repacked now."""
    from importlib import metadata

    from skil_sdk.builder.repack import repack_wheel

    dist = metadata.distribution("skil-sdk")
    record = dist.read_text("RECORD") or ""
    if not record:
        raise BuildError(
            "The installed skil-sdk has no RECORD, so it cannot be bundled; reinstall it with pip."
        )
    digest = sha256_bytes(record.encode())
    key = inputs_hash({"schema": BUILDER_SCHEMA_VERSION, "installed": digest})

    def repack(work_dir: Path) -> Path:
        if progress:
            progress("Packing the installed skil-sdk into a wheel")
        return repack_wheel(dist, work_dir)

    return _cached_wheel(cache.wheels_dir() / key, digest, repack)


def sdk_source_root() -> Path | None:
    """The skil-sdk project directory this package runs from, if it runs from source."""
    import skil_sdk

    candidate = Path(skil_sdk.__file__).resolve().parent.parent
    pyproject = candidate / "pyproject.toml"
    if not pyproject.exists():
        return None
    import tomllib

    try:
        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
    except (OSError, ValueError):
        return None
    return candidate if name == "skil-sdk" else None


def _project_name(project_dir: Path) -> str:
    import tomllib

    try:
        data = tomllib.loads((project_dir / "pyproject.toml").read_text())
        return str(data["project"]["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return project_dir.name


def _cached_wheel(entry: Path, digest: str, make: Callable[[Path], Path]) -> BuiltWheel:
    """The wheel cached in ``entry``, or the one ``make(work_dir)`` writes into it now."""
    hit = _load_entry(entry, digest)
    if hit is not None:
        return hit
    sweep_stale(entry.parent)
    with atomic_directory(entry) as ad:
        if not ad.is_finalized():
            _describe_entry(ad.work_dir, make(ad.work_dir))
    stored = _load_entry(entry, digest, cached=False)
    if stored is None:
        raise BuildError(
            f"The wheel cache entry {entry} is unreadable; run `skil-sdk cache prune`."
        )
    return stored


def _load_entry(entry: Path, digest: str, cached: bool = True) -> BuiltWheel | None:
    meta = entry / "wheel.json"
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    info = WheelInfo.from_dict(data["info"])
    path = entry / info.filename
    if not path.exists():
        return None
    return BuiltWheel(path=path, sha256=data["sha256"], info=info, digest=digest, cached=cached)


def _describe_entry(work_dir: Path, wheel: Path) -> None:
    """Write ``wheel.json`` (sha256 and metadata) beside ``wheel``, already in ``work_dir``."""
    info = read_wheel(wheel)
    atomic_write_text(
        work_dir / "wheel.json",
        json.dumps({"sha256": sha256_file(wheel), "info": info.to_dict()}, indent=2),
    )


def _build_in_clean_copy(
    project_dir: Path,
    label: str,
    files: list[str],
    out_dir: Path,
    find_links: Sequence[Path],
    no_index: bool,
    progress: Progress | None,
) -> Path:
    """Copy ``files`` into a scratch folder, build a wheel there, copy it into ``out_dir``."""
    from skil_sdk.builder.backend import build_wheel

    with cache.scratch("wheel") as tmp:
        src = tmp / "src" / project_dir.name
        for rel in files:
            target = src / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project_dir / rel, target)
        dist = tmp / "dist"
        dist.mkdir()
        built = build_wheel(
            src,
            dist,
            label=label,
            find_links=find_links,
            no_index=no_index,
            progress=progress,
        )
        wheel = out_dir / built.name
        shutil.copyfile(built, wheel)
        return wheel
