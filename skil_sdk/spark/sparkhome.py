"""Finding ``spark-submit``: a profile's or request's spark_home, SPARK_HOME, or pip's pyspark."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from skil_sdk.errors import SparkError


def find_spark_home(explicit: str | None = None) -> Path:
    """The Spark installation to submit with."""
    if explicit:
        home = Path(explicit).expanduser()
        if not (home / "bin" / "spark-submit").exists():
            raise SparkError(
                f"spark_home {home} has no bin/spark-submit; point it at a Spark installation."
            )
        return home
    env = os.environ.get("SPARK_HOME")
    if env and (Path(env) / "bin" / "spark-submit").exists():
        return Path(env)
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.origin:
        home = Path(spec.origin).parent
        if (home / "bin" / "spark-submit").exists():
            return home
    raise SparkError(
        "No Spark installation found; set SPARK_HOME or install pyspark "
        "(pip install 'skil-sdk[spark]')."
    )


def spark_submit(explicit: str | None = None) -> Path:
    """Path of the ``spark-submit`` script to use."""
    return find_spark_home(explicit) / "bin" / "spark-submit"
