"""The bundle's unpacked wheels are byte-compiled once per node, in the background."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from skil_sdk.spark import bytecode


def test_wheels_on_sys_path_are_compiled_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "pex" / "installed_wheels" / "3" / ("a" * 64) / "dep-1.0-py3-none-any.whl"
    (wheel / "dep").mkdir(parents=True)
    (wheel / "dep" / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(sys, "path", [str(wheel), *sys.path])

    assert bytecode.bundle_wheel_dirs()[0] == wheel
    assert bytecode.precompile_in_background() is True
    deadline = time.time() + 60
    while not (wheel / bytecode.MARKER).exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (wheel / bytecode.MARKER).exists()
    assert list((wheel / "dep" / "__pycache__").glob("__init__.cpython-*.pyc"))
    assert bytecode.precompile_in_background() is False, "a node compiles a wheel once"
