"""Case (a) of ``bench/inference.py``: the limit, without Spark.

One process per core; each creates an onnxruntime session (1 intra-op thread), warms
it up, waits for the others, then takes row groups from a shared queue (as Spark's
scheduler hands out tasks), reads each with pyarrow in batches, runs the model and
writes ``id`` plus the outputs to one Parquet file per row group. Given a directory
instead of a file, the tasks are its ``*.parquet`` files (every row group of one file
each, so that no footer is read before the processes start), one output file per file.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any


def _features(batch: Any) -> Any:
    column = batch.column("features")
    width = len(column[0]) if len(column) else 0
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)


def _worker(
    files: list[str],
    model: str,
    out: str,
    batch_size: int,
    tasks: Any,
    results: Any,
    barrier: Any,
) -> None:
    import onnxruntime as ort
    import pyarrow as pa
    import pyarrow.parquet as pq

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    opened = (0, pq.ParquetFile(files[0]))
    warm = next(opened[1].iter_batches(batch_size=batch_size, row_groups=[0]))
    for _ in range(3):
        session.run(None, {name: _features(warm)})
    barrier.wait()
    start = time.monotonic()
    rows = groups = 0
    while (task := tasks.get()) is not None:
        number, file, group = task
        if opened[0] != file:
            opened = (file, pq.ParquetFile(files[file]))
        writer = None
        for batch in opened[1].iter_batches(
            batch_size=batch_size,
            row_groups=None if group is None else [group],
            columns=["id", "features"],
        ):
            output = session.run(None, {name: _features(batch)})[0]
            flat = pa.array(output.reshape(-1))
            values = pa.FixedSizeListArray.from_arrays(flat, output.shape[1])
            table = pa.table({"id": batch.column("id"), "output": values})
            if writer is None:
                writer = pq.ParquetWriter(f"{out}/part-{number:05d}.parquet", table.schema)
            writer.write_table(table)
            rows += batch.num_rows
        if writer is not None:
            writer.close()
        groups += opened[1].num_row_groups if group is None else 1
    end = time.monotonic()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put({"rows": rows, "groups": groups, "start": start, "end": end, "peak_kb": peak_kb})


def run_limit(
    data: Path, model: Path, out: Path, processes: int, batch_size: int
) -> dict[str, Any]:
    """Rows/s of ``processes`` processes over every row group of ``data``; peak RSS of each.

    ``data`` is one Parquet file (a task per row group) or a directory of them (a task
    per file).
    """
    out.mkdir(parents=True, exist_ok=True)
    files, queued = _tasks(data)
    context = mp.get_context("spawn")
    tasks = context.Queue()
    results = context.Queue()
    barrier = context.Barrier(processes)
    for task in queued:
        tasks.put(task)
    for _ in range(processes):
        tasks.put(None)
    workers = [
        context.Process(
            target=_worker,
            args=(files, str(model), str(out), batch_size, tasks, results, barrier),
        )
        for _ in range(processes)
    ]
    launched = time.monotonic()
    for worker in workers:
        worker.start()
    reports = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    rows = sum(r["rows"] for r in reports)
    seconds = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return {
        "processes": processes,
        "batch_size": batch_size,
        "files": len(files),
        "tasks": len(queued),
        "row_groups": sum(r["groups"] for r in reports),
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "start_to_end_s": round(max(r["end"] for r in reports) - launched, 3),
        "per_process": reports,
        "peak_rss_mb": round(max(r["peak_kb"] for r in reports) / 1024, 1),
    }


def _tasks(data: Path) -> tuple[list[str], list[tuple[int, int, int | None]]]:
    """The files and the tasks ``(number, file index, row group or None for all)``."""
    import pyarrow.parquet as pq

    if data.is_dir():
        files = [str(p) for p in sorted(data.glob("*.parquet"))]
        return files, [(i, i, None) for i in range(len(files))]
    groups = pq.ParquetFile(data).num_row_groups
    return [str(data)], [(g, 0, g) for g in range(groups)]
