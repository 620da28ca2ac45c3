"""Plugin and SDK wheels: reproducible, cached by source digest, clean copies."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from _bundle_fixtures import make_provider_project

from skil_sdk.builder.wheels import installed_sdk_wheel, project_wheel, sdk_source_root, sdk_wheel
from skil_sdk.errors import BuildError

pytestmark = pytest.mark.slow


def test_same_source_gives_the_same_wheel_in_two_homes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKIL_HOME", str(tmp_path / "home-a"))
    first = project_wheel(make_provider_project(tmp_path / "a"))
    monkeypatch.setenv("SKIL_HOME", str(tmp_path / "home-b"))
    second = project_wheel(make_provider_project(tmp_path / "b"))
    assert not first.cached and not second.cached
    assert first.path.read_bytes() == second.path.read_bytes()


def test_unchanged_source_is_a_cache_hit(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path)
    built = project_wheel(project)
    again = project_wheel(project)
    assert again.cached and again.path == built.path and again.sha256 == built.sha256


def test_the_umask_does_not_change_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wheel records file modes: a build under another umask must give the same bytes."""
    project = make_provider_project(tmp_path)
    wheels = []
    for name, umask in (("a", 0o022), ("b", 0o077)):
        monkeypatch.setenv("SKIL_HOME", str(tmp_path / f"home-{name}"))
        previous = os.umask(umask)
        try:
            wheels.append(project_wheel(project))
        finally:
            os.umask(previous)
    assert not wheels[1].cached
    assert wheels[0].sha256 == wheels[1].sha256
    assert wheels[0].path.read_bytes() == wheels[1].path.read_bytes()


def test_deleted_module_does_not_linger(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path, extra_modules={"helpers.py": "X = 1\n"})
    (project / "build").mkdir()  # a stale build dir in the source must not leak in
    (project / "build" / "stale.py").write_text("")
    with zipfile.ZipFile(project_wheel(project).path) as zf:
        assert "skil_squares/helpers.py" in zf.namelist()
    (project / "skil_squares" / "helpers.py").unlink()
    rebuilt = project_wheel(project)
    with zipfile.ZipFile(rebuilt.path) as zf:
        assert "skil_squares/helpers.py" not in zf.namelist()
        assert not any("stale" in n for n in zf.namelist())


def test_failing_build_shows_the_tail_of_its_output(tmp_path: Path) -> None:
    project = tmp_path / "broken"
    project.mkdir()
    (project / "setup.py").write_text(
        "import sys\nprint('compiling the frobnicator')\n"
        "sys.exit('error: the frobnicator is missing')\n"
    )
    with pytest.raises(BuildError) as info:
        project_wheel(project)
    assert "the frobnicator is missing" in info.value.message
    assert "fix the project" in info.value.message


def test_not_a_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a Python project"):
        project_wheel(tmp_path)


def test_sdk_wheel_is_built_from_the_source_tree() -> None:
    assert sdk_source_root() is not None
    wheel = sdk_wheel()
    with zipfile.ZipFile(wheel.path) as zf:
        names = zf.namelist()
    assert "skil_sdk/builder/api.py" in names
    assert wheel.info.key == "skil-sdk"


def test_installed_distribution_is_repacked_reproducibly(tmp_path: Path) -> None:
    from importlib import metadata

    from skil_sdk.builder.repack import repack_wheel
    from skil_sdk.wheelinfo import read_wheel

    outputs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        wheel = repack_wheel(metadata.distribution("pluggy"), tmp_path / name)
        assert [p.name for p in (tmp_path / name).iterdir()] == [wheel.name]
        outputs.append(wheel)
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert read_wheel(outputs[0]).key == "pluggy"
    with zipfile.ZipFile(outputs[0]) as zf:
        names = zf.namelist()
    assert "pluggy/__init__.py" in names and not any(n.endswith(".pyc") for n in names)


def test_the_installed_sdk_is_repacked_once() -> None:
    lines: list[str] = []
    first, again = installed_sdk_wheel(lines.append), installed_sdk_wheel(lines.append)
    assert (first.cached, again.cached) == (False, True)
    assert again.path == first.path and again.sha256 == first.sha256
    assert first.info.key == "skil-sdk"
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name, "wheel.json"]
    assert lines == ["Packing the installed skil-sdk into a wheel"]
