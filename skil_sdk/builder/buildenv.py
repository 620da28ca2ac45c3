"""Small, reusable PEP 517 build environments.

A backend that runs in an interpreter with a large site-packages is slow: setuptools
alone scans the entry points of every installed distribution. When the project's build
requirements are installed here, the build environment is a *view*: a folder of links
to just those distributions (and their dependencies), put on ``PYTHONPATH`` of an
interpreter started without ``site``. It costs milliseconds to create, needs no
network, and is cached under ``SKIL_HOME/cache/build-envs``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from skil_sdk.builder import cache
from skil_sdk.builder.hashing import inputs_hash
from skil_sdk.storage import atomic_directory, sweep_stale


def installed_view(requires: Sequence[str]) -> Path | None:
    """A view holding the installed ``requires`` and their dependencies, or None if unable."""
    dists = _closure(requires)
    if dists is None:
        return None
    key = inputs_hash(
        {"view": sorted((d.metadata["Name"] or "", d.version) for d in dists),
         "python": os.path.realpath(sys.executable)}
    )
    target = cache.build_envs_dir() / f"view-{key[:24]}"
    if (target / "view.json").exists():
        return target
    sweep_stale(target.parent)
    with atomic_directory(target) as ad:
        if not ad.is_finalized():
            for dist in dists:
                if not _link_dist(dist, ad.work_dir):
                    raise _NoView()
            (ad.work_dir / "view.json").write_text(
                json.dumps(sorted(f"{d.metadata['Name']}=={d.version}" for d in dists))
            )
    return target


class _NoView(Exception):
    pass


def try_installed_view(requires: Sequence[str]) -> Path | None:
    """:func:`installed_view`, or None when a distribution's files are not listed."""
    try:
        return installed_view(requires)
    except _NoView:
        return None


def _closure(requires: Sequence[str]) -> list[metadata.Distribution] | None:
    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, metadata.Distribution] = {}
    try:
        stack = [Requirement(r) for r in requires]
    except InvalidRequirement:
        return None
    while stack:
        req = stack.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            return None
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            return None
        name = canonicalize_name(dist.metadata["Name"] or req.name)
        if name in found:
            continue
        found[name] = dist
        for raw in dist.requires or ():
            try:
                stack.append(Requirement(raw))
            except InvalidRequirement:
                return None
    return list(found.values())


def _link_dist(dist: metadata.Distribution, view: Path) -> bool:
    """Link the top-level entries of ``dist`` into ``view``; False if it lists no files."""
    files = dist.files
    if not files:
        return False
    tops = set()
    for file in files:
        first = file.parts[0]
        if first in ("..", "__pycache__") or file.name.endswith(".pth"):
            continue
        tops.add(first)
    for top in sorted(tops):
        source = Path(str(dist.locate_file(top)))
        link = view / top
        if source.exists() and not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return True
