"""Row quarantine: rows that cannot be fed to the model, kept apart with why.

A row fails at one *stage*: ``read`` (a provider's reader: a null, a row that is not a
regular tensor, a decoding error), ``shape`` (a row that does not fit the model's input
shape), ``cast`` (a value that is not of the input's type) or ``model`` (onnxruntime
refused it). Readers report such rows as :class:`BadRows`; when onnxruntime (or the
shaping before it) refuses a whole batch, the batch is bisected until the rows that make
it fail are found, and the others are written. Each task attempt keeps its bad rows in a
:class:`Quarantine`, written beside its part file and committed with it
(``OUTPUT/_errors/``). Past the job's budget (``--max-bad-rows``, 0 by default) the task
fails at once, naming the first bad row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from skil_sdk.commit import ERRORS_DIR
from skil_sdk.errors import BadRowsError, ModelError

__all__ = ["ERRORS_DIR", "BadRows", "Quarantine", "errors_schema", "over_budget", "run_isolating"]

STAGES = ("read", "shape", "cast", "model")


class BadRows(NamedTuple):
    """Rows a reader could not turn into features (an :class:`~skil_sdk.ExecutorSource`'s
    ``read()`` may yield these beside its ``(ids, features)`` batches).

    ``error`` is one message for every row, or one per row; ``source`` is the file the
    rows came from and ``offsets`` their row offsets in it, where known.
    """

    ids: Any
    error: str | Sequence[str]
    stage: str = "read"
    source: str | None = None
    offsets: Sequence[int] | None = None


def errors_schema(id_arrow: pa.DataType) -> pa.Schema:
    """The schema of ``OUTPUT/_errors/`` files: the input's id type kept."""
    return pa.schema(
        [
            pa.field("id", id_arrow),
            pa.field("stage", pa.string()),
            pa.field("error", pa.string()),
            pa.field("source", pa.string()),
            pa.field("row_offset", pa.int64()),
        ]
    )


def _python_ids(ids: Any) -> list[Any]:
    if isinstance(ids, pa.Array | pa.ChunkedArray):
        return list(ids.to_pylist())
    if isinstance(ids, np.ndarray):
        return list(ids.tolist())
    return [i.item() if isinstance(i, np.generic) else i for i in ids]


class Quarantine:
    """One task attempt's bad rows, within the job's budget ``limit`` (0: none allowed)."""

    def __init__(self, limit: int, id_arrow: pa.DataType, job_id: str = "") -> None:
        self.limit = limit
        self.id_arrow = id_arrow
        self.job_id = job_id
        self._columns: dict[str, list[Any]] = {
            "id": [],
            "stage": [],
            "error": [],
            "source": [],
            "row_offset": [],
        }

    @property
    def count(self) -> int:
        """The rows quarantined so far."""
        return len(self._columns["id"])

    def add(self, bad: BadRows) -> None:
        """Quarantine ``bad``; past the budget, raise naming the first bad row."""
        ids = _python_ids(bad.ids)
        if not ids:
            return
        errors = [bad.error] * len(ids) if isinstance(bad.error, str) else list(bad.error)
        offsets = list(bad.offsets) if bad.offsets is not None else [None] * len(ids)
        if self.limit == 0:
            raise _refused(ids[0], errors[0], bad.stage)
        self._columns["id"] += ids
        self._columns["stage"] += [bad.stage] * len(ids)
        self._columns["error"] += errors
        self._columns["source"] += [bad.source] * len(ids)
        self._columns["row_offset"] += offsets
        if self.count > self.limit:
            raise over_budget(
                self.count,
                self.limit,
                self._columns["id"][0],
                self._columns["stage"][0],
                self._columns["error"][0],
                self.job_id,
            )

    def first(self) -> tuple[Any, str, str] | None:
        """``(id, stage, error)`` of the first quarantined row (None: there is none)."""
        if not self.count:
            return None
        columns = self._columns
        return columns["id"][0], columns["stage"][0], columns["error"][0]

    def table(self) -> pa.Table:
        """The quarantined rows as a table of :func:`errors_schema`."""
        schema = errors_schema(self.id_arrow)
        return pa.table(
            {name: pa.array(values, type=schema.field(name).type)
             for name, values in self._columns.items()},
            schema=schema,
        )


def _refused(row_id: Any, error: str, stage: str) -> ModelError:
    """The error of a bad row when the job allows none (the default)."""
    message = error.rstrip(".")
    if f"id {row_id!r}" not in message:
        message += f" (in the row with id {row_id!r})"
    return ModelError(
        f"{message}; fix or drop the row, or pass --max-bad-rows N to quarantine up to N bad "
        "rows in OUTPUT/_errors/.",
        stage=stage,
    )


def over_budget(
    count: int, limit: int, first_id: Any, stage: str, error: str, job_id: str = ""
) -> BadRowsError:
    """The error of a job past its budget: the count, the budget, the first bad row."""
    resume = (
        f"`skil-sdk jobs resume {job_id} --max-bad-rows N`" if job_id else "a larger --max-bad-rows"
    )
    return BadRowsError(
        f"{count:,} rows could not be fed to the model, more than the job's budget of "
        f"{limit:,} (--max-bad-rows); the first is the row with id {first_id!r} ({stage}: "
        f"{error.rstrip('.')}); fix the input, or continue with {resume}."
    )


def run_isolating(
    runner: Any, batch: Any, input_shapes: Any, quarantine: Quarantine
) -> list[tuple[Any, Any]]:
    """``[(rows, outputs)]`` for the rows of ``batch`` (a :class:`~skil_sdk.spark.adapter.
    Batch`) the model runs on; when it refuses the batch, halves are tried until the rows
    that fail are found and quarantined. An error not caused by rows (a model that does not
    load, inputs named wrongly) fails at once."""
    from skil_sdk.inference.batching import slice_batch

    try:
        return [(batch, runner.run(batch.features, dict(input_shapes)))]
    except ModelError as exc:
        if exc.stage is None:
            raise
        failure = exc
    rows = len(batch.ids)
    if rows == 1:
        quarantine.add(BadRows(batch.ids, failure.message, stage=failure.stage or "model"))
        return []
    middle = rows // 2
    return run_isolating(
        runner, slice_batch(batch, 0, middle), input_shapes, quarantine
    ) + run_isolating(runner, slice_batch(batch, middle, rows), input_shapes, quarantine)
