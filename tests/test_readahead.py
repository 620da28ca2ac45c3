"""Read-ahead keeps the order, raises a producer's error at its place, and stops its
thread when the consumer stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from skil_sdk.inference.readahead import read_ahead


def test_items_come_in_order_whatever_the_depth() -> None:
    for depth in (0, 1, 2, 8):
        assert list(read_ahead(iter(range(50)), depth)) == list(range(50))


def test_the_producers_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 3 is bad")

    seen: list[int] = []
    with pytest.raises(ValueError, match="row 3 is bad"):
        for item in read_ahead(items(), 2):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    produced: list[int] = []
    blocked = threading.Event()

    def items() -> Iterator[int]:
        for i in range(1_000):
            produced.append(i)
            if i == 3:  # 0 taken, 1 and 2 waiting: 3 waits for room
                blocked.set()
            yield i

    reader = read_ahead(items(), 2)
    assert next(reader) == 0
    assert blocked.wait(timeout=30)
    reader.close()  # joins the thread
    assert not any(t.name == "skil-read-ahead" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 1_000, "the reader stopped instead of reading everything"


def test_the_readers_cleanup_runs_in_its_own_thread() -> None:
    threads: list[str] = []

    def items() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            threads.append(threading.current_thread().name)

    reader = read_ahead(items(), 2)
    assert next(reader) == 0
    reader.close()
    assert threads == ["skil-read-ahead"]


def test_rebatch_never_joins_a_batch_whose_rows_do_not_match_its_ids() -> None:
    import numpy as np

    from skil_sdk.spark.adapter import Batch
    from skil_sdk.spark.executor import rebatch

    good = Batch(np.arange(3), np.zeros((3, 2), np.float32), [])
    short = Batch(np.arange(3, 6), np.zeros((2, 2), np.float32), [])
    assert [len(b.features) for b in rebatch([good, short], 100)] == [3, 2]
    unsigned = Batch(np.arange(6, 9, dtype=np.uint64), np.zeros((3, 2), np.float32), [])
    assert [b.ids.dtype for b in rebatch([good, unsigned], 100)] == [np.int64, np.uint64]
