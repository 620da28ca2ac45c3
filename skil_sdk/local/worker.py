"""A local engine worker: one process, one onnxruntime session, tasks from a queue.

It runs the executors' code (the provider's reader, the model runner, the output
batches) and writes each task attempt's Parquet through the per-task commit's attempt
path. It reports to the parent through its own pipe (so a worker killed mid-message harms no
other): ``("rows", task, n)`` as batches are written, ``("done", task, attempt, rows,
pid, state, peak_rss_kb, quarantined, first_bad)`` when an attempt's files are complete
(``state``: an evaluation's metric state, else None; ``first_bad``: ``(id, stage, error)``
of its first quarantined row, or None), and ``("failed", task, code, message)`` when the
task fails, or the worker cannot start (task -1). A failure of the data or the model is
not retried; only a worker that dies is. Tracebacks go to the job's log.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skil_sdk.errors import SkilError


@dataclass
class WorkerSetup:
    """What every worker needs: inherited by forked workers, pickled to spawned ones."""

    job_id: str
    provider: str
    source: Any
    model_path: Path
    config: Any
    id_arrow: Any
    schema: Any
    committer: Any
    log_path: Path
    intra_op_threads: int = 1
    package_dir: str | None = None
    #: The evaluation's settings (None: batch inference, which writes Parquet).
    settings: Any = None
    #: The job id a budget's error tells to resume ("" when the job cannot be resumed).
    resume_hint: str = ""


def worker_main(setup: WorkerSetup, tasks: Any, results: Any) -> None:
    """The worker loop: run tasks until the parent sends ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler is not ours
    from skil_sdk.spark.process import die_with_parent

    die_with_parent()
    handler = logging.FileHandler(setup.log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s worker %(process)d %(message)s"))
    logging.getLogger("skil_sdk").addHandler(handler)
    try:
        from skil_sdk.inference.runner import ModelRunner

        runner = ModelRunner(setup.model_path, intra_op_threads=setup.intra_op_threads)
    except SkilError as exc:
        results.send(("failed", -1, exc.code, exc.message))
        return
    except Exception as exc:
        logging.getLogger("skil_sdk").exception("The worker could not start")
        results.send(("failed", -1, "worker_error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        item = tasks.get()
        if item is None:
            return
        task, attempt, splits = item
        quarantined, first_bad = 0, None
        try:
            if setup.settings is None:
                rows, quarantine = run_task(setup, runner, task, attempt, splits, results)
                state, quarantined, first_bad = None, quarantine.count, quarantine.first()
            else:
                rows, state = evaluate_task(setup, runner, splits)
        except SkilError as exc:
            results.send(("failed", task, exc.code, exc.message))
        except Exception as exc:
            logging.getLogger("skil_sdk").exception("Task %s failed", task)
            results.send(("failed", task, "worker_error", f"{type(exc).__name__}: {exc}"))
        else:
            peak = _peak_rss_kb()
            results.send(
                ("done", task, attempt, rows, os.getpid(), state, peak, quarantined, first_bad)
            )


def _peak_rss_kb() -> int:
    """This process's peak resident memory in KiB (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024 if sys.platform == "darwin" else peak)  # bytes on macOS


def _read(setup: WorkerSetup, splits: list[Any], label_column: str | None = None) -> Any:
    """A task's batches, its splits read in order, a thread reading ahead."""
    from skil_sdk.inference.readahead import read_ahead
    from skil_sdk.spark.adapter import read_task

    batches = read_task(
        setup.source,
        splits,
        setup.config.batch_size,
        setup.provider,
        setup.package_dir,
        setup.job_id,
        label_column,
    )
    return read_ahead(batches)


def run_task(
    setup: WorkerSetup, runner: Any, task: int, attempt: int, splits: list[Any], results: Any
) -> tuple[int, Any]:
    """Write one task attempt's output (its splits read in order) and its quarantined rows;
    return its row count and its :class:`~skil_sdk.inference.quarantine.Quarantine`."""
    from skil_sdk.inference.quarantine import Quarantine
    from skil_sdk.spark.executor import infer_batches

    quarantine = Quarantine(setup.config.max_bad_rows, setup.id_arrow, setup.resume_hint)
    outputs = infer_batches(
        setup.config, _read(setup, splits), setup.id_arrow, runner=runner, quarantine=quarantine
    )
    rows = setup.committer.write_attempt(
        task, attempt, setup.schema, outputs, quarantine,
        on_batch=lambda count: results.send(("rows", task, count)),
    )
    return rows, quarantine


def evaluate_task(setup: WorkerSetup, runner: Any, splits: list[Any]) -> tuple[int, bytes]:
    """Fold one task's labelled rows into a metric state; return ``(rows, state bytes)``."""
    from skil_sdk.evaluation.job import partition_state

    batches = _read(setup, splits, setup.settings.label_column)
    return partition_state(setup.config, setup.settings, batches, runner=runner)
