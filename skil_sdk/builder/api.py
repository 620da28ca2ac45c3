"""``skil_sdk.build()`` and ``skil_sdk.publish()``: the bundle and the plugin store.

The bundle's hash is computed from every input and nothing else: the SDK wheel's
sha256, each plugin wheel's sha256, the locked third-party pins with their sha256, the
pex and pip versions, the target platform and the builder's schema version. A bundle
with that hash in the cache is returned without any other work.

A GPU bundle (``gpu=True``, for ``--execution-provider cuda``) carries onnxruntime-gpu
instead of onnxruntime; it is another bundle with another hash.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skil_sdk.builder import cache
from skil_sdk.builder.hashing import BUILDER_SCHEMA_VERSION, inputs_hash
from skil_sdk.builder.manifest import input_changes, write_manifest
from skil_sdk.builder.wheels import BuiltWheel, project_wheel, sdk_source_root, sdk_wheel
from skil_sdk.errors import IntegrityError
from skil_sdk.storage import atomic_directory, remove_dir, sha256_file, sweep_stale
from skil_sdk.store.plugins import PublishResult, current_plugins

if TYPE_CHECKING:
    from skil_sdk.builder.lock import Lock
    from skil_sdk.builder.targets import Target

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PluginRef:
    """A plugin wheel inside a bundle."""

    name: str
    version: str
    sha256: str
    filename: str = ""
    source: str = "store"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: name, version, sha256, filename, source (``store`` or ``project``)."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "filename": self.filename,
            "source": self.source,
        }


@dataclass
class BuildResult:
    """A bundle in the cache: its path, content hash and what it holds."""

    bundle: Path
    hash: str
    cached: bool
    plugins: list[PluginRef]
    seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The bundle's size in bytes."""
        return int(self.manifest.get("size", 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by ``skil-sdk build --json``."""
        return {
            "bundle": str(self.bundle),
            "hash": self.hash,
            "cached": self.cached,
            "plugins": [p.to_dict() for p in self.plugins],
            "seconds": round(self.seconds, 3),
            "size": self.size,
            "sha256": self.manifest.get("sha256"),
            "python": self.manifest.get("python"),
            "target": self.manifest.get("target"),
            "gpu": self.gpu,
        }

    @property
    def gpu(self) -> bool:
        """Whether the bundle carries onnxruntime-gpu instead of onnxruntime."""
        return bool(self.manifest.get("gpu", False))


@dataclass(frozen=True)
class _Plugin:
    ref: PluginRef
    path: Path
    requires: tuple[str, ...]
    wheel_entry: str | None = None


def ensure_bundle(
    extra_projects: Sequence[Path] = (),
    *,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    platform: str | None = None,
    complete_platform: Path | None = None,
    progress: Progress | None = None,
    verify: bool = False,
    gpu: bool = False,
) -> BuildResult:
    """The bundle of the published plugins plus ``extra_projects``: cached, or built now.

    With ``verify`` a cached bundle whose bytes no longer match its manifest is removed
    and built again. With ``gpu`` the bundle carries onnxruntime-gpu instead of
    onnxruntime (a plugin's requirement on onnxruntime becomes one on onnxruntime-gpu).
    """
    from skil_sdk.builder.lock import CPU_RUNTIME, lock_requirements, runtime_requirements
    from skil_sdk.builder.targets import resolve_target

    start = time.perf_counter()
    target = resolve_target(platform, complete_platform)
    sdk = sdk_wheel(progress)
    plugins = _plugins(extra_projects, find_links, no_index, progress)
    requirements = list(runtime_requirements(gpu))
    for plugin in plugins:
        requirements += plugin.requires  # with gpu, the lock maps onnxruntime at any depth
    lock = lock_requirements(
        requirements,
        target,
        find_links=find_links,
        no_index=no_index,
        gpu=gpu,
        progress=progress,
    )
    excludes = _excludes(sdk, plugins, {p.name for p in lock.pins})
    if gpu:  # the gpu build ships the same import package: never both in one bundle
        excludes = sorted({*excludes, CPU_RUNTIME})
    inputs: dict[str, Any] = {
        "schema": BUILDER_SCHEMA_VERSION,
        "sdk": [sdk.info.key, sdk.info.version, sdk.sha256],
        "plugins": sorted([p.ref.name, p.ref.version, p.ref.sha256] for p in plugins),
        "pins": lock.hash_inputs(),
        "excludes": excludes,
        "pex": metadata.version("pex"),
        "pip": metadata.version("pip"),
        "target": target.ident,
        "python": target.python_version,
    }
    if gpu:
        inputs["onnxruntime"] = "gpu"
    digest = inputs_hash(inputs)
    entry = cache.bundles_dir() / digest
    manifest = cache.read_manifest(entry)
    reason = None
    if manifest is not None and verify and not _intact(entry, manifest):
        remove_dir(entry)
        manifest = None
        reason = f"bundle {digest[:12]} no longer matches its manifest"
    built = False
    if manifest is None:
        sweep_stale(entry.parent)
        with atomic_directory(entry) as ad:
            if not ad.is_finalized():
                if progress:
                    progress(f"Building the bundle: {reason or _build_reason(inputs)}")
                _write_bundle(ad.work_dir, digest, inputs, sdk, plugins, lock, target, progress)
                built = True
        manifest = cache.read_manifest(entry)
        if manifest is None:
            raise IntegrityError(
                f"The bundle cache entry {entry} is incomplete; run `skil-sdk cache prune` and "
                "build again."
            )
    if not built:
        cache.touch(entry)
        if progress:
            progress(f"Reusing bundle {digest[:12]}")
    return _result(entry, manifest, not built, plugins, start)


def _write_bundle(
    work_dir: Path,
    digest: str,
    inputs: dict[str, Any],
    sdk: BuiltWheel,
    plugins: list[_Plugin],
    lock: Lock,
    target: Target,
    progress: Progress | None,
) -> None:
    """Assemble the bundle with these inputs and write its manifest into ``work_dir``."""
    from skil_sdk.builder.bundle import assemble

    name = f"skil-bundle-{digest[:12]}.pex"
    assemble(
        work_dir / name,
        requirements=[f"{sdk.info.key}=={sdk.info.version}"]
        + [f"{p.ref.name}=={p.ref.version}" for p in plugins]
        + [f"{p.name}=={p.version}" for p in lock.pins],
        wheels=[sdk.path] + [p.path for p in plugins] + [p.path for p in lock.pins],
        excludes=inputs["excludes"],
        target=target,
        progress=progress,
    )
    write_manifest(
        work_dir,
        name=name,
        digest=digest,
        inputs=inputs,
        target=target,
        sdk=sdk,
        plugins=[p.ref.to_dict() for p in plugins],
        pins=[p.to_dict() for p in lock.pins],
        lock_key=lock.key,
        wheel_entries=[sdk.path.parent.name] + [p.wheel_entry for p in plugins if p.wheel_entry],
        gpu=inputs.get("onnxruntime") == "gpu",
    )


def _build_reason(inputs: dict[str, Any]) -> str:
    """What differs between ``inputs`` and those of the closest cached bundle."""
    closest = cache.closest_bundle(inputs)
    if closest is None:
        return "none is cached for this target yet"
    changes = input_changes(closest.manifest.get("inputs", {}), inputs)
    return ", ".join(changes) or "its inputs changed"


def build(
    projects: Sequence[Path] | None = None,
    *,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    platform: str | None = None,
    complete_platform: Path | None = None,
    progress: Progress | None = None,
    gpu: bool = False,
) -> BuildResult:
    """Build (or find in the cache) the bundle, as ``skil-sdk build`` does.

    ``projects`` are provider project directories built into the bundle beside the
    published plugins. ``None`` means the current directory when it is a project (other
    than skil-sdk itself), else only the published plugins. With ``gpu`` the bundle
    carries onnxruntime-gpu instead of onnxruntime (for ``--execution-provider cuda``).
    """
    if projects is None:
        projects = _current_project()
    return ensure_bundle(
        [Path(p) for p in projects],
        find_links=[Path(p) for p in find_links],
        no_index=no_index,
        platform=platform,
        complete_platform=complete_platform,
        progress=progress,
        gpu=gpu,
    )


def publish(
    project_or_wheel: Path | str | None = None,
    server: str | None = None,
    *,
    token: str | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Publish a plugin (a project directory, built first, or a wheel), as ``skil-sdk publish``.

    With ``server`` the wheel is uploaded to that skil-sdk server instead of the local
    plugin store.
    """
    from skil_sdk.store.plugins import publish_wheel

    path = Path(project_or_wheel or Path.cwd())
    wheel = project_wheel(path, progress=progress).path if path.is_dir() else path
    if server:
        from skil_sdk.builder.remote import publish_remote

        return publish_remote(wheel, server, token=token, progress=progress)
    return publish_wheel(wheel)


def verify_bundle(result: BuildResult) -> None:
    """Check the bundle's bytes against its manifest; raise IntegrityError if they differ."""
    if not _intact(result.bundle.parent, result.manifest):
        raise IntegrityError(
            f"The bundle {result.bundle} does not match the sha256 in its manifest; run "
            "`skil-sdk build` to build it again."
        )


def _intact(entry: Path, manifest: dict[str, Any]) -> bool:
    path = entry / str(manifest.get("bundle", ""))
    return path.is_file() and sha256_file(path) == manifest.get("sha256")


def _result(
    entry: Path, manifest: dict[str, Any], cached: bool, plugins: list[_Plugin], start: float
) -> BuildResult:
    return BuildResult(
        bundle=entry / manifest["bundle"],
        hash=manifest["hash"],
        cached=cached,
        plugins=[p.ref for p in plugins],
        seconds=time.perf_counter() - start,
        manifest=manifest,
    )


def _plugins(
    projects: Sequence[Path],
    find_links: Sequence[Path],
    no_index: bool,
    progress: Progress | None,
) -> list[_Plugin]:
    found: dict[str, _Plugin] = {}
    for published in current_plugins():
        ref = PluginRef(published.key, published.version, published.sha256, published.filename)
        found[published.key] = _Plugin(ref, published.path, published.requires_dist)
    for project in projects:
        wheel: BuiltWheel = project_wheel(
            Path(project), find_links=find_links, no_index=no_index, progress=progress
        )
        info = wheel.info
        ref = PluginRef(info.key, info.version, wheel.sha256, info.filename, "project")
        found[info.key] = _Plugin(ref, wheel.path, info.requires_dist, wheel.path.parent.name)
    return [found[key] for key in sorted(found)]


def _excludes(sdk: BuiltWheel, plugins: list[_Plugin], pinned: set[str]) -> list[str]:
    """Requirements of the SDK and plugins that the bundle leaves out on purpose."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    bundled = pinned | {sdk.info.key} | {p.ref.name for p in plugins}
    names = {
        canonicalize_name(Requirement(raw).name)
        for raw in [*sdk.info.requires_dist, *(r for p in plugins for r in p.requires)]
    }
    return sorted(names - bundled)


def _current_project() -> list[Path]:
    cwd = Path.cwd()
    if not ((cwd / "pyproject.toml").exists() or (cwd / "setup.py").exists()):
        return []
    root = sdk_source_root()
    if root is not None and os.path.samefile(root, cwd):
        return []
    return [cwd]
