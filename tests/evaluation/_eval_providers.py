"""Labelled providers for the evaluation tests, named by import path (``_eval_providers:Class``)."""

from __future__ import annotations

from typing import Any

from skil_sdk import KeyedDataSetProvider, ProviderOption


class LabelledRowsProvider(KeyedDataSetProvider):
    """A DataFrame (``id``, ``features``, a label column) built by the test."""

    PLUGIN_NAME = "test-labelled-rows"
    OPTIONS = (ProviderOption("key", "which registered builder to use", required=True),)
    builders: dict[str, Any] = {}

    def data(self, spark: Any, **options: str) -> Any:
        return self.builders[options["key"]](spark)


class LabelledPairsProvider(KeyedDataSetProvider):
    """An RDD of ``(key, (features, label))`` pairs registered by the test, in 4 partitions."""

    PLUGIN_NAME = "test-labelled-pairs"
    OPTIONS = (ProviderOption("key", "which registered pair list to use", required=True),)
    pairs: dict[str, list[Any]] = {}

    def data(self, spark: Any, **options: str) -> Any:
        return spark.sparkContext.parallelize(self.pairs[options["key"]], 4)
