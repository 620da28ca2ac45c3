"""Packed tasks: an executor-read provider's splits packed into tasks by size.

Spark packs small files into one read task (``spark.sql.files.maxPartitionBytes`` and
``openCostInBytes``); skil-sdk does the same with splits. By default the input is cut
into :data:`TASKS_PER_CORE` shares per core (more when a share would pass
:data:`MAX_ROWS_PER_TASK` rows), rounded up to a multiple of the cores so that the workers
finish together: each split costs its rows plus :data:`OPEN_COST_ROWS` (opening a file,
reading a footer) and goes to the share its middle falls in, so consecutive splits make
one task; a split costing more than a share is a task alone (a Parquet row group is never
cut), and no task passes :data:`MAX_ROWS_PER_TASK` rows unless one split does. With
``--rows-per-task N``, consecutive splits make tasks of at most ``N`` rows (a larger split
alone). When the source does not report a split's size, every split is a task. Packing
keeps the input's order and is a pure function of the split sizes, the parallelism and
the setting, so a job run again with the same parallelism packs the same tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Tasks per core when the target is chosen: enough to balance uneven splits.
TASKS_PER_CORE = 3
#: What a split costs beyond its rows, in rows (opening a file, reading its footer).
OPEN_COST_ROWS = 4096
#: The largest target chosen automatically (a task retried or resumed redoes this much).
MAX_ROWS_PER_TASK = 1 << 20


@dataclass(frozen=True)
class Packing:
    """Which splits each task reads, and what it was computed from."""

    #: Split indexes per task, in input order.
    tasks: tuple[tuple[int, ...], ...]
    splits: int
    parallelism: int
    #: The rows of one task aimed at (None: the splits had no sizes).
    target_rows: int | None
    #: The ``--rows-per-task`` setting (None: chosen from the parallelism).
    rows_per_task: int | None

    def to_dict(self) -> dict[str, Any]:
        """The summary a job records (not the per-task lists)."""
        return {
            "splits": self.splits,
            "tasks": len(self.tasks),
            "parallelism": self.parallelism,
            "target_rows": self.target_rows,
            "rows_per_task": self.rows_per_task,
        }


def pack_tasks(
    sizes: Sequence[int | None], parallelism: int, rows_per_task: int | None = None
) -> Packing:
    """Pack splits of ``sizes`` rows (None: unknown) into tasks for ``parallelism`` cores."""
    parallelism = max(1, parallelism)
    count = len(sizes)
    if count == 0:
        return Packing((), 0, parallelism, None, rows_per_task)
    if any(size is None for size in sizes):  # nothing to pack by: a task per split
        return Packing(tuple((i,) for i in range(count)), count, parallelism, None, rows_per_task)
    rows = [int(size or 0) for size in sizes]
    if rows_per_task is not None:
        tasks = _up_to(rows, rows_per_task)
        return Packing(tasks, count, parallelism, rows_per_task, rows_per_task)
    costs = [r + OPEN_COST_ROWS for r in rows]
    shares = max(parallelism * TASKS_PER_CORE, math.ceil(sum(rows) / MAX_ROWS_PER_TASK))
    shares = min(count, math.ceil(shares / parallelism) * parallelism)
    tasks = tuple(
        piece
        for task in _equal_shares(costs, shares)
        for piece in _cut(task, rows, MAX_ROWS_PER_TASK)
    )
    return Packing(tasks, count, parallelism, math.ceil(sum(rows) / shares), None)


def _cut(task: tuple[int, ...], rows: list[int], limit: int) -> tuple[tuple[int, ...], ...]:
    """``task`` cut into tasks of at most ``limit`` rows where it holds more."""
    if sum(rows[i] for i in task) <= limit:
        return (task,)
    pieces = _up_to([rows[i] for i in task], limit)
    return tuple(tuple(task[j] for j in piece) for piece in pieces)


def _up_to(rows: list[int], limit: int) -> tuple[tuple[int, ...], ...]:
    """Consecutive splits into tasks of at most ``limit`` rows (a larger split alone)."""
    tasks: list[list[int]] = []
    held = 0
    for index, count in enumerate(rows):
        if not tasks or held + count > limit:
            tasks.append([])
            held = 0
        tasks[-1].append(index)
        held += count
    return tuple(tuple(task) for task in tasks)


def _equal_shares(costs: list[int], shares: int) -> tuple[tuple[int, ...], ...]:
    """Consecutive splits into about ``shares`` tasks of near-equal cost: each split goes
    to the share its middle falls in; a split costing more than a share is a task alone."""
    total = sum(costs)
    tasks: list[list[int]] = []
    last: int | None = None
    before = 0
    for index, cost in enumerate(costs):
        alone = cost * shares > total
        share = min(shares - 1, (2 * before + cost) * shares // (2 * total))
        if alone or share != last:
            tasks.append([])
        tasks[-1].append(index)
        last = None if alone else share
        before += cost
    return tuple(tuple(task) for task in tasks)


def split_sizes(source: Any, splits: Sequence[Any]) -> list[int | None]:
    """Each split's rows as the source reports them (None where it does not)."""
    sizes: list[int | None] = []
    for split in splits:
        size = source.split_rows(split)
        sizes.append(None if size is None else max(0, int(size)))
    return sizes
