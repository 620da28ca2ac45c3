"""Shared fixtures: a fresh SKIL_HOME per test, one bundle and one SparkSession per session.

The SparkSession's executors run inside the session's bundle (``spark.pyspark.python``),
exactly as a submitted job's do. Slow tests (``@pytest.mark.slow``) run after the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tmpdirs import removed_after

from skil_sdk.builder.bundle import RUN_ENV as BUNDLE_RUN_ENV
from skil_sdk.plugins import reset_plugins

REPO_ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["_bundle_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Quick tests first, then slow ones, then the standalone-cluster ones."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("cluster"):
            return 2
        return 1 if item.get_closest_marker("slow") else 0

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def skil_home(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """Every test gets its own empty SKIL_HOME, removed after the test unless it failed."""
    home = tmp_path_factory.mktemp("skil-home")
    monkeypatch.setenv("SKIL_HOME", str(home))
    monkeypatch.delenv("SKIL_SERVER_URL", raising=False)
    monkeypatch.delenv("SKIL_LOAD_PLUGINS", raising=False)
    reset_plugins()
    with removed_after(request, home):
        yield home


@pytest.fixture(scope="session", autouse=True)
def no_jvm_archive() -> Iterator[None]:
    """Drivers run without the JVM class-data archive (``skil_sdk.spark.jvmarchive``),
    whose background dump (tens of CPU seconds) would otherwise start in every node cache
    the tests make; tests/spark/test_jvm_archive.py turns it on and waits for its dump."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_JVM_ARCHIVE", "off")
        yield


@pytest.fixture(scope="session", autouse=True)
def spark_local_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Spark's scratch space (``SPARK_LOCAL_DIRS``: a driver's ``spark-*`` folder with its
    copy of a shipped bundle, the block managers) in the session's temp folder, not in
    ``java.io.tmpdir``: what a driver a fault test kills leaves goes with the session."""
    path = tmp_path_factory.mktemp("spark-local")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_LOCAL_DIRS", str(path))
        yield path


@pytest.fixture(scope="session")
def node_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One node cache (PEX_ROOT, models) for the session, as a real node keeps one."""
    path = tmp_path_factory.mktemp("node-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIL_NODE_CACHE", str(path))
        yield path


@pytest.fixture()
def bundle_home(built_bundle: Any, node_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The SKIL_HOME where the session's bundle was built (with the ``squares`` plugin
    published), so a job's bundle is a cache hit and it starts at once."""
    home = Path(built_bundle.bundle).parents[3]
    monkeypatch.setenv("SKIL_HOME", str(home))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    return home


@pytest.fixture(scope="session")
def spark(built_bundle: Any, node_cache: Path) -> Iterator[Any]:
    """One local[2] SparkSession for the whole test session, executors inside the bundle."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    bundle = str(Path(built_bundle.bundle).resolve())
    os.environ["PEX_ROOT"] = str(node_cache / "pex")
    # pyspark starts Python workers with $PYSPARK_PYTHON (the conf below is for spark-submit).
    os.environ["PYSPARK_PYTHON"] = bundle
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("skil-sdk-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.pyspark.python", bundle)
        .config("spark.executorEnv.PEX_ROOT", str(node_cache / "pex"))
    )
    for key, value in BUNDLE_RUN_ENV.items():
        builder = builder.config(f"spark.executorEnv.{key}", value)
    session = builder.getOrCreate()
    yield session
    session.stop()
