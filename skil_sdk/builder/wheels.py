"""Wheels of provider projects and of skil_sdk itself, cached by source digest.

A project is built with its PEP 517 backend in a clean temporary copy of its source
(so files deleted from the source never linger) with ``SOURCE_DATE_EPOCH`` fixed, so the
same source gives the same wheel bytes. The backend runs with this interpreter when
the project's build requirements are installed here, otherwise in a build environment
that is created once and reused (``SKIL_HOME/cache/build-envs``).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
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
from skil_sdk.builder.wheelinfo import WheelInfo, read_wheel
from skil_sdk.errors import BuildError, InvalidValueError
from skil_sdk.home import atomic_directory, atomic_write_text, sha256_file

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
    entry = cache.wheels_dir() / key
    hit = _load_entry(entry, digest)
    if hit is not None:
        return hit
    cache.sweep_stale(entry.parent)
    with atomic_directory(entry) as ad:
        if not ad.is_finalized():
            label = _project_name(project_dir)
            if progress:
                progress(f"Building the wheel of {label} ({project_dir})")
            files = source_files(project_dir, include)
            built = _build_in_clean_copy(project_dir, label, files, find_links, no_index, progress)
            try:
                _store_entry(ad.work_dir, built)
            finally:
                shutil.rmtree(built.parent.parent, ignore_errors=True)
    stored = _load_entry(entry, digest, cached=False)
    if stored is None:
        raise BuildError(
            f"The wheel cache entry {entry} is unreadable; run `skil-sdk cache prune`."
        )
    return stored


def sdk_wheel(progress: Progress | None = None) -> BuiltWheel:
    """The wheel of the running skil_sdk, built from its source tree (also when editable)."""
    root = sdk_source_root()
    if root is not None:
        return project_wheel(root, include=SDK_SOURCE_ENTRIES, progress=progress)
    from skil_sdk.builder.repack import installed_sdk_wheel

    return installed_sdk_wheel(progress)


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


def _store_entry(work_dir: Path, wheel: Path) -> None:
    info = read_wheel(wheel)
    shutil.copyfile(wheel, work_dir / wheel.name)
    sha = sha256_file(work_dir / wheel.name)
    atomic_write_text(
        work_dir / "wheel.json", json.dumps({"sha256": sha, "info": info.to_dict()}, indent=2)
    )


def _build_in_clean_copy(
    project_dir: Path,
    label: str,
    files: list[str],
    find_links: Sequence[Path],
    no_index: bool,
    progress: Progress | None,
) -> Path:
    """Copy ``files`` into a fresh temp dir, build a wheel there and return its path."""
    from skil_sdk.builder.backend import build_wheel

    tmp = Path(tempfile.mkdtemp(prefix="skil-wheel-"))
    try:
        src = tmp / "src" / project_dir.name
        for rel in files:
            target = src / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project_dir / rel, target)
        out = tmp / "dist"
        out.mkdir()
        return build_wheel(
            src,
            out,
            label=label,
            find_links=find_links,
            no_index=no_index,
            progress=progress,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
