"""GPU bundles: onnxruntime-gpu instead of onnxruntime, under a hash of their own.

The bundle tests build offline against a small stand-in wheel named ``onnxruntime-gpu``
1.31.1 (an ``onnxruntime`` package with ``STAND_IN = True``, requiring numpy): it stands
in for the real wheel, which is 243 MB and too heavy to download in CI. It is not
installed here, so the lock leaves it to ``pip download`` constrained to the other pins,
as it does the real one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _builder_helpers import bundled_wheels, cli
from _bundle_fixtures import make_provider_project, zip_wheel

from skil_sdk.builder.api import BuildResult, ensure_bundle
from skil_sdk.builder.bundle import RUN_ENV
from skil_sdk.builder.lock import (
    RUNTIME_REQUIREMENTS,
    gpu_requirement,
    installed_closure,
    runtime_requirements,
)
from skil_sdk.builder.targets import host_target

STAND_IN_VERSION = "1.31.1"


# -- the name mapping (quick) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "mapped"),
    [
        ("onnxruntime", "onnxruntime-gpu"),
        ("onnxruntime>=1.17", "onnxruntime-gpu>=1.17"),
        ("ONNXRuntime==1.20.1", "onnxruntime-gpu==1.20.1"),
        (
            'onnxruntime>=1.17; python_version >= "3.10"',
            'onnxruntime-gpu>=1.17; python_version >= "3.10"',
        ),
        ("onnxruntime-gpu>=1.20", "onnxruntime-gpu>=1.20"),
        ("onnx>=1.15", "onnx>=1.15"),
        ("numpy<3", "numpy<3"),
    ],
)
def test_gpu_requirement_maps_only_onnxruntime(requirement: str, mapped: str) -> None:
    assert gpu_requirement(requirement) == mapped


def test_runtime_requirements_swap_onnxruntime_for_the_gpu_build() -> None:
    assert runtime_requirements(False) == RUNTIME_REQUIREMENTS
    gpu = runtime_requirements(True)
    assert gpu[0] == "onnxruntime-gpu"
    assert "onnxruntime" not in gpu
    assert gpu[1:] == RUNTIME_REQUIREMENTS[1:]


def test_the_closure_maps_onnxruntime_at_any_depth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed dependency that requires onnxruntime asks for onnxruntime-gpu instead."""
    info = tmp_path / "fake_dep-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-dep\nVersion: 1.0\nRequires-Dist: onnxruntime>=1.17\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    target = host_target()
    cpu_pins, cpu_unresolved = installed_closure(["fake-dep"], target)
    assert cpu_pins["fake-dep"] == "1.0" and "onnxruntime" in cpu_pins
    assert cpu_unresolved == []
    gpu_pins, gpu_unresolved = installed_closure(["fake-dep"], target, gpu=True)
    assert gpu_pins == {"fake-dep": "1.0"}
    assert gpu_unresolved == ["onnxruntime-gpu>=1.17"]


# -- a gpu bundle, built offline (slow) ---------------------------------------------------


def write_stand_in_wheel(directory: Path) -> Path:
    """A valid ``onnxruntime-gpu`` 1.31.1 wheel holding a tiny ``onnxruntime`` package."""
    dist = f"onnxruntime_gpu-{STAND_IN_VERSION}"
    files = {
        "onnxruntime/__init__.py": f'__version__ = "{STAND_IN_VERSION}"\nSTAND_IN = True\n',
        f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\nName: onnxruntime-gpu\n"
        f"Version: {STAND_IN_VERSION}\nRequires-Dist: numpy\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: skil-sdk-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}.dist-info/top_level.txt": "onnxruntime\n",
    }
    return zip_wheel(directory, dist, files)


@dataclass
class GpuBuild:
    """The session's CPU bundle and a GPU bundle (built twice) in the same SKIL_HOME."""

    home: Path
    project: Path
    links: Path
    wheelhouse: Path
    cpu: Any
    gpu: BuildResult
    gpu_again: BuildResult
    cpu_after: BuildResult


@pytest.fixture(scope="module")
def gpu_build(
    built_bundle: Any, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GpuBuild]:
    """A GPU bundle beside the session's CPU bundle, with a plugin requiring onnxruntime.

    Its wheelhouse mirrors the session's (links) without any real onnxruntime-gpu, so the
    stand-in is the only one pip can pick.
    """
    root = tmp_path_factory.mktemp("gpu-bundle")
    links = root / "links"
    write_stand_in_wheel(links)
    mirror = root / "wheelhouse"
    mirror.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        if not wheel.name.startswith("onnxruntime_gpu-"):
            (mirror / wheel.name).symlink_to(wheel)
    project = make_provider_project(
        root, name="skil-ort", plugin="ort", dependencies=("skil-sdk", "onnxruntime>=1.17")
    )
    home = Path(built_bundle.bundle).parents[3]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKIL_HOME", str(home))
        mp.setenv("SKIL_WHEELHOUSE", str(mirror))
        options: dict[str, Any] = {"find_links": [links], "no_index": True, "gpu": True}
        gpu = ensure_bundle([project], **options)
        gpu_again = ensure_bundle([project], **options)
        mp.setenv("SKIL_WHEELHOUSE", str(wheelhouse))
        cpu_after = ensure_bundle()
    yield GpuBuild(home, project, links, mirror, built_bundle, gpu, gpu_again, cpu_after)


