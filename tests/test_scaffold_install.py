"""A rendered provider project, installed with real pip into a fresh virtualenv.

The virtualenv has no system site-packages. skil-sdk goes in from a clean copy of this
source tree with a non-editable ``pip install`` (so the templates come from the wheel),
then the projects that this installed skil-sdk renders go in with their ``test`` extra:
the default (DataFrame) provider and the executor-read one (``--reads-on-executors``).
pip's cache keeps the second run quick (pyspark's wheel is cached after the first).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import _model_fixtures as models
import numpy as np
import pytest
from _spark_helpers import read_output, run_onnxruntime
from _tmpdirs import removed_after

from skil_sdk import __version__

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
#: What a wheel of skil-sdk is built from.
SOURCES = ("pyproject.toml", "README.md", "skil_sdk", "templates")
#: Byte-compiling pyspark, pandas and friends would double the install time.
PIP_INSTALL = ("install", "--quiet", "--no-compile")
#: The CLI in a process where importing pyspark fails.
CLI_WITHOUT_PYSPARK = (
    "import sys; sys.modules['pyspark'] = None; from skil_sdk.cli import main; main()"
)


@dataclass
class Venv:
    """A fresh virtualenv and the environment its commands run in."""

    root: Path
    env: dict[str, str]
    work: Path

    def run(self, *args: str | Path, cwd: Path | None = None) -> str:
        """Run a command of the venv (``python``, ``skil-sdk``...) and return its stdout."""
        command = [str(self.root / "bin" / str(args[0])), *map(str, args[1:])]
        result = subprocess.run(
            command,
            cwd=cwd or self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, (
            f"{' '.join(command)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
        return result.stdout


@pytest.fixture(scope="module")
def venv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Venv]:
    """A fresh virtualenv with skil-sdk installed from a clean copy of the source tree
    (removed at the end of the module unless a test failed)."""
    work = tmp_path_factory.mktemp("scaffold-install")
    source = work / "skil-sdk-source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)

    root = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SKIL_LOAD_PLUGINS"}
    }
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(root)
    env["SKIL_HOME"] = str(work / "skil-home")
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    created = Venv(root=root, env=env, work=work)
    created.run("python", "-m", "pip", *PIP_INSTALL, source)
    with removed_after(request, work):
        yield created


@pytest.fixture(scope="module")
def project(venv: Venv) -> Path:
    """A provider project rendered by the installed skil-sdk and installed next to it."""
    report = json.loads(
        venv.run("skil-sdk", "new", "provider", "acme-rows", "-o", "projects", "--json")
    )
    path = Path(report["path"])
    assert path == venv.work / "projects" / "acme-rows"
    assert report["module"] == "acme_rows"
    venv.run("python", "-m", "pip", *PIP_INSTALL, f"{path}[test]")
    return path


def test_the_installed_wheel_carries_the_template(venv: Venv) -> None:
    out = venv.run(
        "python", "-c", "import skil_sdk.scaffold as s; print(s.template_dir(), s.__file__)"
    )
    template, module = out.split()
    site_packages = venv.root / "lib"
    assert Path(template).is_relative_to(site_packages)
    assert Path(module).is_relative_to(site_packages)
    freeze = venv.run("python", "-m", "pip", "list", "--format", "json")
    installed = {entry["name"]: entry for entry in json.loads(freeze)}
    assert installed["skil-sdk"]["version"] == __version__
    assert "editable_project_location" not in installed["skil-sdk"]


def test_providers_list_shows_the_installed_plugin(project: Path, venv: Venv) -> None:
    listed = {entry["name"]: entry for entry in json.loads(
        venv.run("skil-sdk", "providers", "list", "--json")
    )}  # fmt: skip
    entry = listed["acme-rows"]
    assert entry["plugin"] == "acme-rows"
    assert (entry["package"], entry["version"]) == ("acme-rows", "0.1.0")
    assert entry["class"] == "acme_rows.provider:AcmeRowsProvider"
    assert {"path", "format", "id", "features"} == {o["name"] for o in entry["options"]}
    assert {"mnist", "parquet", "csv", "numpy"} <= set(listed)


def test_the_rendered_project_tests_pass(project: Path, venv: Venv) -> None:
    out = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert " passed" in out and "failed" not in out and "skipped" not in out


@pytest.fixture(scope="module")
def executor_project(venv: Venv) -> Path:
    """The executor-read variant, rendered by the installed skil-sdk and installed too."""
    report = json.loads(venv.run(
        "skil-sdk", "new", "provider", "acme-lines", "-o", "projects", "--reads-on-executors",
        "--json",
    ))  # fmt: skip
    assert report["reads_on_executors"] is True
    path = Path(report["path"])
    venv.run("python", "-m", "pip", *PIP_INSTALL, f"{path}[test]")
    return path


def test_the_rendered_executor_read_project_tests_pass(executor_project: Path, venv: Venv) -> None:
    out = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=executor_project)
    assert " passed" in out and "failed" not in out and "skipped" not in out
    listed = {entry["name"]: entry for entry in json.loads(
        venv.run("skil-sdk", "providers", "list", "--json")
    )}  # fmt: skip
    options = {o["name"]: o for o in listed["acme-lines"]["options"]}
    assert list(options) == ["path", "format", "id", "features", "id_type", "split_mb"]
    assert options["path"]["type"] == "path" and options["path"]["required"]
    assert options["format"]["choices"] == ["jsonl", "csv"]
    assert (options["split_mb"]["type"], options["split_mb"]["minimum"]) == ("float", 0)


def test_a_local_engine_job_with_the_executor_read_provider(
    executor_project: Path, venv: Venv, tmp_path: Path
) -> None:
    """The installed variant on ``--engine local``, in a process that cannot import
    pyspark: the ids and outputs are onnxruntime's on the same features."""
    model = models.small_mlp_model(tmp_path)  # input [N, 4] -> output [N, 3]
    model_id = json.loads(
        venv.run("skil-sdk", "models", "add", model, "--experiment", "scaffold", "--json")
    )["id"]
    features = np.random.default_rng(11).standard_normal((333, 4)).astype(np.float32)
    ids = [f"row-{i:04d}" for i in range(len(features))]
    data = tmp_path / "rows.csv"
    data.write_text("id,a,b,c,d\n" + "".join(
        f"{ids[i]},{','.join(repr(float(v)) for v in row)}\n" for i, row in enumerate(features)
    ), encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    result = json.loads(venv.run(
        "python", "-c", CLI_WITHOUT_PYSPARK, "infer", "--engine", "local",
        "--master", "local[2]", "--model", model_id, "--provider", "acme-lines",
        "--provider-option", f"path={data}", "--provider-option", "split_mb=0.001",
        "--batch-size", "50", "--output", out, "--json",
    ))  # fmt: skip
    assert result["state"] == "SUCCEEDED" and result["engine"] == "local"
    assert result["rows"] == len(ids)
    table = read_output(out)
    assert str(table.schema.field("id").type) == "string"
    assert table.column("id").to_pylist() == ids
    expected = run_onnxruntime(model, {"input": features})["output"]
    outputs = np.array(table.column("output").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    meta = json.loads((out / "_skil_job.json").read_text(encoding="utf-8"))
    assert meta["engine"] == "local" and meta["rows"] == len(ids)
