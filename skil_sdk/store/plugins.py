"""The plugin store: published plugin wheels under ``SKIL_HOME/plugins``.

Layout: ``plugins/<normalized-name>/<version>/`` holds the wheel and ``plugin.json``
(name, version, sha256, entry points, requirements). Versions are immutable: the same
name and version with other bytes is refused, the same bytes again is a no-op. The
bundle jobs use holds the latest version of every published plugin.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from skil_sdk.errors import ConflictError, InvalidValueError, NotFoundError
from skil_sdk.home import file_lock, skil_home
from skil_sdk.storage import (
    atomic_directory,
    atomic_write_text,
    ensure_dir,
    remove_dir,
    sha256_file,
    sweep_stale,
)

_META = "plugin.json"


@dataclass(frozen=True)
class PublishedPlugin:
    """One published version of a plugin."""

    name: str
    version: str
    sha256: str
    filename: str
    path: Path
    entry_points: dict[str, str] = field(default_factory=dict, hash=False)
    requires_dist: tuple[str, ...] = ()
    published_at: str = ""

    @property
    def key(self) -> str:
        """The normalized project name."""
        return canonicalize_name(self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk plugins`` and the server."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "filename": self.filename,
            "path": str(self.path),
            "entry_points": self.entry_points,
            "requires_dist": list(self.requires_dist),
            "published_at": self.published_at,
        }


@dataclass(frozen=True)
class PublishResult:
    """The outcome of publishing a wheel; ``published`` is False for a repeated publish."""

    plugin: PublishedPlugin
    published: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk publish --json``."""
        return {**self.plugin.to_dict(), "published": self.published}


def plugins_dir() -> Path:
    """``SKIL_HOME/plugins``."""
    return ensure_dir(skil_home() / "plugins")


def publish_wheel(path: Path) -> PublishResult:
    """Add a plugin wheel to the store; refuse one without a provider or a changed version."""
    from packaging.version import InvalidVersion, Version

    from skil_sdk.wheelinfo import read_wheel

    path = Path(path)
    if not path.is_file() or path.suffix != ".whl":
        raise InvalidValueError(f"{path} is not a wheel file; pass a .whl or a project directory.")
    info = read_wheel(path)
    if not info.plugin_entry_points:
        raise InvalidValueError(
            f"{info.name} {info.version} registers no provider (its wheel has no `skil_sdk` "
            "entry point); add `[project.entry-points.skil_sdk] NAME = \"your_module\"` to its "
            "pyproject.toml and rebuild."
        )
    try:
        version = str(Version(info.version))
    except InvalidVersion as exc:
        raise InvalidValueError(f"{info.name} has an invalid version {info.version!r}.") from exc
    sha = sha256_file(path)
    entry = plugins_dir() / info.key / version
    with file_lock("plugins"):
        existing = _read(entry)
        if existing is not None:
            if existing.sha256 == sha:
                return PublishResult(existing, published=False)
            raise ConflictError(
                f"{info.name} {version} is already published with different content; versions "
                "are immutable, so bump the version and publish again."
            )
        sweep_stale(entry.parent)
        with atomic_directory(entry) as ad:
            if not ad.is_finalized():
                shutil.copyfile(path, ad.work_dir / path.name)
                if sha256_file(ad.work_dir / path.name) != sha:
                    raise InvalidValueError(f"{path} changed while it was published; try again.")
                meta = {
                    "name": info.name,
                    "version": version,
                    "sha256": sha,
                    "filename": path.name,
                    "entry_points": info.plugin_entry_points,
                    "requires_dist": list(info.requires_dist),
                    "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                atomic_write_text(ad.work_dir / _META, json.dumps(meta, indent=2))
    stored = _read(entry)
    assert stored is not None
    return PublishResult(stored, published=True)


def list_plugins() -> list[PublishedPlugin]:
    """Every published version of every plugin, by name then version."""
    from packaging.version import Version

    found = []
    root = plugins_dir()
    for name_dir in sorted(root.iterdir()):
        if not name_dir.is_dir() or name_dir.name.startswith("."):
            continue
        for version_dir in name_dir.iterdir():
            if version_dir.name.startswith("."):
                continue
            plugin = _read(version_dir)
            if plugin is not None:
                found.append(plugin)
    return sorted(found, key=lambda p: (p.key, Version(p.version)))


def current_plugins() -> list[PublishedPlugin]:
    """The latest published version of each plugin (what the jobs' bundle holds)."""
    latest: dict[str, PublishedPlugin] = {}
    for plugin in list_plugins():
        latest[plugin.key] = plugin
    return [latest[key] for key in sorted(latest)]


def get_plugin(name: str, version: str | None = None) -> PublishedPlugin:
    """A published plugin by project name (or provider entry-point name); latest by default."""
    versions = _versions_of(name)
    if version is not None:
        from packaging.version import Version

        versions = [p for p in versions if Version(p.version) == Version(version)]
    if not versions:
        label = name if version is None else f"{name}=={version}"
        raise NotFoundError(
            f"No published plugin {label}; see `skil-sdk plugins list`, or publish it with "
            "`skil-sdk publish`."
        )
    return versions[-1]


def remove_plugin(name: str, version: str | None = None) -> list[PublishedPlugin]:
    """Remove one version of a plugin, or all of its versions; return what was removed."""
    removed = [get_plugin(name, version)] if version is not None else _versions_of(name)
    if not removed:
        get_plugin(name)
    with file_lock("plugins"):
        for plugin in removed:
            remove_dir(plugin.path.parent)
        parent = removed[0].path.parent.parent
        if parent.exists() and not any(p for p in parent.iterdir() if p.suffix != ".lock"):
            shutil.rmtree(parent, ignore_errors=True)
    return removed


def _versions_of(name: str) -> list[PublishedPlugin]:
    key = canonicalize_name(name)
    every = list_plugins()
    by_name = [p for p in every if p.key == key]
    return by_name or [p for p in every if name in p.entry_points]


def _read(entry: Path) -> PublishedPlugin | None:
    try:
        data = json.loads((entry / _META).read_text())
    except (OSError, ValueError):
        return None
    path = entry / data["filename"]
    if not path.is_file():
        return None
    return PublishedPlugin(
        name=data["name"],
        version=data["version"],
        sha256=data["sha256"],
        filename=data["filename"],
        path=path,
        entry_points=dict(data.get("entry_points", {})),
        requires_dist=tuple(data.get("requires_dist", ())),
        published_at=data.get("published_at", ""),
    )