def _run_bundle(bundle: Path, code: str, pex_root: Path) -> dict[str, Any]:
    tmp = pex_root.with_name(f"{pex_root.name}-tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **RUN_ENV, "PEX_ROOT": str(pex_root), "TMPDIR": str(tmp)}
    env.pop("SKIL_HOME", None)
    proc = subprocess.run(
        [str(bundle), "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp.glob("pex-*")) == []  # the layout cleaned up
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_gpu_lock_pins_onnxruntime_gpu_and_never_onnxruntime(gpu_build: GpuBuild) -> None:
    manifest = gpu_build.gpu.manifest
    pins = {p["name"]: p["version"] for p in manifest["pins"]}
    assert pins["onnxruntime-gpu"] == STAND_IN_VERSION
    assert "onnxruntime" not in pins
    assert (
        pins["numpy"] == {p["name"]: p["version"] for p in gpu_build.cpu.manifest["pins"]}["numpy"]
    )
    assert "onnxruntime" in manifest["excludes"]
    assert manifest["gpu"] is True and manifest["inputs"]["onnxruntime"] == "gpu"
    wheels = bundled_wheels(gpu_build.gpu.bundle)
    assert f"onnxruntime_gpu-{STAND_IN_VERSION}-py3-none-any.whl" in wheels
    assert not any(w.startswith("onnxruntime-") for w in wheels)
    assert any(w.startswith("skil_ort-0.1.0") for w in wheels)


@pytest.mark.slow
def test_gpu_bundle_has_its_own_hash_and_is_cached(gpu_build: GpuBuild) -> None:
    gpu, again = gpu_build.gpu, gpu_build.gpu_again
    assert gpu.hash != gpu_build.cpu.hash
    assert gpu.to_dict()["gpu"] is True and gpu_build.cpu.to_dict()["gpu"] is False
    assert not gpu.cached
    assert again.cached and again.hash == gpu.hash and again.bundle == gpu.bundle


@pytest.mark.slow
def test_cpu_bundle_is_untouched(gpu_build: GpuBuild) -> None:
    cpu, after = gpu_build.cpu, gpu_build.cpu_after
    assert after.cached and after.hash == cpu.hash and after.bundle == cpu.bundle
    assert after.manifest["gpu"] is False and "onnxruntime" not in after.manifest["inputs"]
    pins = {p["name"]: p["version"] for p in after.manifest["pins"]}
    assert "onnxruntime-gpu" not in pins
    wheels = bundled_wheels(after.bundle)
    assert any(w.startswith(f"onnxruntime-{pins['onnxruntime']}-") for w in wheels)
    assert not any(w.startswith("onnxruntime_gpu-") for w in wheels)


@pytest.mark.slow
def test_gpu_bundle_imports_the_gpu_build(gpu_build: GpuBuild, tmp_path: Path) -> None:
    probe = (
        "import json, onnxruntime\n"
        "from importlib import metadata\n"
        "try:\n"
        "    metadata.version('onnxruntime'); cpu = 'found'\n"
        "except metadata.PackageNotFoundError:\n"
        "    cpu = 'PackageNotFoundError'\n"
        "print(json.dumps({'stand_in': getattr(onnxruntime, 'STAND_IN', False),\n"
        "    'version': onnxruntime.__version__, 'gpu': metadata.version('onnxruntime-gpu'),\n"
        "    'cpu': cpu}))\n"
    )
    seen = _run_bundle(gpu_build.gpu.bundle, probe, tmp_path / "pex-root")
    assert seen == {
        "stand_in": True,
        "version": STAND_IN_VERSION,
        "gpu": STAND_IN_VERSION,
        "cpu": "PackageNotFoundError",
    }


@pytest.mark.slow
def test_cli_build_gpu_json(gpu_build: GpuBuild, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIL_WHEELHOUSE", str(gpu_build.wheelhouse))
    args = [str(gpu_build.project), "--gpu", "--find-links", str(gpu_build.links), "--no-index"]
    done = cli("build", *args, "--json", home=gpu_build.home)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["gpu"] is True and data["cached"] is True and data["hash"] == gpu_build.gpu.hash
    human = cli("build", *args, home=gpu_build.home)
    assert "Runtime: onnxruntime-gpu" in human.stdout
