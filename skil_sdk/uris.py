"""Paths and URIs: which name this machine's file system, and as what local path."""

from __future__ import annotations

from pathlib import Path


def is_local(path: str) -> bool:
    """Whether ``path`` names this machine's file system (no scheme, or ``file://``)."""
    return "://" not in path or path.startswith("file://")


def local_path(path: str) -> Path:
    """The local :class:`Path` of ``path`` (``file://`` stripped, ``~`` expanded)."""
    return Path(path[len("file://") :] if path.startswith("file://") else path).expanduser()
