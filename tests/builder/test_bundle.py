"""The uber bundle: reproducible, cached by content hash, runnable as Spark runs workers."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _builder_helpers import bundled_wheels, files_of_bundled_wheel
from _bundle_fixtures import make_provider_project

from skil_sdk.builder import cache
from skil_sdk.builder.api import BuildResult, build, ensure_bundle, publish, verify_bundle
from skil_sdk.builder.bundle import RUN_ENV
from skil_sdk.errors import IntegrityError

pytestmark = pytest.mark.slow


def _progress() -> tuple[list[str], Any]:
    lines: list[str] = []
    return lines, lines.append


@dataclass
class ProjectBuilds:
    """Three ``ensure_bundle`` calls with one plugin project, in the session's SKIL_HOME.

    The first builds; then a job's output is written into the project and the second is
    called; then a module is edited and the third is called. All with a TMPDIR of their
    own; ``tmpdir_entries`` is what was left in it.
    """

    first: BuildResult
    again: BuildResult
    edited: BuildResult
    lines: dict[str, list[str]]
    tmpdir_entries: list[str]


@pytest.fixture(scope="module")
def project_builds(built_bundle: Any, tmp_path_factory: pytest.TempPathFactory) -> ProjectBuilds:
    root = tmp_path_factory.mktemp("project-builds")
    tmpdir = root / "tmpdir"
    tmpdir.mkdir()
    project = make_provider_project(root, name="skil-reuse", plugin="reuse")
    lines: dict[str, list[str]] = {}

    def progress(name: str) -> Callable[[str], None]:
        return lines.setdefault(name, []).append

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKIL_HOME", str(Path(built_bundle.bundle).parents[3]))
        mp.setenv("TMPDIR", str(tmpdir))
        mp.setattr(tempfile, "tempdir", None)  # read TMPDIR again
        first = ensure_bundle([project], progress=progress("first"))
        for rel in ("out/_SUCCESS", "out/_skil_job.json", "out/part-00000.parquet"):
            (project / rel).parent.mkdir(exist_ok=True)
            (project / rel).write_text("written by `skil-sdk infer --plugin . --output out/`")
        again = ensure_bundle([project], progress=progress("again"))
        module = project / "skil_reuse" / "provider.py"
        module.write_text(module.read_text() + "\nEDITED = True\n")
        edited = ensure_bundle([project], progress=progress("edited"))
        entries = sorted(os.listdir(tmpdir))
    return ProjectBuilds(first, again, edited, lines, entries)


def test_an_unchanged_plugin_project_reuses_its_wheel_and_bundle(
    project_builds: ProjectBuilds,
) -> None:
    first, again = project_builds.first, project_builds.again
    assert not first.cached
    assert again.cached and again.hash == first.hash and again.bundle == first.bundle
    assert [p.sha256 for p in again.plugins] == [p.sha256 for p in first.plugins]
    assert project_builds.lines["again"] == [f"Reusing bundle {first.hash[:12]}"]


def test_a_build_says_why_it_builds(project_builds: ProjectBuilds) -> None:
    first_reasons = [
        line for line in project_builds.lines["first"] if line.startswith("Building the bundle: ")
    ]
    assert len(first_reasons) == 1 and "plugin skil-reuse added" in first_reasons[0]
    edited = project_builds.edited
    assert not edited.cached and edited.hash != project_builds.first.hash
    assert "Building the bundle: plugin skil-reuse changed" in project_builds.lines["edited"]
    assert not any(line.startswith("Reusing") for line in project_builds.lines["edited"])


def test_builds_leave_nothing_in_the_temporary_directory(project_builds: ProjectBuilds) -> None:
    assert "Assembling the bundle from" in "\n".join(project_builds.lines["edited"])
    assert project_builds.tmpdir_entries == []


def test_two_empty_homes_give_byte_identical_bundles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for name in ("a", "b"):
        monkeypatch.setenv("SKIL_HOME", str(tmp_path / f"home-{name}"))
        results.append(ensure_bundle([make_provider_project(tmp_path / name)]))
    first, second = results
    assert not first.cached and not second.cached
    assert first.hash == second.hash
    assert first.bundle.name == f"skil-bundle-{first.hash[:12]}.pex"
    assert first.bundle.read_bytes() == second.bundle.read_bytes()


def test_second_build_is_a_cache_hit_and_rebuilds_nothing(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path)
    first = build([project])
    stamp = first.bundle.stat().st_mtime_ns
    lines, progress = _progress()
    second = build([project], progress=progress)
    assert second.cached and second.hash == first.hash and second.bundle == first.bundle
    assert lines == [f"Reusing bundle {first.hash[:12]}"]
    assert second.bundle.stat().st_mtime_ns == stamp
    assert set(second.to_dict()) >= {"bundle", "hash", "cached", "plugins", "seconds"}


def test_editing_one_plugin_rebuilds_only_its_wheel(tmp_path: Path) -> None:
    one = make_provider_project(tmp_path, name="skil-one", plugin="one")
    two = make_provider_project(tmp_path, name="skil-two", plugin="two")
    before = build([one, two])
    module = one / "skil_one" / "provider.py"
    module.write_text(module.read_text() + "\nEDITED = True\n")
    lines, progress = _progress()
    after = build([one, two], progress=progress)
    built = [line for line in lines if line.startswith("Building the wheel")]
    assert len(built) == 1 and "skil-one" in built[0]
    assert after.hash != before.hash and not after.cached
    shas = {p.name: p.sha256 for p in before.plugins}
    assert {p.name: p.sha256 for p in after.plugins}["skil-two"] == shas["skil-two"]
    assert {p.name: p.sha256 for p in after.plugins}["skil-one"] != shas["skil-one"]


def test_deleting_a_module_removes_it_from_the_bundle(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path, extra_modules={"helpers.py": "X = 1\n"})
    first = build([project])
    assert "skil_squares/helpers.py" in files_of_bundled_wheel(first.bundle, "skil_squares")
    (project / "skil_squares" / "helpers.py").unlink()
    second = build([project])
    assert second.hash != first.hash
    assert "skil_squares/helpers.py" not in files_of_bundled_wheel(second.bundle, "skil_squares")


def test_published_plugins_are_the_bundle_and_change_its_hash(tmp_path: Path) -> None:
    empty = ensure_bundle()
    assert empty.plugins == []
    publish(make_provider_project(tmp_path))
    with_plugin = ensure_bundle()
    assert with_plugin.hash != empty.hash
    assert [p.name for p in with_plugin.plugins] == ["skil-squares"]
    wheels = bundled_wheels(with_plugin.bundle)
    assert any(w.startswith("skil_squares-0.1.0") for w in wheels)
    assert any(w.startswith("skil_sdk-") for w in wheels)
    assert any(w.startswith("onnxruntime-") for w in wheels)
    assert not any(w.startswith(("pyspark", "py4j", "pex-", "cookiecutter")) for w in wheels)
    assert ensure_bundle().cached


def test_bundle_layout_and_manifest(built_bundle: Any) -> None:
    manifest = json.loads((built_bundle.bundle.parent / "manifest.json").read_text())
    assert manifest["hash"] == built_bundle.hash
    assert manifest["size"] == built_bundle.bundle.stat().st_size
    with zipfile.ZipFile(built_bundle.bundle) as zf:
        info = json.loads(zf.read("PEX-INFO"))
    assert info["inherit_path"] == "fallback"
    assert info.get("entry_point") is None
    assert info["deps_are_wheel_files"] is True
    assert info["venv"] is True, "the bundle runs as a pex venv"
    assert info["venv_hermetic_scripts"] is False, "PYTHONPATH must reach Spark's workers"
    assert info["max_install_jobs"] == 0, "the first run unpacks wheels on every core"
    with built_bundle.bundle.open("rb") as fh:
        header = fh.read(4096).decode(errors="replace")
    assert header.startswith("#!/bin/sh\n"), "the --sh-boot script starts the venv directly"
    assert 'DEFAULT_PYTHON="python{}"'.format(manifest["python"]) in header


def test_bundle_runs_the_way_spark_starts_workers(built_bundle: Any, tmp_path: Path) -> None:
    probe = (
        "import json, skil_sdk, onnxruntime, pyarrow, pandas\n"
        "from importlib import metadata\n"
        "print(json.dumps({'sdk': skil_sdk.__file__, 'ort': onnxruntime.__version__,\n"
        "    'eps': sorted(e.name for e in metadata.entry_points(group='skil_sdk')),\n"
        "    'providers': [p.name for p in __import__('skil_sdk.plugins').plugins"
        ".list_providers()]}))\n"
    )
    archive = tmp_path / "worker.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("worker_probe.py", probe)
    # a first run lays the bundle out in PEX_ROOT, unpacking its wheels in parallel
    (tmp_path / "tmp").mkdir()
    env = {
        **os.environ,
        **RUN_ENV,
        "PYTHONPATH": str(archive),
        "PEX_ROOT": str(tmp_path / "pex-root"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    env.pop("SKIL_HOME", None)
    proc = subprocess.run(
        [str(built_bundle.bundle), "-m", "worker_probe"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["sdk"].startswith(str(tmp_path / "pex-root"))
    assert "squares" in seen["eps"] and "squares" in seen["providers"]
    # with the bundle's RUN_ENV the unpacking jobs remove their copies of the wheels
    assert sorted(p.name for p in (tmp_path / "tmp").glob("pex-*")) == []


def test_a_corrupted_bundle_is_detected_and_rebuilt(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path)
    result = ensure_bundle([project])
    verify_bundle(result)
    with result.bundle.open("ab") as fh:
        fh.write(b"corruption")
    with pytest.raises(IntegrityError, match="skil-sdk build"):
        verify_bundle(result)
    rebuilt = ensure_bundle([project], verify=True)
    assert not rebuilt.cached and rebuilt.hash == result.hash
    verify_bundle(rebuilt)
    assert [e.hash for e in cache.list_bundles()] == [result.hash]


def test_a_complete_platform_target(tmp_path: Path) -> None:
    """A --complete-platform build picks wheels by that platform's tags (the host's here)."""
    import sys

    platform_file = tmp_path / "executor.json"
    inspect = subprocess.run(
        [str(Path(sys.executable).parent / "pex3"), "interpreter", "inspect", "--markers",
         "--tags", "--python", sys.executable],
        capture_output=True, text=True, check=True,
    )
    platform_file.write_text(inspect.stdout)
    result = ensure_bundle(complete_platform=platform_file)
    assert result.manifest["target"].startswith("complete-cp")
    assert result.manifest["interpreter_constraints"] == []
    assert any(w.startswith("numpy-") for w in bundled_wheels(result.bundle))
    assert ensure_bundle(complete_platform=platform_file).cached


def test_plugin_requirements_are_locked_and_pyspark_left_out(tmp_path: Path) -> None:
    """A requirement not installed here is resolved by pip; pyspark is never bundled."""
    project = make_provider_project(
        tmp_path, dependencies=("skil-sdk", "tomli-w>=1.0", "pyspark>=3.5")
    )
    result = build([project])
    pins = {p["name"]: p for p in result.manifest["pins"]}
    assert "tomli-w" in pins and len(pins["tomli-w"]["sha256"]) == 64
    assert "pyspark" not in pins and "pyspark" in result.manifest["excludes"]
    wheels = bundled_wheels(result.bundle)
    assert any(w.startswith("tomli_w-") for w in wheels)
    assert not any(w.startswith(("pyspark", "py4j")) for w in wheels)
