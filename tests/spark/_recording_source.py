"""A provider whose executor source records which process read each split.

Tests ship it to the executors by value (cloudpickle), since the bundle does not hold it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from skil_sdk import ExecutorSource, KeyedDataSetProvider, ProviderOption


class RecordingSource(ExecutorSource):
    """Rows 0..n-1 with 4 features each, ``splits`` splits; every ``read`` leaves a marker."""

    def __init__(self, n: int, splits: int, markers: str) -> None:
        self.n, self.count, self.markers = n, splits, markers
        Path(markers, f"splits-{os.getpid()}").touch()

    def splits(self) -> list[tuple[int, int]]:
        step = -(-self.n // self.count)
        return [(s, min(self.n, s + step)) for s in range(0, self.n, step)]

    def read(self, split: tuple[int, int], batch_size: int) -> Iterator[tuple[Any, Any]]:
        Path(self.markers, f"read-{os.getpid()}-{split[0]}").touch()
        for start in range(split[0], split[1], batch_size):
            stop = min(split[1], start + batch_size)
            ids = np.arange(start, stop, dtype=np.int64)
            yield ids, features_of(ids)

    def count_hint(self) -> int:
        return self.n


def features_of(ids: np.ndarray) -> np.ndarray:
    """The features of rows ``ids``: ``[i, i/2, i/3, i/4] / n``-like, deterministic."""
    return (ids[:, None] / np.array([1.0, 2.0, 3.0, 4.0]) / 1000.0).astype(np.float32)


class RecordingProvider(KeyedDataSetProvider):
    """An executor source that records where its splits are read."""

    PLUGIN_NAME = "test-recording"
    OPTIONS = (
        ProviderOption("n", "rows", default="100"),
        ProviderOption("splits", "splits", default="5"),
        ProviderOption("markers", "a directory for the markers", required=True),
    )

    def data(self, spark: Any, **options: str) -> RecordingSource:
        return RecordingSource(int(options["n"]), int(options["splits"]), options["markers"])


class SameRowsAsFrame(KeyedDataSetProvider):
    """The same rows as :class:`RecordingProvider`, as a DataFrame (the Arrow path)."""

    PLUGIN_NAME = "test-recording-frame"
    OPTIONS = (ProviderOption("n", "rows", default="100"),)

    def data(self, spark: Any, **options: str) -> Any:
        n = int(options["n"])
        ids = np.arange(n, dtype=np.int64)
        rows = [(int(i), row.tolist()) for i, row in zip(ids, features_of(ids), strict=True)]
        return spark.createDataFrame(rows, "id bigint, features array<float>").repartition(3)


class DyingOnceSource(RecordingSource):
    """:class:`RecordingSource` whose Python worker dies half-way through the split that
    starts at ``die_at``, the first time only (a marker file remembers it)."""

    def __init__(self, n: int, splits: int, markers: str, die_at: int) -> None:
        super().__init__(n, splits, markers)
        self.die_at = die_at

    def read(self, split: tuple[int, int], batch_size: int) -> Iterator[tuple[Any, Any]]:
        died = Path(self.markers, "died")
        for count, batch in enumerate(super().read(split, batch_size)):
            if split[0] == self.die_at and count == 1 and not died.exists():
                died.touch()
                os._exit(17)  # the Python worker dies mid-task; Spark retries the task
            yield batch


class DyingOnceProvider(KeyedDataSetProvider):
    """An executor source whose worker dies once, mid-task."""

    PLUGIN_NAME = "test-dying-once"
    OPTIONS = (
        *RecordingProvider.OPTIONS,
        ProviderOption("die_at", "the first row of the split whose worker dies", default="0"),
    )

    def data(self, spark: Any, **options: str) -> DyingOnceSource:
        return DyingOnceSource(int(options["n"]), int(options["splits"]), options["markers"],
                               int(options["die_at"]))
