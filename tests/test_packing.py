"""Packed tasks: splits packed into tasks by size, in input order, the same every time;
and the executors' rebatching that gives the model full batches from small splits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from skil_sdk.job.packing import MAX_ROWS_PER_TASK, TASKS_PER_CORE, pack_tasks
from skil_sdk.spark.adapter import Batch
from skil_sdk.spark.executor import rebatch


def _flat(tasks: tuple[tuple[int, ...], ...]) -> list[int]:
    return [index for task in tasks for index in task]


def test_many_small_splits_are_packed_into_a_few_tasks_per_core() -> None:
    packing = pack_tasks([250] * 4000, parallelism=2)
    assert _flat(packing.tasks) == list(range(4000)), "every split once, in input order"
    assert len(packing.tasks) == 2 * TASKS_PER_CORE
    assert {len(task) for task in packing.tasks} <= {666, 667}, "near-equal tasks"
    assert packing.to_dict() == {
        "splits": 4000, "tasks": 6, "parallelism": 2, "target_rows": 166_667,
        "rows_per_task": None,
    }


def test_big_inputs_get_more_tasks_than_three_per_core() -> None:
    sizes = [16_384] * 400  # 6.5M rows: more than 6 shares of MAX_ROWS_PER_TASK
    packing = pack_tasks(sizes, parallelism=2)
    assert len(packing.tasks) == 8, "ceil(6.5M / 1,048,576) = 7, rounded up to 2 cores"
    assert max(sum(sizes[i] for i in t) for t in packing.tasks) <= MAX_ROWS_PER_TASK


def test_the_input_is_cut_into_tasks_per_core_that_finish_together() -> None:
    packing = pack_tasks([10_000] * 60, parallelism=4)
    assert len(packing.tasks) == 4 * TASKS_PER_CORE
    assert {len(task) for task in packing.tasks} == {5}
    # 19 row groups of 16,384 rows on 2 cores: 6 tasks of 3 or 4 row groups, not 7
    uneven = pack_tasks([16_384] * 18 + [5_000], parallelism=2)
    assert len(uneven.tasks) == 2 * TASKS_PER_CORE
    assert {len(task) for task in uneven.tasks} <= {3, 4}
    assert pack_tasks([100] * 3, parallelism=2).tasks == ((0,), (1,), (2,))


def test_large_splits_stay_whole_and_alone() -> None:
    packing = pack_tasks([2_000_000, 10, 10, 3_000_000, 10], parallelism=2)
    assert (0,) in packing.tasks and (3,) in packing.tasks
    assert _flat(packing.tasks) == [0, 1, 2, 3, 4]
    # a split costing more than a share never shares a task
    assert pack_tasks([0, 90_000] + [10_000] * 8, 2).tasks[:2] == ((0,), (1,))


def test_rows_per_task_makes_tasks_of_at_most_that_many_rows() -> None:
    assert pack_tasks([100] * 10, 2, rows_per_task=1).tasks == tuple((i,) for i in range(10))
    packing = pack_tasks([100] * 10, 2, rows_per_task=300)
    assert packing.tasks == ((0, 1, 2), (3, 4, 5), (6, 7, 8), (9,))
    assert packing.target_rows == 300 and packing.rows_per_task == 300
    assert pack_tasks([1000] * 100, 4, rows_per_task=10_000).tasks[0] == tuple(range(10))
    assert pack_tasks([50, 5000, 50], 2, rows_per_task=100).tasks == ((0,), (1,), (2,))


def test_splits_without_sizes_are_a_task_each() -> None:
    packing = pack_tasks([None] * 20, parallelism=2)
    assert packing.tasks == tuple((i,) for i in range(20)) and packing.target_rows is None
    assert pack_tasks([None, 5, None], parallelism=4).tasks == ((0,), (1,), (2,))
    assert pack_tasks([None] * 4, 2, rows_per_task=10).tasks == ((0,), (1,), (2,), (3,))


def test_packing_is_a_pure_function_of_its_inputs() -> None:
    sizes = [int(v) for v in np.random.default_rng(1).integers(0, 50_000, 500)]
    assert pack_tasks(sizes, 3) == pack_tasks(list(sizes), 3)
    assert pack_tasks([], 2).tasks == ()


def _batch(ids: list[int], width: int = 3, labels: bool = False) -> Batch:
    features = np.array([[i] * width for i in ids], dtype=np.float32)
    return Batch(
        np.array(ids, dtype=np.int64), features, [pa.array([str(i) for i in ids])],
        np.array(ids, dtype=np.int64) if labels else None,
    )


def test_rebatch_joins_small_batches_and_cuts_large_ones_keeping_the_order() -> None:
    incoming = [_batch(list(range(s, s + 3))) for s in range(0, 30, 3)] + [
        _batch(list(range(30, 55)))
    ]
    out = list(rebatch(incoming, 10))
    assert [len(b.ids) for b in out] == [9, 9, 9, 3, 10, 10, 5]
    assert np.concatenate([b.ids for b in out]).tolist() == list(range(55))
    assert np.concatenate([b.features[:, 0] for b in out]).tolist() == list(range(55))
    kept = [v for b in out for v in b.kept[0].to_pylist()]
    assert kept == [str(i) for i in range(55)]


def test_rebatch_never_joins_batches_of_other_shapes_or_id_kinds() -> None:
    wide, narrow = _batch([0, 1], width=4), _batch([2, 3], width=3)
    assert [len(b.ids) for b in rebatch([wide, narrow, _batch([4])], 100)] == [2, 3]
    arrow_ids = Batch(pa.array([5, 6]), np.zeros((2, 3), np.float32), [pa.array(["5", "6"])])
    out = list(rebatch([_batch([4]), arrow_ids], 100))
    assert [len(b.ids) for b in out] == [1, 2]
    with_labels = list(rebatch([_batch([0, 1], labels=True), _batch([2], labels=True)], 100))
    assert len(with_labels) == 1 and with_labels[0].labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("size", [1, 4, 1024])
def test_rebatch_keeps_every_row_whatever_the_size(size: int) -> None:
    incoming = [_batch(list(range(s, s + n))) for s, n in [(0, 5), (5, 1), (6, 7), (13, 2)]]
    out = list(rebatch(incoming, size))
    assert all(len(b.ids) <= size for b in out)
    assert np.concatenate([b.ids for b in out]).tolist() == list(range(15))


def test_no_task_passes_the_row_limit_unless_one_split_does() -> None:
    for sizes in ([1] * 2000 + [1_000_000] * 8, [1_000_000] * 7 + [1] * 3000):
        packing = pack_tasks(sizes, 2)
        assert _flat(packing.tasks) == list(range(len(sizes)))
        assert max(sum(sizes[i] for i in t) for t in packing.tasks) <= MAX_ROWS_PER_TASK
