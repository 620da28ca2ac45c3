"""Temporary folders of module-scoped fixtures, removed when their tests pass.

pytest removes a passing test's ``tmp_path`` at once (``tmp_path_retention_policy =
"failed"``), but a ``tmp_path_factory.mktemp`` folder only when the whole session ends
(and only if it passed); the fixtures that lay out bundles, venvs and clusters there
hold gigabytes, so they remove theirs as their scope ends, which keeps the session's
peak disk use down, unless a test of that scope failed (kept for its logs).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def removed_after(request: pytest.FixtureRequest, *paths: Path) -> Iterator[None]:
    """Remove ``paths`` when the block ends, unless it raised or a test failed meanwhile."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed == failed_before:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)


def old_pex_leftover(temp_dir: Path, name: str, size: int, age_s: float = 7200) -> Path:
    """A ``pex-whl-install.*`` folder in ``temp_dir`` holding ``size`` bytes, last changed
    ``age_s`` ago: what a bundle's first run with forked unpacking jobs leaves behind."""
    leftover = temp_dir / f"pex-whl-install.{name}"
    (leftover / ".deps").mkdir(parents=True)
    (leftover / ".deps" / "wheel.whl").write_bytes(b"w" * size)
    stamp = time.time() - age_s
    os.utime(leftover, (stamp, stamp))
    return leftover
