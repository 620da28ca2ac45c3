"""Packaging: every subpackage ships, the template ships, and `--help` stays light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "skil_sdk").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert "skil_sdk.templates" in listed


def test_help_imports_no_heavy_dependency() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from skil_sdk.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "names = ('pyspark', 'onnxruntime', 'pex', 'onnx', 'pyarrow', 'fastapi', 'numpy')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "", f"`skil-sdk --help` imported {completed.stdout.strip()}"


def test_version_option() -> None:
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("skil-sdk")), "--version"],
        capture_output=True,
        text=True,
    )
    from skil_sdk import __version__

    assert completed.returncode == 0 and __version__ in completed.stdout
