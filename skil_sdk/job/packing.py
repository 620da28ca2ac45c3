"""Packed tasks: an executor-read provider's splits packed into tasks by size.

Spark packs small files into one read task (``spark.sql.files.maxPartitionBytes`` and
``openCostInBytes``); skil-sdk does the same with splits: each split costs its rows plus
:data:`OPEN_COST_ROWS` (opening a file, reading a footer), the input's cost is cut into
equal shares, and each split goes to the share its middle falls in, so consecutive splits
make one task. There are ``cost / --rows-per-task`` shares when that is given, else
:data:`TASKS_PER_CORE` per core (more when a share would pass :data:`MAX_ROWS_PER_TASK`),
rounded up to a multiple of the cores so that the workers finish together. A split larger
than a share is a task alone (a Parquet row group is never cut). Splits of unknown size
are packed by count. Packing keeps the input's order and is a pure function of the split
sizes, the parallelism and the setting, so a job run again packs the same tasks.
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
    #: The cost of one share in rows (None: the splits had no sizes).
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
    if any(size is None for size in sizes):
        return Packing(
            _by_count(count, parallelism, rows_per_task), count, parallelism, None, rows_per_task
        )
    costs = [int(size or 0) + OPEN_COST_ROWS for size in sizes]
    total = sum(costs)
    groups = _task_count(total, parallelism, rows_per_task)
    # split i goes to the task its middle falls in when the input is cut into `groups`
    # equal shares: contiguous tasks of near-equal cost, a large split alone
    tasks: list[list[int]] = []
    last = -1
    before = 0
    for index, cost in enumerate(costs):
        group = min(groups - 1, (2 * before + cost) * groups // (2 * total))
        if group != last:
            tasks.append([])
            last = group
        tasks[-1].append(index)
        before += cost
    target = math.ceil(total / groups)
    return Packing(tuple(tuple(t) for t in tasks), count, parallelism, target, rows_per_task)


def _task_count(total_cost: int, parallelism: int, rows_per_task: int | None) -> int:
    """How many equal shares the input is cut into: ``rows_per_task``'s, else
    :data:`TASKS_PER_CORE` per core (more when a share would pass
    :data:`MAX_ROWS_PER_TASK`), a multiple of the parallelism so workers finish together."""
    if rows_per_task is not None:
        return max(1, math.ceil(total_cost / rows_per_task))
    shares = max(parallelism * TASKS_PER_CORE, math.ceil(total_cost / MAX_ROWS_PER_TASK))
    return math.ceil(shares / parallelism) * parallelism


def _by_count(
    count: int, parallelism: int, rows_per_task: int | None
) -> tuple[tuple[int, ...], ...]:
    """Splits of unknown size: one per task when ``rows_per_task`` is given (each split
    may be that big), else into ``TASKS_PER_CORE`` tasks per core, contiguous."""
    if rows_per_task is not None:
        return tuple((index,) for index in range(count))
    groups = min(count, parallelism * TASKS_PER_CORE)
    bounds = [round(g * count / groups) for g in range(groups + 1)]
    return tuple(tuple(range(bounds[g], bounds[g + 1])) for g in range(groups))


def split_sizes(source: Any, splits: Sequence[Any]) -> list[int | None]:
    """Each split's rows as the source reports them (None where it does not)."""
    sizes: list[int | None] = []
    for split in splits:
        size = source.split_rows(split)
        sizes.append(None if size is None else max(0, int(size)))
    return sizes
