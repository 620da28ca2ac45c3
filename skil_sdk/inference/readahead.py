"""Read-ahead: a reader's next batches decoded in a thread while the model runs.

pyarrow's Parquet decoding, numpy's conversions and onnxruntime's ``run`` release the
GIL, so a reader thread that stays ``depth`` batches ahead overlaps reading with compute.
Memory stays bounded: at most ``depth`` batches wait, one more is being read, beside the
one being computed. A provider's ``read()`` therefore runs in that thread (start to
finish, its cleanup too), not in the process's main thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, produced by a thread up to ``depth`` items ahead.

    An exception of the producer is raised here, at its place in the order; a consumer
    that stops early stops the thread (it never blocks on a full queue for long).
    ``depth`` < 1 reads in this thread.
    """
    if depth < 1:
        yield from items
        return
    waiting: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    iterator = iter(items)

    def produce() -> None:
        try:
            for item in iterator:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
            return
        finally:  # a reader's own cleanup runs in the thread that ran it
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        put(_DONE)

    thread = threading.Thread(target=produce, name="skil-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            value = waiting.get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value
    finally:
        stop.set()
        thread.join()
