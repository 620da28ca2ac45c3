"""Assemble the bundle: one PEX file from already-resolved wheels.

pex runs with ``--pre-resolved-dists`` (no resolve, no download), with
``--no-pre-install-wheels`` and ``--no-compress`` (the wheels, already compressed, are
stored as they are, so a 100 MB bundle is written in about a second), with
``--inherit-path=fallback`` (Spark puts its own zips on ``PYTHONPATH``) and with no
entry point. pex's defaults keep the file reproducible: fixed zip timestamps and no
``.pyc`` files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skil_sdk.builder.targets import Target
from skil_sdk.errors import BuildError

_TAIL_LINES = 20


def shebang(target: Target) -> str:
    """The interpreter line of the bundle: the target's ``python<major>.<minor>`` on PATH."""
    return f"/usr/bin/env python{target.python_version}"


def interpreter_constraints(target: Target) -> list[str]:
    """The interpreter constraints recorded in the bundle (host builds)."""
    return [f"CPython=={target.python_version}.*"] if target.host else []


def assemble(
    out: Path,
    *,
    requirements: Sequence[str],
    wheels: Sequence[Path],
    excludes: Sequence[str],
    target: Target,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write the PEX file ``out`` holding exactly ``wheels``."""
    cmd = [sys.executable, "-m", "pex", *requirements]
    for wheel in wheels:
        cmd += ["--pre-resolved-dists", str(wheel)]
    cmd += [
        "--no-pre-install-wheels",
        "--inherit-path=fallback",
        "--python-shebang",
        shebang(target),
        "--no-compile",
        "--no-compress",
        "--no-use-system-time",
        "--output-file",
        str(out),
    ]
    for constraint in interpreter_constraints(target):
        cmd += ["--interpreter-constraint", constraint]
        cmd += ["--python-path", str(Path(sys.executable).parent)]
    cmd += list(target.pex_args)
    for name in excludes:
        cmd += ["--exclude", name]
    if progress:
        progress(f"Assembling the bundle from {len(wheels)} wheels with pex")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEX_")}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(proc.stdout.splitlines()[-_TAIL_LINES:])
        raise BuildError(
            "pex could not assemble the bundle; check that the plugins' requirements are "
            f"compatible with the locked versions. Last lines of pex's output:\n{tail}"
        )
