"""Executor-read providers for the local engine tests, named by import path.

The local engine forks its workers from the process that prepared the job, so these
classes need no bundle; CLI tests put this directory on PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from skil_sdk import ExecutorSource, KeyedDataSetProvider, ProviderOption


def features_of(ids: np.ndarray) -> np.ndarray:
    """Deterministic 4 features per id."""
    return (ids[:, None] / np.array([1.0, 2.0, 3.0, 4.0]) / 1000.0).astype(np.float32)


class MarkedSource(ExecutorSource):
    """Rows 0..n-1 in ``splits`` splits. With ``kill_split``, the first read of that split
    kills its own worker (SIGKILL, once: a marker remembers); with ``block``, every read
    of a split from ``block_from`` on touches ``started`` and waits (bounded) for
    ``release``. Its fingerprint is its settings (the rows are computed, not read)."""

    def __init__(
        self,
        n: int,
        splits: int,
        markers: str,
        kill_split: int,
        block: bool,
        block_from: int,
        lose_row: int = -1,
    ) -> None:
        self.n, self.count, self.markers = n, splits, markers
        self.kill_split, self.block, self.block_from = kill_split, block, block_from
        self.lose_row = lose_row  # a row read() leaves out although count_hint() counts it

    def fingerprint(self) -> str:
        return f"marked:{self.n}:{self.count}"

    def splits(self) -> list[tuple[int, int]]:
        step = -(-self.n // self.count)
        return [(s, min(self.n, s + step)) for s in range(0, self.n, step)]

    def count_hint(self) -> int:
        return self.n

    def read(self, split: tuple[int, int], batch_size: int) -> Iterator[tuple[Any, Any]]:
        markers = Path(self.markers)
        Path(markers, f"read-{split[0]}-{os.getpid()}").touch()
        step = max(1, -(-self.n // self.count))
        if self.block and split[0] // step >= self.block_from:
            Path(markers, "started").touch()
            deadline = time.monotonic() + 300
            while not Path(markers, "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        first = split[0] // max(1, -(-self.n // self.count))
        for start in range(split[0], split[1], batch_size):
            stop = min(split[1], start + batch_size)
            ids = np.arange(start, stop, dtype=np.int64)
            ids = ids[ids != self.lose_row]
            yield ids, features_of(ids)
            if first == self.kill_split and not Path(markers, "killed").exists():
                Path(markers, "killed").touch()
                os.kill(os.getpid(), signal.SIGKILL)


class MarkedProvider(KeyedDataSetProvider):
    """A :class:`MarkedSource`."""

    PLUGIN_NAME = "test-marked"
    READS_ON_EXECUTORS = True
    OPTIONS = (
        ProviderOption("n", "rows", default="1000", type="int"),
        ProviderOption("splits", "splits", default="8", type="int"),
        ProviderOption("markers", "a directory for markers", required=True, type="path"),
        ProviderOption("kill_split", "the split whose first read kills its worker", default="-1"),
        ProviderOption("block", "reads wait for a release file", default="false", type="bool"),
        ProviderOption("block_from", "the first split whose reads wait", default="0", type="int"),
        ProviderOption("lose_row", "an id read() leaves out", default="-1", type="int"),
    )

    def data(self, spark: Any, **options: str) -> MarkedSource:
        return MarkedSource(
            int(options["n"]),
            int(options["splits"]),
            options["markers"],
            int(options["kill_split"]),
            options["block"] == "true",
            int(options["block_from"]),
            int(options["lose_row"]),
        )
