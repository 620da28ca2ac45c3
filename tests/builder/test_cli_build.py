"""``skil-sdk build/publish/cache`` in subprocesses: JSON, crashes, offline errors, races."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _builder_helpers import CLI, cli
from _bundle_fixtures import make_provider_project
from _tmpdirs import old_pex_leftover

from skil_sdk.session.state import RUNNING, STOPPED, SessionState, write_state

pytestmark = pytest.mark.slow


def _entries(directory: Path) -> list[str]:
    """Finalized entries of a cache or store folder (no lock files, no work dirs)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _work_dirs(directory: Path) -> list[Path]:
    return [p for p in directory.rglob(".*.work")] if directory.exists() else []


def _kill_when(args: list[str], home: Path, ready: Callable[[], bool]) -> None:
    """Start the CLI, wait until ``ready()``, then SIGKILL its whole process group."""
    env = {**os.environ, "SKIL_HOME": str(home)}
    proc = subprocess.Popen(
        [CLI, *args], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while not ready():
            assert proc.poll() is None, "the command finished before the kill point"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_build_json_and_cache_hit(tmp_path: Path, skil_home: Path) -> None:
    project = make_provider_project(tmp_path)
    first = cli("build", str(project), "--json", home=skil_home)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert {"bundle", "hash", "cached", "plugins", "seconds"} <= set(data)
    assert data["cached"] is False and Path(data["bundle"]).is_file()
    assert data["plugins"][0]["name"] == "skil-squares" and len(data["plugins"][0]["sha256"]) == 64
    assert "Assembling the bundle" in first.stderr
    again = cli("build", "--json", home=skil_home, cwd=project)  # inside the project
    assert json.loads(again.stdout)["cached"] is True
    assert json.loads(again.stdout)["hash"] == data["hash"]
    human = cli("build", str(project), home=skil_home)
    assert data["hash"] in human.stdout and "skil-squares" in human.stdout


def test_build_killed_half_way_leaves_no_entry(tmp_path: Path, skil_home: Path) -> None:
    project = make_provider_project(tmp_path)
    bundles = skil_home / "cache" / "bundles"
    _kill_when(["build", str(project)], skil_home, lambda: bool(_work_dirs(bundles)))
    assert _entries(bundles) == []
    for entry in _entries(skil_home / "cache" / "wheels"):
        assert (skil_home / "cache" / "wheels" / entry / "wheel.json").is_file()
    done = cli("build", str(project), "--json", home=skil_home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cached"] is False
    assert len(_entries(bundles)) == 1 and _work_dirs(bundles) == []


def test_publish_killed_half_way_leaves_no_entry(tmp_path: Path, skil_home: Path) -> None:
    project = make_provider_project(tmp_path)
    wheels = skil_home / "cache" / "wheels"
    _kill_when(["publish", str(project)], skil_home, lambda: bool(_work_dirs(wheels)))
    assert _entries(skil_home / "plugins") == []
    assert _entries(wheels) == []
    done = cli("publish", str(project), "--json", home=skil_home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["published"] is True
    assert _entries(skil_home / "plugins") == ["skil-squares"]
    listed = json.loads(cli("plugins", "list", "--json", home=skil_home).stdout)
    assert [(p["name"], p["version"]) for p in listed] == [("skil-squares", "0.1.0")]


def test_unresolvable_dependency_offline_names_it(tmp_path: Path, skil_home: Path) -> None:
    project = make_provider_project(tmp_path, dependencies=("skil-sdk", "skil-no-such-dist>=1"))
    result = cli("build", str(project), "--no-index", home=skil_home)
    assert result.returncode == 1
    assert "skil-no-such-dist" in result.stderr and "--find-links" in result.stderr
    assert _entries(skil_home / "cache" / "bundles") == []


def test_failing_project_shows_the_build_output(tmp_path: Path, skil_home: Path) -> None:
    project = make_provider_project(tmp_path)
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace('version = "0.1.0"', 'version = "x!y"')
    )
    result = cli("build", str(project), "--json", home=skil_home)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "build_failed"
    assert "Last lines of the build output" in result.stderr
    assert "must be pep440" in result.stderr


def test_concurrent_builds_make_one_entry(tmp_path: Path, skil_home: Path) -> None:
    project = make_provider_project(tmp_path)
    env = {**os.environ, "SKIL_HOME": str(skil_home)}
    procs = [
        subprocess.Popen([CLI, "build", str(project), "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(2)
    ]
    outputs = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert outputs[0]["hash"] == outputs[1]["hash"]
    assert sorted(o["cached"] for o in outputs) == [False, True]
    assert len(_entries(skil_home / "cache" / "bundles")) == 1


def test_cache_list_and_prune(
    tmp_path: Path, skil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = make_provider_project(tmp_path, name="skil-one", plugin="one")
    two = make_provider_project(tmp_path, name="skil-two", plugin="two")
    first = json.loads(cli("build", str(one), "--json", home=skil_home).stdout)
    second = json.loads(cli("build", str(two), "--json", home=skil_home).stdout)
    listed = json.loads(cli("cache", "list", "--json", home=skil_home).stdout)
    assert [e["hash"] for e in listed] == [second["hash"], first["hash"]]
    # a running Spark session (this test's process stands in for its driver) keeps its bundle
    monkeypatch.setenv("SKIL_HOME", str(skil_home))
    write_state(SessionState(state=RUNNING, pid=os.getpid(), bundle_hash=first["hash"]))
    held = json.loads(cli("cache", "prune", "--keep", "1", "--json", home=skil_home).stdout)
    assert held["removed_bundles"] == [] and held["kept"] == [second["hash"], first["hash"]]
    assert Path(first["bundle"]).exists()
    write_state(SessionState(state=STOPPED, bundle_hash=first["hash"]))
    # what a bundle's first run left in the temp dir two hours ago
    temp = tmp_path / "tmp"
    leftover = old_pex_leftover(temp, "k680gr6t.click-8.5.1-py3-none-any.whl", 4096)
    monkeypatch.setenv("TMPDIR", str(temp))
    pruned = json.loads(cli("cache", "prune", "--keep", "1", "--json", home=skil_home).stdout)
    assert pruned["removed_bundles"] == [first["hash"]] and pruned["kept"] == [second["hash"]]
    assert pruned["removed_temp_dirs"] == 1 and not leftover.exists()
    assert not Path(first["bundle"]).exists() and Path(second["bundle"]).exists()
    again = json.loads(cli("build", str(two), "--json", home=skil_home).stdout)
    assert again["cached"] is True
