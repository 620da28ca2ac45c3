"""Byte-compiling the bundle's unpacked wheels once per node.

A bundle's wheels are unpacked into ``PEX_ROOT`` without ``.pyc`` files (pex unpacks
them that way, and processes started with ``PYTHONDONTWRITEBYTECODE`` never write any),
so every Python process would compile numpy, pyarrow, pandas and onnxruntime's Python
from source again (seconds per process: the driver and every executor worker). The
first process of a node that finds an unpacked wheel without the marker below starts a
background, low-priority ``python -m compileall`` over it; later processes import from
the ``.pyc`` files. The ``.pyc`` files lie beside the sources in the wheel folder, where
the bundle's venv finds them through its ``site-packages`` links. (Jobs that
``skil-sdk`` submits also run without ``PYTHONDONTWRITEBYTECODE``, so what a process
imports is cached at once; this covers the rest, and sessions started elsewhere.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from skil_sdk.spark.bundlepaths import running_wheel_dirs

MARKER = ".skil-compiled"
STALE_CLAIM_SECONDS = 900


def bundle_wheel_dirs() -> list[Path]:
    """The unpacked wheels of the running bundle (under ``PEX_ROOT``)."""
    return running_wheel_dirs()


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)


def precompile_in_background() -> bool:
    """Start compiling the running bundle's wheels that lack ``.pyc`` files; True if started.

    At most one compiler runs per wheel directory: it is claimed by creating the marker's
    ``.claim`` file exclusively; the marker is written when the compiler finishes.
    """
    pending = []
    for directory in bundle_wheel_dirs():
        if (directory / MARKER).exists():
            continue
        claim = directory / f"{MARKER}.claim"
        with contextlib.suppress(OSError):
            if time.time() - claim.stat().st_mtime > STALE_CLAIM_SECONDS:
                claim.unlink()  # its compiler died: claim it again
        try:
            fd = os.open(directory / f"{MARKER}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except OSError:
            continue
        os.close(fd)
        pending.append(directory)
    if not pending:
        return False
    script = (
        "import compileall, pathlib, sys\n"
        "for d in sys.argv[1:]:\n"
        "    compileall.compile_dir(d, quiet=2)\n"
        f"    (pathlib.Path(d) / {MARKER!r}).touch()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEX", "PYTHONPATH"))}
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-c", script, *map(str, pending)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_lower_priority,
        )
        return True
    return False
