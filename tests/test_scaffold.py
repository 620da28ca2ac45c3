"""``skil-sdk new provider``: the rendered files, name checks, existing directories."""

from __future__ import annotations

import ast
import json
import os
import pty
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from skil_sdk import __version__, scaffold
from skil_sdk.cli import main
from skil_sdk.errors import ConflictError, InvalidValueError

EXPECTED_FILES = [
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/acme_rows/__init__.py",
    "src/acme_rows/provider.py",
    "tests/conftest.py",
    "tests/test_provider.py",
]
#: Runs the real command line in a subprocess.
CLI = "from skil_sdk.cli import main; main()"


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tree(path: Path) -> list[str]:
    """Every file and directory under ``path``, relative, sorted."""
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_template_ships_as_package_data() -> None:
    template = scaffold.template_dir()
    assert (template / "cookiecutter.json").is_file()
    assert (template / "{{cookiecutter.project_slug}}" / "pyproject.toml").is_file()


def test_renders_the_exact_set_of_files(tmp_path: Path) -> None:
    result = run_cli("new", "provider", "acme-rows", "--output-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    project = tmp_path / "acme-rows"
    assert report == {
        "path": str(project),
        "name": "acme-rows",
        "module": "acme_rows",
        "class": "acme_rows.provider:AcmeRowsProvider",
        "reads_on_executors": False,
        "files": EXPECTED_FILES,
    }
    assert scaffold.project_files(project) == EXPECTED_FILES
    # Nothing else beside the project: no staging directory, no replay file.
    assert os.listdir(tmp_path) == ["acme-rows"]
    for name in EXPECTED_FILES:
        text = (project / name).read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text and "cookiecutter" not in text, name


#: Both variants of the template: data() returns a DataFrame, or an ExecutorSource.
VARIANTS = pytest.mark.parametrize(
    "reads_on_executors", [False, True], ids=["dataframe", "executor-read"]
)


@VARIANTS
def test_rendered_project_declares_its_plugin(tmp_path: Path, reads_on_executors: bool) -> None:
    project = scaffold.new_provider("acme-rows", tmp_path, reads_on_executors=reads_on_executors)
    assert scaffold.project_files(project) == EXPECTED_FILES
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    assert meta["project"]["name"] == "acme-rows"
    assert meta["project"]["version"] == "0.1.0"
    assert meta["project"]["dependencies"] == [f"skil-sdk>={__version__}"]
    assert meta["project"]["description"] == scaffold.DEFAULT_DESCRIPTION
    assert meta["project"]["entry-points"] == {"skil_sdk": {"acme-rows": "acme_rows.provider"}}
    for path in project.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    readme = (project / "README.md").read_text(encoding="utf-8")
    for command in ("pytest", "skil-sdk build", "skil-sdk publish", "--provider acme-rows"):
        assert command in readme


@VARIANTS
def test_rendered_readme_installs_skil_sdk_before_the_project(
    tmp_path: Path, reads_on_executors: bool
) -> None:
    project = scaffold.new_provider("acme-rows", tmp_path, reads_on_executors=reads_on_executors)
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Test\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    # skil-sdk comes from its checkout or wheel: no package index has it.
    assert commands == [
        "python -m venv .venv && . .venv/bin/activate",
        "pip install /path/to/skil-sdk",
        "pip install -e '.[test]'",
        "pytest",
    ]
    assert f"pip install /path/to/skil_sdk-{__version__}-py3-none-any.whl" in block
    assert "pypi.org" not in readme


@VARIANTS
def test_description_and_author_are_escaped(tmp_path: Path, reads_on_executors: bool) -> None:
    description = 'Rows from "C:\\data" files'
    project = scaffold.new_provider(
        "acme-rows",
        tmp_path,
        description=description,
        author='Ada "L" Lovelace',
        reads_on_executors=reads_on_executors,
    )
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["description"] == description
    assert meta["project"]["authors"] == [{"name": 'Ada "L" Lovelace'}]
    source = (project / "src/acme_rows/provider.py").read_text(encoding="utf-8")
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    docstring = ast.get_docstring(classes["AcmeRowsProvider"])
    assert docstring is not None and docstring.splitlines()[0] == description


@VARIANTS
def test_dotted_and_mixed_case_names(tmp_path: Path, reads_on_executors: bool) -> None:
    names = scaffold.provider_names("Acme.Rows_v2")
    assert (names.module, names.class_name) == ("acme_rows_v2", "AcmeRowsV2Provider")
    project = scaffold.new_provider("Acme.Rows_v2", tmp_path, reads_on_executors=reads_on_executors)
    assert (project / "src/acme_rows_v2/provider.py").is_file()
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["entry-points"] == {
        "skil_sdk": {"Acme.Rows_v2": "acme_rows_v2.provider"}
    }
    assert scaffold.provider_names("csv-provider").class_name == "CsvProvider"


BAD_NAMES = [
    "my provider",
    "-acme",
    "acme-",
    "acme/rows",
    "acme:rows",
    "naïve",
    "9lives",
    "42",
    "class",
    "import",
    "json",
    "csv",
    "skil-sdk",
    "tests",
    "",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    output = tmp_path / "out"
    result = run_cli("new", "provider", "--output-dir", str(output), "--no-input", "--", name)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert repr(name) in lines[0] and "'acme-rows'" in lines[0]
    assert not output.exists()
    with pytest.raises(InvalidValueError):
        scaffold.new_provider(name, output)
    assert not output.exists()


def test_bad_name_with_json(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CLI, "new", "provider", "9lives", "-o", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "invalid_value"
    assert result.stderr.count("\n") == 1 and "'9lives'" in result.stderr
    assert os.listdir(tmp_path) == []


def test_multiline_description_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        "new", "provider", "acme-rows", "-o", str(tmp_path), "--description", "one\ntwo"
    )
    assert result.exit_code == 1
    assert "one line" in result.stderr
    assert os.listdir(tmp_path) == []


def test_existing_directory_is_refused(tmp_path: Path) -> None:
    existing = tmp_path / "acme-rows"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine", encoding="utf-8")
    before = tree(tmp_path)
    result = run_cli("new", "provider", "acme-rows", "--output-dir", str(tmp_path), "--no-input")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "already exists" in lines[0] and "--force" in lines[0]
    assert tree(tmp_path) == before
    with pytest.raises(ConflictError):
        scaffold.new_provider("acme-rows", tmp_path)
    assert tree(tmp_path) == before


def test_existing_file_is_refused_even_with_force(tmp_path: Path) -> None:
    (tmp_path / "acme-rows").write_text("a file", encoding="utf-8")
    result = run_cli("new", "provider", "acme-rows", "-o", str(tmp_path), "--force")
    assert result.exit_code == 1
    assert "not a directory" in result.stderr
    assert (tmp_path / "acme-rows").read_text(encoding="utf-8") == "a file"


def test_force_renders_into_an_existing_directory(tmp_path: Path) -> None:
    project = scaffold.new_provider("acme-rows", tmp_path)
    (project / "README.md").write_text("changed", encoding="utf-8")
    (project / "notes.txt").write_text("mine", encoding="utf-8")
    result = run_cli(
        "new", "provider", "acme-rows", "-o", str(tmp_path), "--force", "--json",
        "--description", "Second take.",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == sorted([*EXPECTED_FILES, "notes.txt"])
    assert (project / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert "Second take." in (project / "README.md").read_text(encoding="utf-8")
    assert os.listdir(tmp_path) == ["acme-rows"]


def test_no_prompt_when_stdin_is_not_a_terminal(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["new", "provider", "acme-rows", "-o", str(tmp_path)], input=""
    )
    assert result.exit_code == 0, result.output
    assert "Description" not in result.output
    assert "Created the provider project acme-rows" in result.stdout


def _run_on_a_terminal(
    args: list[str], answers: bytes, cwd: Path
) -> subprocess.CompletedProcess[str]:
    primary, secondary = pty.openpty()
    try:
        os.write(primary, answers)
        return subprocess.run(
            [sys.executable, "-c", CLI, *args],
            stdin=secondary,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)


def test_prompts_on_a_terminal(tmp_path: Path) -> None:
    result = _run_on_a_terminal(
        ["new", "provider", "acme-rows", "--json"], b"Rows from my lake\nGrace\n", tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Description" in result.stderr and "Author" in result.stderr
    assert json.loads(result.stdout)["path"] == str(tmp_path / "acme-rows")
    meta = tomllib.loads((tmp_path / "acme-rows/pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["description"] == "Rows from my lake"
    assert meta["project"]["authors"] == [{"name": "Grace"}]


def test_no_input_skips_prompts_on_a_terminal(tmp_path: Path) -> None:
    result = _run_on_a_terminal(["new", "provider", "acme-rows", "--no-input"], b"", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Description" not in result.stderr
    meta = tomllib.loads((tmp_path / "acme-rows/pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["description"] == scaffold.DEFAULT_DESCRIPTION
    assert "authors" not in meta["project"]
