"""A SparkSession for a notebook whose executors run the bundle.

SKIL's ``batchInference(z, ...)`` ran in the notebook's own Spark context. Jobs already
run in a caller's session (``SkilContext.batch_inference(..., spark=spark)``); this module
builds such a session with :class:`~skil_sdk.SparkArgs`, the executors' Python being the
job bundle (shipped with ``--files`` on cluster masters, the node cache shared on local
ones), exactly as ``skil-sdk infer`` submits it. The notebook's own Python stays the
driver's.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skil_sdk.errors import ConflictError, InvalidValueError


def bundle_session(
    args: Any,
    *,
    plugins: Sequence[str] = (),
    execution_provider: str = "cpu",
    spark_home: str | None = None,
) -> Any:
    """Start a SparkSession with ``args`` whose executors run the job bundle.

    The bundle (published plugins plus ``plugins`` projects) is built or found in the
    cache first. The driver's JVM maps this machine's class-data archive when one is
    ready (:mod:`skil_sdk.spark.jvmarchive`). There must be no SparkContext in this
    process yet: Spark reads its launch settings once per process.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from skil_sdk.builder.api import ensure_bundle
    from skil_sdk.spark.jvmarchive import driver_archive, with_java_options
    from skil_sdk.spark.process import bundle_submit_flags
    from skil_sdk.spark.request import node_cache_dir
    from skil_sdk.spark.sparkhome import find_spark_home

    if SparkContext._active_spark_context is not None:
        raise ConflictError(
            "A SparkSession is already running in this process; pass it to "
            "batch_inference(spark=...) as it is, or restart the kernel before "
            "spark_session()."
        )
    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        raise ConflictError(
            "This process already started Spark's JVM (a stopped session, or a kernel "
            "started by pyspark), which keeps its launch settings; restart the kernel before "
            "spark_session()."
        )
    args.validate()
    if args.deploy_mode == "cluster":
        raise InvalidValueError(
            "A notebook's session runs its driver here; use deploy_mode='client' (the default)."
        )
    if execution_provider not in ("cpu", "cuda"):
        raise InvalidValueError(
            f"execution_provider must be cpu or cuda, not {execution_provider!r}."
        )
    bundle = ensure_bundle([Path(p) for p in plugins], gpu=execution_provider == "cuda")
    archive = driver_archive(args, find_spark_home(spark_home))
    args = with_java_options(args, archive.mapping_options() if archive else [])
    flags = bundle_submit_flags(args, bundle, driver_in_bundle=False)
    if not args.name:
        flags += ["--name", "skil-sdk notebook"]
    bundle_path = str(Path(bundle.bundle).resolve())
    local = args.master_kind == "local"
    environment = {
        "PYSPARK_SUBMIT_ARGS": shlex.join([*flags, "pyspark-shell"]),
        # what the executors start as their Python (the JVM reads it from the driver)
        "PYSPARK_PYTHON": bundle_path if local else f"./{Path(bundle_path).name}",
    }
    if local:
        environment["PEX_ROOT"] = os.environ.get("SKIL_NODE_CACHE", node_cache_dir()) + "/pex"
    if spark_home:
        environment["SPARK_HOME"] = str(Path(spark_home).expanduser())
    with _environment(environment):
        return SparkSession.builder.getOrCreate()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while the JVM starts; the earlier values after."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
