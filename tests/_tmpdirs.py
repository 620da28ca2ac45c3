"""Temporary folders of module-scoped fixtures, removed when their tests pass.

pytest removes a passing test's ``tmp_path`` at once (``tmp_path_retention_policy =
"failed"``), but a ``tmp_path_factory.mktemp`` folder only when the whole session ends
(and only if it passed); the fixtures that lay out bundles, venvs and clusters there
hold gigabytes, so they remove theirs as their scope ends, which keeps the session's
peak disk use down, unless a test of that scope failed (kept for its logs).
"""

from __future__ import annotations

import shutil
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
