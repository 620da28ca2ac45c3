"""Session fixtures for bundles: a persistent wheelhouse and one bundle per test session.

Loaded by ``tests/conftest.py`` (``pytest_plugins = ["_bundle_fixtures"]``). Also
helpers that write minimal provider projects and hand-made wheels for builder and
store tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

PROVIDER_MODULE = '''\
import skil_sdk
from skil_sdk import KeyedDataSetProvider, ProviderOption


class {cls}(KeyedDataSetProvider):
    """Rows 0..n-1 with one float feature each: the row number squared."""

    PLUGIN_NAME = "{plugin}"
    OPTIONS = (ProviderOption("n", "how many rows", default="10"),)

    def data(self, spark, **options):
        n = int(options.get("n", 10))
        rows = [(i, [float(i * i)]) for i in range(n)]
        return spark.createDataFrame(rows, "id long, features array<float>")


@skil_sdk.hookimpl
def register_providers(register):
    register({cls})
'''


def test_cache_dir() -> Path:
    """Where test caches persist across sessions: ``$SKIL_TEST_CACHE`` or ``<repo>/.cache``."""
    raw = os.environ.get("SKIL_TEST_CACHE")
    return Path(raw) if raw else REPO_ROOT / ".cache"


test_cache_dir.__test__ = False  # type: ignore[attr-defined]


def make_provider_project(
    root: Path,
    name: str = "skil-squares",
    version: str = "0.1.0",
    plugin: str = "squares",
    dependencies: tuple[str, ...] = ("skil-sdk",),
    extra_modules: dict[str, str] | None = None,
) -> Path:
    """Write a minimal provider project (setuptools, one ``skil_sdk`` entry point) under root."""
    package = name.replace("-", "_")
    project = root / name
    (project / package).mkdir(parents=True, exist_ok=True)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "{version}"
            dependencies = [{deps}]

            [project.entry-points.skil_sdk]
            {plugin} = "{package}.provider"

            [tool.setuptools.packages.find]
            include = ["{package}*"]
            """
        )
    )
    (project / package / "__init__.py").write_text("")
    cls = "".join(part.title() for part in plugin.replace("-", "_").split("_")) + "Provider"
    (project / package / "provider.py").write_text(PROVIDER_MODULE.format(cls=cls, plugin=plugin))
    for rel, body in (extra_modules or {}).items():
        (project / package / rel).write_text(body)
    return project


def write_wheel(
    directory: Path,
    name: str = "hand-made",
    version: str = "1.0",
    entry_points: dict[str, str] | None = None,
    payload: str = "VALUE = 1\n",
) -> Path:
    """Write a small valid wheel by hand (no build); ``entry_points`` are ``skil_sdk`` ones."""
    if entry_points is None:
        entry_points = {"hand": "hand_made.provider"}
    dist = f"{name.replace('-', '_')}-{version}"
    files: dict[str, str] = {
        "hand_made/__init__.py": "",
        "hand_made/provider.py": payload,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    if entry_points:
        lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        files[f"{dist}.dist-info/entry_points.txt"] = f"[skil_sdk]\n{lines}"
    return zip_wheel(directory, dist, files)


def zip_wheel(directory: Path, dist: str, files: dict[str, str]) -> Path:
    """Zip ``files`` (archive name to text) with their RECORD into ``dist``-py3-none-any.whl."""
    record = []
    for arc, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{arc},sha256={digest.decode()},{len(text.encode())}")
    files = {
        **files,
        f"{dist}.dist-info/RECORD": "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, text in files.items():
            zf.writestr(zipfile.ZipInfo(arc, (1980, 1, 1, 0, 0, 0)), text)
    return path


@pytest.fixture(scope="session", autouse=True)
def wheelhouse() -> Iterator[Path]:
    """A persistent third-party wheelhouse (``SKIL_WHEELHOUSE``) for the whole session.

    The first session downloads the wheels once; later ones (and every per-test
    SKIL_HOME) reuse them.
    """
    path = test_cache_dir() / "wheelhouse"
    path.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_WHEELHOUSE", str(path))
        yield path


@pytest.fixture(scope="session")
def built_bundle(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Any:
    """One bundle per test session, in its own SKIL_HOME, with the ``squares`` plugin published.

    Returns the :class:`skil_sdk.builder.api.BuildResult`.
    """
    from skil_sdk.builder.api import ensure_bundle, publish

    home = tmp_path_factory.mktemp("bundle-home")
    projects = tmp_path_factory.mktemp("bundle-projects")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_HOME", str(home))
        publish(make_provider_project(projects))
        return ensure_bundle()
