"""Assemble the bundle: one PEX file from already-resolved wheels.

pex runs with ``--pre-resolved-dists`` (no resolve, no download), with
``--no-pre-install-wheels`` and ``--no-compress`` (the wheels, already compressed, are
stored as they are, so a 100 MB bundle is written in about a second), with
``--inherit-path=fallback`` and with no entry point. pex's defaults keep the file
reproducible: fixed zip timestamps and no ``.pyc`` files.

The bundle runs as a pex venv (``--venv``): its first run on a node unpacks the wheels
into ``PEX_ROOT`` and makes a virtualenv of links to them; ``--sh-boot`` puts a small
``/bin/sh`` script in front of the zip that starts that venv's Python directly on every
later run, so a process starts in tens of milliseconds instead of the second or more a
zipapp spends opening itself. ``--non-hermetic-venv-scripts`` keeps ``PYTHONPATH``
working (Spark gives its Python workers ``pyspark.zip`` and ``py4j`` that way).
``--max-install-jobs 0`` unpacks the wheels in parallel, one job per core, on that
first run. Whatever starts a bundle gives it :data:`RUN_ENV`, which makes pex spawn those
jobs rather than fork them: a forked job exits without running its exit handlers and
leaves its copy of each wheel in the temporary directory (about 300 MB for every bundle
laid out on a node); a spawned one removes it, in about the same time. pex reads the
setting before the bundle's own injected environment applies, so it cannot be built in.

pex runs with its own ``TMPDIR`` (:func:`skil_sdk.builder.cache.tool_env`), removed
when it exits, so a build leaves nothing in the system's temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skil_sdk.builder import cache
from skil_sdk.builder.targets import Target
from skil_sdk.errors import BuildError

_TAIL_LINES = 20

#: The environment every process that starts a bundle sets (see the module's docstring).
RUN_ENV = {"PEX_MULTIPROCESSING_START_METHOD": "spawn"}


def run_env() -> dict[str, str]:
    """:data:`RUN_ENV`, with the values this process's environment already sets kept."""
    return {key: os.environ.get(key, value) for key, value in RUN_ENV.items()}


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
        "--venv",
        "--non-hermetic-venv-scripts",
        "--sh-boot",
        "--max-install-jobs",
        "0",
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
    base = {k: v for k, v in os.environ.items() if not k.startswith("PEX_")}
    with cache.tool_env(base) as env:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(proc.stdout.splitlines()[-_TAIL_LINES:])
        raise BuildError(
            "pex could not assemble the bundle; check that the plugins' requirements are "
            f"compatible with the locked versions. Last lines of pex's output:\n{tail}"
        )
