"""Where the running bundle's code lies under ``PEX_ROOT``.

A bundle runs as a pex ``--venv`` (see :mod:`skil_sdk.builder.bundle`): its first run on
a node unpacks each wheel once into ``PEX_ROOT/installed_wheels/<v>/<sha256>/<wheel>/``
and makes a virtualenv under ``PEX_ROOT/venvs/`` whose ``site-packages`` entries are
symbolic links into those wheel folders; later runs start that venv's Python directly.
A bundle built as a plain zipapp instead puts the wheel folders on ``sys.path``. Both
layouts are recognised here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

INSTALLED_WHEELS = "installed_wheels"
VENVS = "venvs"
UNZIPPED_PEXES = "unzipped_pexes"


def installed_wheel_of(path: Path) -> Path | None:
    """The unpacked wheel folder (``installed_wheels/<v>/<sha256>/<wheel>``) holding ``path``."""
    parts = path.parts
    if INSTALLED_WHEELS not in parts:
        return None
    index = len(parts) - 1 - parts[::-1].index(INSTALLED_WHEELS)
    if len(parts) < index + 4:
        return None
    return Path(*parts[: index + 4])


def site_packages_of(venv: Path) -> list[Path]:
    """The ``site-packages`` folders of the virtualenv ``venv``."""
    return sorted(p for p in (venv / "lib").glob("python*/site-packages") if p.is_dir())


def linked_wheels(site_packages: Path) -> set[Path]:
    """The unpacked wheel folders that the links in ``site_packages`` point into."""
    found: set[Path] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(site_packages):
            if not entry.is_symlink():
                continue
            target = Path(os.path.realpath(entry.path))
            wheel = installed_wheel_of(target)
            if wheel is not None:
                found.add(wheel)
    return found


def venv_wheels(venv: Path) -> set[Path]:
    """The unpacked wheel folders the pex venv ``venv`` imports from."""
    found: set[Path] = set()
    for site_packages in site_packages_of(venv):
        found |= linked_wheels(site_packages)
    return found


def running_venv() -> Path | None:
    """The pex venv this process runs in, or None (a zipapp bundle or no bundle).

    Only a venv that pex made (``PEX_ROOT/venvs/...`` holding ``PEX-INFO``) counts, never
    a user's own virtualenv.
    """
    prefix = Path(os.path.realpath(sys.prefix))
    if VENVS in prefix.parts and (prefix / "PEX-INFO").is_file():
        return prefix
    return None


def running_wheel_dirs(path_entries: Iterable[str] | None = None) -> list[Path]:
    """The unpacked wheel folders this process imports from, in ``sys.path`` order."""
    found: list[Path] = []
    for item in sys.path if path_entries is None else path_entries:
        if not item:
            continue
        real = Path(os.path.realpath(item))
        wheel = installed_wheel_of(real)
        candidates = (
            [wheel] if wheel is not None else sorted(linked_wheels(real)) if real.is_dir() else []
        )
        for candidate in candidates:
            if candidate.is_dir() and candidate not in found:
                found.append(candidate)
    return found
