"""Case (a) of ``bench/inference.py``: the limit, without Spark.

One process per core; each creates an onnxruntime session (1 intra-op thread), warms
it up, waits for the others, then takes row groups from a shared queue (as Spark's
scheduler hands out tasks), reads each with pyarrow in batches, runs the model and
writes ``id`` plus the outputs to one Parquet file per row group.
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
    data: str, model: str, out: str, batch_size: int, tasks: Any, results: Any, barrier: Any
) -> None:
    import onnxruntime as ort
    import pyarrow as pa
    import pyarrow.parquet as pq

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    source = pq.ParquetFile(data)
    warm = next(source.iter_batches(batch_size=batch_size, row_groups=[0]))
    for _ in range(3):
        session.run(None, {name: _features(warm)})
    barrier.wait()
    start = time.monotonic()
    rows = groups = 0
    while (group := tasks.get()) is not None:
        writer = None
        for batch in source.iter_batches(
            batch_size=batch_size, row_groups=[group], columns=["id", "features"]
        ):
            output = session.run(None, {name: _features(batch)})[0]
            flat = pa.array(output.reshape(-1))
            values = pa.FixedSizeListArray.from_arrays(flat, output.shape[1])
            table = pa.table({"id": batch.column("id"), "output": values})
            if writer is None:
                writer = pq.ParquetWriter(f"{out}/part-{group:05d}.parquet", table.schema)
            writer.write_table(table)
            rows += batch.num_rows
        if writer is not None:
            writer.close()
        groups += 1
    end = time.monotonic()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put({"rows": rows, "groups": groups, "start": start, "end": end, "peak_kb": peak_kb})


def run_limit(
    data: Path, model: Path, out: Path, processes: int, batch_size: int
) -> dict[str, Any]:
    """Rows/s of ``processes`` processes over every row group of ``data``; peak RSS of each."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    groups = pq.ParquetFile(data).num_row_groups
    context = mp.get_context("spawn")
    tasks = context.Queue()
    results = context.Queue()
    barrier = context.Barrier(processes)
    for group in range(groups):
        tasks.put(group)
    for _ in range(processes):
        tasks.put(None)
    workers = [
        context.Process(
            target=_worker,
            args=(str(data), str(model), str(out), batch_size, tasks, results, barrier),
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
        "row_groups": groups,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "start_to_end_s": round(max(r["end"] for r in reports) - launched, 3),
        "per_process": reports,
        "peak_rss_mb": round(max(r["peak_kb"] for r in reports) / 1024, 1),
    }
