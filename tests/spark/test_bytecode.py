"""The bundle's unpacked wheels are byte-compiled once per node, in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from skil_sdk.builder.bundle import RUN_ENV
from skil_sdk.spark import bytecode, nodecache
from skil_sdk.spark.bundlepaths import running_venv, running_wheel_dirs
from skil_sdk.spark.nodecache import venv_dirs


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


def test_wheels_linked_from_a_venv_are_found(tmp_path: Path) -> None:
    wheel = tmp_path / "pex" / "installed_wheels" / "3" / ("b" * 64) / "dep-1.0-py3-none-any.whl"
    (wheel / "dep").mkdir(parents=True)
    site_packages = tmp_path / "pex" / "venvs" / "4" / ("c" * 40) / "lib" / "site-packages"
    site_packages.mkdir(parents=True)
    (site_packages / "dep").symlink_to(wheel / "dep")
    (site_packages / "dep-1.0.dist-info").mkdir()
    assert running_wheel_dirs([str(site_packages), str(tmp_path)]) == [wheel]


def test_the_real_bundle_runs_from_a_venv_of_links_and_survives_eviction(
    built_bundle: Any, tmp_path: Path
) -> None:
    """Run the built bundle as Spark runs it, find its venv and wheels, evict them all, and
    run it again: the next start lays them out anew."""
    node_cache, temp = tmp_path / "node-cache", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, **RUN_ENV, "PEX_ROOT": str(node_cache / "pex"), "TMPDIR": str(temp)}
    env.pop("SKIL_HOME", None)
    probe = (
        "import json, onnxruntime; from skil_sdk.spark import bundlepaths as b; "
        "print(json.dumps({'venv': str(b.running_venv()), "
        "'wheels': [str(w) for w in b.running_wheel_dirs()], 'ort': onnxruntime.__version__}))"
    )

    def run_probe() -> dict[str, Any]:
        proc = subprocess.run(
            [str(built_bundle.bundle), "-c", probe],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))

    first = run_probe()
    venv = Path(first["venv"])
    assert venv.is_relative_to(node_cache / "pex" / "venvs") and venv in venv_dirs(
        node_cache / "pex"
    )
    names = {Path(w).name.split("-")[0] for w in first["wheels"]}
    assert {"onnxruntime", "skil_sdk", "skil_squares", "pyarrow", "numpy"} <= names
    assert all(
        Path(w).is_relative_to(node_cache / "pex" / "installed_wheels") for w in first["wheels"]
    )

    removed = nodecache.evict(node_cache, 0)
    assert venv in removed and set(map(Path, first["wheels"])) <= set(removed)
    assert not venv.exists()
    second = run_probe()
    assert second["ort"] == first["ort"] and Path(second["venv"]).is_dir()
    assert sorted(p.name for p in temp.glob("pex-*")) == []  # both layouts cleaned up


def test_a_users_own_venv_is_never_taken_for_a_bundle_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "venvs" / "analytics"
    own.mkdir(parents=True)
    (own / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setattr(sys, "prefix", str(own))
    assert running_venv() is None
    (own / "PEX-INFO").write_text("{}")  # what pex writes into the venvs it makes
    assert running_venv() == own.resolve()
