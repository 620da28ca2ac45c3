"""The install instructions name what exists: a checkout or a wheel of this version, and
the ``.venv`` that ``./dev`` creates (skil-sdk is on no package index)."""

from __future__ import annotations

import re
from pathlib import Path

from skil_sdk import __version__

ROOT = Path(__file__).resolve().parent.parent
#: ``pip install skil-sdk``, ``pip install 'skil-sdk[spark]'``: a name no index can resolve.
FROM_AN_INDEX = re.compile(r"pip install (?:-U |--upgrade )?['\"]?skil-sdk\b")


def _blocks(path: Path) -> list[str]:
    """The shell code blocks of a Markdown file."""
    return re.findall(r"```(?:sh|bash|console)\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def _commands(path: Path) -> list[str]:
    """Every command line of a Markdown file's shell blocks, without its comment."""
    return [
        line.split(" #", 1)[0].strip()
        for block in _blocks(path)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_quickstart_installs_from_a_checkout_or_a_wheel_of_this_version() -> None:
    commands = _commands(ROOT / "docs" / "quickstart.md")
    assert not [c for c in commands if FROM_AN_INDEX.search(c)]
    install = commands.index("python -m venv ~/venvs/skil && source ~/venvs/skil/bin/activate")
    assert commands[install + 1] == "pip install '/path/to/skil-sdk[spark]'"
    built = commands.index("python -m build")
    wheel = f"dist/skil_sdk-{__version__}-py3-none-any.whl"
    assert commands[built + 1] == f"pip install '{wheel}[spark]'"
    assert "source .venv/bin/activate" in commands


def test_the_readme_says_how_to_use_the_venv_dev_creates() -> None:
    readme = ROOT / "README.md"
    assert not [c for c in _commands(readme) if FROM_AN_INDEX.search(c)]
    assert "source .venv/bin/activate" in _commands(readme)
    assert "docs/quickstart.md#install" in readme.read_text(encoding="utf-8")
