"""``skil-sdk jobs``: list, show, follow and kill batch-inference jobs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

import click

from skil_sdk.cli.output import emit, info, json_option, table
from skil_sdk.errors import InvalidValueError, JobError
from skil_sdk.processes import pid_alive
from skil_sdk.store.jobs import KILLED, JobRecord, JobStore


def _elapsed(record: JobRecord) -> str:
    seconds = record.elapsed
    return "" if seconds is None else f"{seconds:.1f}s"


@click.group()
def jobs() -> None:
    """List, show, follow and kill batch-inference jobs."""


@jobs.command("list")
@click.option("--limit", type=int, default=50, show_default=True, help="How many jobs to show.")
@json_option
def list_command(limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    records = JobStore().list(limit=limit)

    def human() -> None:
        table(
            ["JOB", "STATE", "MODEL", "PROVIDER", "ROWS", "ELAPSED", "OUTPUT"],
            [
                (
                    r.id,
                    r.state,
                    r.model_id,
                    r.provider,
                    f"{r.rows_done:,}",
                    _elapsed(r),
                    r.output_path,
                )
                for r in records
            ],
        )

    emit(as_json, [r.to_dict() for r in records], human)


def _show(record: JobRecord) -> None:
    data = record.to_dict()
    for key in (
        "job_id",
        "state",
        "model_id",
        "provider",
        "output",
        "rows_done",
        "rows_total",
        "tasks_done",
        "tasks_total",
        "log_path",
    ):
        click.echo(f"{key:12} {data[key]}")
    click.echo(f"{'elapsed':12} {_elapsed(record)}")
    for key in ("rows_in", "rows_written", "rows_quarantined"):
        if data.get(key) is not None:
            click.echo(f"{key:12} {data[key]:,}")
    from skil_sdk.results import kept_tasks, quarantined_head

    kept = kept_tasks(record.output_path, record.id)
    if kept is not None and record.state != "SUCCEEDED":
        done, total = kept
        click.echo(
            f"{'committed':12} {done} of {total} tasks ({total - done} to run: "
            f"`skil-sdk jobs resume {record.id}`)"
        )
    head = quarantined_head(record.output_path) if record.kind == "inference" else []
    for row in head:
        click.echo(f"{'bad row':12} id {row['id']!r} ({row['stage']}): {row['error']}")
    if record.error:
        click.echo(f"{'error':12} {record.error}")
    for executor in record.executors:
        click.echo(
            f"{'executor':12} {executor.get('host')} pid {executor.get('pid')} "
            f"bundle {executor.get('bundle_hash')} rows {executor.get('rows')}"
        )


@jobs.command("show")
@click.argument("job_id")
@json_option
def show_command(job_id: str, as_json: bool) -> None:
    """Show one job: state, progress, rows, committed tasks, executors, error."""
    from skil_sdk.results import kept_tasks, quarantined_head

    store = JobStore()
    record = store.get(job_id)
    kept = kept_tasks(record.output_path, record.id)
    data = {
        **record.to_dict(),
        "tasks_committed": kept[0] if kept else None,
        "quarantined_head": (
            quarantined_head(record.output_path) if record.kind == "inference" else []
        ),
        "downloads": store.downloads(job_id),
    }
    emit(as_json, data, lambda: _show(record))


@jobs.command("logs")
@click.argument("job_id")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@json_option
def logs_command(job_id: str, tail: int | None, as_json: bool) -> None:
    """Print the spark-submit log of a job."""
    record = JobStore().get(job_id)
    if not record.log_path or not os.path.exists(record.log_path):
        raise InvalidValueError(f"Job {job_id} has no log yet; it has not reached spark-submit.")
    with open(record.log_path, errors="replace") as handle:
        lines = handle.read().splitlines()
    if tail is not None:
        lines = lines[-tail:]
    emit(as_json, {"job_id": job_id, "log_path": record.log_path, "lines": lines}, "\n".join(lines))


@jobs.command("kill")
@click.argument("job_id")
@json_option
def kill_command(job_id: str, as_json: bool) -> None:
    """Stop a running job (its runner, spark-submit and driver) and mark it KILLED."""
    store = JobStore()
    record = store.get(job_id)
    if not record.is_finished and record.details.get("in_session"):
        raise InvalidValueError(
            f"Job {job_id} runs inside a Python session's SparkSession; interrupt it there."
        )
    if not record.is_finished and record.runner_host not in (None, socket.gethostname()):
        raise InvalidValueError(
            f"Job {job_id} was started on {record.runner_host}; run `skil-sdk jobs kill` there."
        )
    if not record.is_finished:
        if record.runner_pid and pid_alive(record.runner_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.runner_pid, signal.SIGTERM)
            deadline = time.time() + 30
            while time.time() < deadline and pid_alive(record.runner_pid):
                time.sleep(0.2)
        store.finish(job_id, KILLED, error="killed with `skil-sdk jobs kill`")
    record = store.get(job_id)
    emit(as_json, record.to_dict(), f"Job {job_id} is {record.state}.")


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@json_option
def wait_command(job_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a job to finish; exit 1 if it did not succeed."""
    store = JobStore()
    deadline = None if timeout is None else time.time() + timeout
    record = store.get(job_id)
    last = ""
    while not record.is_finished:
        if deadline is not None and time.time() > deadline:
            raise InvalidValueError(
                f"Job {job_id} is still {record.state} after {timeout} s; wait again or "
                f"`skil-sdk jobs kill {job_id}`."
            )
        tasks = f"{record.tasks_done}/{record.tasks_total or '?'}"
        line = f"{record.state}: tasks {tasks}, rows {record.rows_done:,}"
        if line != last:
            info(line)
            last = line
        time.sleep(1)
        record = store.get(job_id)
    if record.state != "SUCCEEDED":
        raise JobError(f"Job {job_id} {record.state}: {record.error}")
    emit(
        as_json,
        record.to_dict(),
        f"Job {job_id} SUCCEEDED: {record.rows_done:,} rows in {record.output_path}.",
    )


@jobs.command("resume")
@click.argument("job_id")
@click.option(
    "--max-bad-rows",
    default=None,
    metavar="N|P%",
    help="A new budget of bad rows for the tasks left (a count, or a share of the input).",
)
@click.option("--detach", is_flag=True, help="Resume the job in the background.")
@json_option
def resume_command(job_id: str, max_bad_rows: str | None, detach: bool, as_json: bool) -> None:
    """Continue a FAILED, KILLED or interrupted job: its committed tasks are kept, only the
    others run. Refused when the model, the bundle, the provider or the input changed."""
    from skil_sdk.cli.infer import _Progress, print_job_result
    from skil_sdk.job.resume import resume

    progress = _Progress(enabled=not detach)
    try:
        result = resume(
            job_id, max_bad_rows=max_bad_rows, detach=detach, on_progress=progress, on_log=info
        )
    finally:
        progress.close()
    emit(as_json, result.to_dict(), lambda: print_job_result(result, detach))
