"""Providers used by the Spark tests, named by import path (``_providers:Class``).

They return DataFrames, so the executors only need skil_sdk (from the bundle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skil_sdk import KeyedDataSetProvider, ProviderOption


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
