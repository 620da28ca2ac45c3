"""Providers used by the Spark tests, named by import path (``_providers:Class``).

They return DataFrames, so the executors only need skil_sdk (from the bundle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skil_sdk import ExecutorSource, KeyedDataSetProvider, ProviderOption


class RowsProvider(KeyedDataSetProvider):
    """Rows given as a DataFrame built by the test (``rows`` is a module-level dict key)."""

    PLUGIN_NAME = "test-rows"
    OPTIONS = (ProviderOption("key", "which registered DataFrame builder to use", required=True),)
    builders: dict[str, Any] = {}

    def data(self, spark: Any, **options: str) -> Any:
        return self.builders[options["key"]](spark)


class PairsProvider(KeyedDataSetProvider):
    """An RDD of ``(key, ndarray)`` pairs: ids 0..n-1, features ``[i, i+1, i+2, i+3]``."""

    PLUGIN_NAME = "test-pairs"
    OPTIONS = (ProviderOption("n", "rows", default="40"),)

    def data(self, spark: Any, **options: str) -> Any:
        n = int(options.get("n", "40"))
        pairs = [(i, np.arange(i, i + 4, dtype=np.float32)) for i in range(n)]
        return spark.sparkContext.parallelize(pairs, 3)


class BrokenProvider(KeyedDataSetProvider):
    """A provider whose own code fails in ``data()`` (the line below divides by zero)."""

    PLUGIN_NAME = "test-broken"

    def data(self, spark: Any, **options: str) -> Any:
        rows = int(options.get("n", "3"))
        return rows / 0


class BrokenSource(ExecutorSource):
    """An executor source whose reader fails on the executors."""

    def splits(self) -> list[int]:
        return [0, 1]

    def read(self, split: int, batch_size: int) -> Any:
        yield np.arange(2, dtype=np.int64), np.zeros((2, 4), dtype=np.float32)
        raise KeyError(f"split {split} lost its file")


class BrokenSourceProvider(KeyedDataSetProvider):
    """Returns a :class:`BrokenSource`."""

    PLUGIN_NAME = "test-broken-source"

    def data(self, spark: Any, **options: str) -> Any:
        return BrokenSource()


class BlockingProvider(KeyedDataSetProvider):
    """Rows whose features come from a UDF that waits for a ``release`` file (bounded).

    Its first call touches ``started``, so a test knows that tasks are running.
    """

    PLUGIN_NAME = "test-blocking"
    OPTIONS = (ProviderOption("markers", "a directory for started/release", required=True),)

    def data(self, spark: Any, **options: str) -> Any:
        from pyspark.sql import functions as F

        markers = options["markers"]

        @F.udf("array<float>")
        def features(i: int) -> list[float]:
            import time
            from pathlib import Path

            Path(markers, "started").touch()
            deadline = time.monotonic() + 300
            while not Path(markers, "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return [float(i)] * 4

        return spark.range(0, 8, 1, 2).select(F.col("id"), features("id").alias("features"))


class OpenOptionsProvider(KeyedDataSetProvider):
    """Declares no options, so it takes any (``n`` rows of one feature, ``i * i``)."""

    PLUGIN_NAME = "test-open-options"

    def data(self, spark: Any, **options: str) -> Any:
        n = int(options.get("n", "10"))
        rows = [(i, [float(i * i)]) for i in range(n)]
        return spark.createDataFrame(rows, "id bigint, features array<float>")
