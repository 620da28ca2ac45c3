"""Helpers shared by the builder tests: the CLI in a subprocess, bundle contents."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

CLI = str(Path(sys.executable).parent / "skil-sdk")


def cli(*args: str, home: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``skil-sdk ARGS`` in a subprocess with SKIL_HOME=home."""
    env = {**os.environ, "SKIL_HOME": str(home)}
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=600, **kwargs  # type: ignore[call-overload]
    )


def bundled_wheels(bundle: Path) -> list[str]:
    """File names of the wheels inside a bundle."""
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
    wheels = [n for n in names if n.startswith(".deps/") and n.endswith(".whl")]
    return sorted(n.split("/", 1)[1] for n in wheels)


def files_of_bundled_wheel(bundle: Path, prefix: str) -> list[str]:
    """The files inside the bundled wheel whose name starts with ``prefix``."""
    with zipfile.ZipFile(bundle) as zf:
        (name,) = [n for n in zf.namelist() if n.startswith(f".deps/{prefix}")]
        with zipfile.ZipFile(io.BytesIO(zf.read(name))) as inner:
            return sorted(inner.namelist())
