"""Cheap, content-based digests: of a project's source tree and of a bundle's inputs.

A source digest covers relative paths, file modes and file contents, and nothing
else (no absolute paths, no timestamps), so the same source in two places has the
same digest. Build outputs, caches, VCS folders and virtualenvs are left out, and so
is what running jobs from the project writes into it: an output folder (one holding
``_SUCCESS``, ``_skil_job.json`` or ``_temporary``, such as ``out/`` of ``skil-sdk infer
--output out/``) and Spark's ``spark-warehouse/``, ``metastore_db/`` and ``derby.log``.
Otherwise every job run from a project would change its digest and build its wheel again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from skil_sdk.storage import sha256_bytes

#: Bumped whenever the bundle layout or the hash inputs change meaning.
BUILDER_SCHEMA_VERSION = 3

#: Folder names left out at any depth.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".eggs",
        ".cache",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        "node_modules",
    }
)
#: Folder names left out at the top of a project only.
IGNORED_TOP_DIRS = frozenset({"build", "dist", "spark-warehouse", "metastore_db"})
#: File names left out at the top of a project only.
IGNORED_TOP_FILES = frozenset({"derby.log"})
IGNORED_FILE_SUFFIXES = (".pyc", ".pyo", ".swp")
IGNORED_FILES = frozenset({".DS_Store"})
#: A folder holding one of these is a job's output (Spark's commit markers, skil-sdk's record).
OUTPUT_MARKERS = ("_SUCCESS", "_skil_job.json", "_temporary")


def _skip_dir(path: Path, name: str, top: bool) -> bool:
    if name in IGNORED_DIRS or name.endswith(".egg-info") or (top and name in IGNORED_TOP_DIRS):
        return True
    return any((path / marker).exists() for marker in ("pyvenv.cfg", *OUTPUT_MARKERS))


def source_files(root: Path, include: Sequence[str] | None = None) -> list[str]:
    """Relative POSIX paths of a project's source files, sorted.

    ``include`` limits the walk to these top-level names (files or folders).
    """
    found: list[str] = []
    for top_name in sorted(os.listdir(root)):
        if include is not None and top_name not in include:
            continue
        top_path = root / top_name
        if top_path.is_dir():
            if _skip_dir(top_path, top_name, top=True):
                continue
            found.extend(_walk(root, top_path))
        elif _keep_file(top_name) and top_name not in IGNORED_TOP_FILES and top_path.exists():
            found.append(top_name)
    return sorted(found)


def _walk(root: Path, start: Path) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(start):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not _skip_dir(here / d, d, top=False)]
        for name in filenames:
            if _keep_file(name) and (here / name).exists():
                yield (here / name).relative_to(root).as_posix()


def _keep_file(name: str) -> bool:
    return name not in IGNORED_FILES and not name.endswith(IGNORED_FILE_SUFFIXES)


def source_digest(root: Path, include: Sequence[str] | None = None) -> str:
    """Hex sha256 over the relative paths, modes and contents of the project's files."""
    digest = hashlib.sha256()
    for rel in source_files(root, include):
        path = root / rel
        mode = stat.S_IMODE(path.stat().st_mode)
        digest.update(f"{rel}\0{mode:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def canonical_json(data: Any) -> bytes:
    """``data`` as compact, key-sorted JSON: equal data gives equal bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def inputs_hash(inputs: Any) -> str:
    """Hex sha256 of the canonical JSON of ``inputs`` (the bundle's content hash)."""
    return sha256_bytes(canonical_json(inputs))
