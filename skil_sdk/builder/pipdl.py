"""``pip download`` of binary wheels, with progress lines and errors that name the fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skil_sdk.builder import cache
from skil_sdk.builder.targets import Target
from skil_sdk.errors import BuildError

_NOT_FOUND = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the "
    r"requirement)\s+(\S+)"
)
_PROGRESS = re.compile(r"^\s*(Collecting|Downloading|Obtaining|Looking in links)\b")
_TAIL_LINES = 20


def pip_download(
    specs: Sequence[str],
    dest: Path,
    *,
    target: Target,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    no_deps: bool = False,
    constraints: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Download binary wheels of ``specs`` into ``dest`` with real pip; return the wheels."""
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(dest)]
    cmd += ["--disable-pip-version-check", "--no-input", "--progress-bar=off"]
    cmd += [f"--find-links={p}" for p in find_links]
    cmd += ["--no-index"] if no_index else []
    cmd += ["--no-deps"] if no_deps else []
    if constraints:
        constraints_file = dest / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n")
        cmd += ["--constraint", str(constraints_file)]
    cmd += list(target.pip_args)
    base = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    with cache.tool_env(base) as env:
        proc = subprocess.Popen(
            [*cmd, *specs],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if progress and _PROGRESS.match(line):
                progress(line.strip())
        returncode = proc.wait()
    if returncode != 0:
        raise _download_error(lines, target, no_index)
    return sorted(p for p in dest.iterdir() if p.suffix == ".whl")


def _download_error(lines: list[str], target: Target, no_index: bool) -> BuildError:
    output = "\n".join(lines)
    match = _NOT_FOUND.search(output)
    where = "in the --find-links directories and the wheelhouse" if no_index else "on the index"
    if match:
        requirement = match.group(1)
        return BuildError(
            f"No wheel of {requirement} for {target.ident} could be found {where}; put its "
            f"wheel in a directory and pass `--find-links DIR`"
            + ("." if no_index else ", or check the network and the index.")
        )
    tail = "\n".join(lines[-_TAIL_LINES:])
    return BuildError(
        "pip could not download the third-party wheels; pass `--find-links DIR` with the "
        f"wheels for an offline build, or check the network. Last lines of pip's output:\n{tail}"
    )
