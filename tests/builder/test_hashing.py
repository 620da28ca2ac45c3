"""Source digests, bundle-input hashes, targets and wheel metadata (no builds)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _bundle_fixtures import make_provider_project, write_wheel

from skil_sdk.builder.hashing import inputs_hash, source_digest, source_files
from skil_sdk.builder.manifest import input_changes
from skil_sdk.builder.targets import host_target, platform_target, resolve_target
from skil_sdk.errors import InvalidValueError
from skil_sdk.wheelinfo import read_wheel


def test_digest_is_the_same_in_two_places_and_ignores_build_outputs(tmp_path: Path) -> None:
    a = make_provider_project(tmp_path / "a")
    b = make_provider_project(tmp_path / "b")
    for junk in ("build/lib/x.py", "dist/x.whl", "skil_squares.egg-info/PKG-INFO",
                 "skil_squares/__pycache__/x.pyc", ".git/HEAD", "venv/pyvenv.cfg",
                 "env/pyvenv.cfg", "env/lib/x.py"):
        (b / junk).parent.mkdir(parents=True, exist_ok=True)
        (b / junk).write_text("junk")
    assert source_digest(a) == source_digest(b)
    assert not any(f.startswith(("build/", "dist/", "env/")) for f in source_files(b))


def test_job_outputs_and_spark_files_in_a_project_are_not_its_source(tmp_path: Path) -> None:
    """`skil-sdk infer --plugin . --output out/` run in the project must not change it."""
    project = make_provider_project(tmp_path)
    files, digest = source_files(project), source_digest(project)
    for rel in ("out/_SUCCESS", "out/_skil_job.json", "out/part-00000-a.snappy.parquet",
                "runs/2024/_skil_job.json", "runs/2024/part-00000-b.parquet",
                "running/_temporary/0/task", "spark-warehouse/t/part-0", "metastore_db/seg0",
                "derby.log"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("written by a job")
    assert source_files(project) == files
    assert source_digest(project) == digest
    (project / "data").mkdir()
    (project / "data" / "rows.csv").write_text("id,x\n1,2\n")
    assert "data/rows.csv" in source_files(project) and source_digest(project) != digest


def test_input_changes_name_what_differs() -> None:
    before = {
        "sdk": ["skil-sdk", "0.1.0", "aa"],
        "plugins": [["one", "1.0", "11"], ["two", "1.0", "22"]],
        "pins": [["numpy", "2.0", "numpy.whl", "33"]],
        "pex": "2.1",
    }
    after = {
        **before,
        "plugins": [["one", "1.0", "12"], ["three", "1.0", "44"]],
        "pex": "2.2",
    }
    assert input_changes(before, after) == [
        "plugin one changed",
        "plugin three added",
        "plugin two removed",
        "pex version changed",
    ]
    assert input_changes(before, {**before, "sdk": ["skil-sdk", "0.1.0", "ab"]}) == [
        "skil-sdk changed"
    ]
    assert input_changes(before, before) == []


def test_digest_changes_with_content_mode_and_deletion(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path)
    module = project / "skil_squares" / "provider.py"
    before = source_digest(project)
    module.write_text(module.read_text() + "\n# edited\n")
    edited = source_digest(project)
    os.chmod(module, 0o755)
    chmodded = source_digest(project)
    os.unlink(module)
    assert len({before, edited, chmodded, source_digest(project)}) == 4


def test_digest_does_not_depend_on_the_directory_name(tmp_path: Path) -> None:
    project = make_provider_project(tmp_path)
    moved = shutil.copytree(project, tmp_path / "elsewhere" / "renamed")
    assert source_digest(project) == source_digest(moved)


def test_inputs_hash_is_order_independent_for_keys() -> None:
    assert inputs_hash({"a": 1, "b": [1, 2]}) == inputs_hash({"b": [1, 2], "a": 1})
    assert inputs_hash({"a": 1}) != inputs_hash({"a": 2})


def test_targets() -> None:
    host = host_target()
    assert host.host and host.tags and host.python_version.count(".") == 1
    other = platform_target("manylinux2014_x86_64-cp-311-cp311")
    assert "cp311-cp311-manylinux_2_17_x86_64" in other.tags
    assert "cp311-cp311-manylinux_2_5_x86_64" in other.tags
    assert other.markers["sys_platform"] == "linux"
    assert other.pex_args == ("--platform", "manylinux2014_x86_64-cp-311-cp311")
    mac = platform_target("macosx_11_0_arm64-cp-3.12-cp312")
    assert mac.python_version == "3.12" and mac.markers["platform_system"] == "Darwin"
    with pytest.raises(InvalidValueError, match="PLATFORM-IMPL-VERSION-ABI"):
        resolve_target("linux")


def test_read_wheel_metadata_and_entry_points(tmp_path: Path) -> None:
    info = read_wheel(write_wheel(tmp_path, name="My-Plugin", version="1.2"))
    assert (info.name, info.version, info.key) == ("My-Plugin", "1.2", "my-plugin")
    assert info.plugin_entry_points == {"hand": "hand_made.provider"}
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InvalidValueError, match="not a readable wheel"):
        read_wheel(bad)
