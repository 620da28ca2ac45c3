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
