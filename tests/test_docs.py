"""The docs keep up with the code: every CLI command and option is in docs/cli.md."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import click
import pytest

import skil_sdk
from skil_sdk.cli.main import COMMANDS
from skil_sdk.cli.main import main as cli

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_reference", DOCS / "gen_cli_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_and_option_is_in_the_reference() -> None:
    reference = (DOCS / "cli.md").read_text()
    generator = _load_generator()
    missing = []
    for path, command in generator.walk(cli, ["skil-sdk"]):
        if len(path) == 1:
            continue
        heading = f"## `{' '.join(path)}`"
        if heading not in reference:
            missing.append(heading)
            continue
        section = reference.split(heading, 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if isinstance(param, click.Option):
                for flag in param.opts:
                    if f"`{flag}`" not in section:
                        missing.append(f"{' '.join(path)} {flag}")
    assert not missing, f"docs/cli.md is missing {missing}; run `./dev nox -s docs`"


def test_reference_is_current() -> None:
    assert (DOCS / "cli.md").read_text() == _load_generator().render(), (
        "docs/cli.md is stale; run `./dev nox -s docs`"
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_accepts_json_except_serve(name: str) -> None:
    generator = _load_generator()
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    leaves = [c for p, c in generator.walk(command, [name]) if not isinstance(c, click.Group)]
    for leaf in leaves:
        flags = {o for p in leaf.params if isinstance(p, click.Option) for o in p.opts}
        assert ("--json" in flags) == (name != "serve"), leaf.name


def test_public_api_is_documented() -> None:
    for name in skil_sdk.__all__:
        if name.startswith("__"):
            continue
        value = getattr(skil_sdk, name)
        assert getattr(value, "__doc__", None), f"skil_sdk.{name} has no docstring"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    assert blocks, "README has no command block"
    commands = [line for line in blocks[0].splitlines() if line and not line.startswith("#")]
    assert commands == ["./dev demo", "./dev test"]
