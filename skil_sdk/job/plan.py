"""A job's task plan: which splits each task reads, which tasks are left, and the rows
the tasks must account for.

The plan of an executor-read job is written beside its committed tasks
(``OUTPUT/_temporary/plan.json``) when the job starts. It records what the tasks were
computed from (the model's sha256, the bundle's hash, the provider and its options, the
input's fingerprint and the splits' sizes), so that ``skil-sdk jobs resume`` runs the
same tasks again, only those not committed, and refuses, naming what changed, when any of
that changed since the first run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from skil_sdk.errors import ConflictError, InvalidValueError
from skil_sdk.job.packing import Packing, pack_tasks, split_sizes

#: What a plan records of its job, and how a change of each is named.
_IDENTITY = (
    ("model_sha256", "the model's bytes (sha256)"),
    ("bundle_hash", "the bundle (a plugin changed)"),
    ("provider", "the provider"),
    ("provider_version", "the provider's version"),
    ("options_sha256", "the provider's options"),
    ("output_schema_sha256", "the output's columns (a post-processor changed)"),
    ("fingerprint", "the input files (paths, sizes or modification times)"),
    ("split_rows_sha256", "the input's splits"),
)


@dataclass(frozen=True)
class TaskPlan:
    """The tasks of one run of a job."""

    #: Split indexes per task number (all the job's tasks, committed or not).
    tasks: tuple[tuple[int, ...], ...]
    #: Task numbers this run computes.
    todo: tuple[int, ...]
    #: Task numbers committed by an earlier run (kept).
    kept: tuple[int, ...]
    #: Rows each task must account for (None: the source does not say).
    task_rows: tuple[int | None, ...]
    #: The input's rows, when the source says (its split sizes, else its count hint).
    rows_in: int | None
    packing: Packing
    #: Whether the plan was recorded (the source has a fingerprint).
    resumable: bool


def identity(
    job: Any,
    fingerprint: str | None,
    sizes: list[int | None],
    bundle_hash: str | None,
    provider_version: str | None,
    output_schema: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """What a plan records of its job (a :class:`~skil_sdk.job.spec.JobSpec`) and of the
    provider (the installed version) and input (its ``fingerprint``) as they are now."""
    options = json.dumps(sorted(job.provider_options.items()))
    return {
        "model_sha256": job.model.sha256,
        "bundle_hash": bundle_hash,
        "provider": job.provider.name,
        "provider_version": provider_version,
        "options_sha256": hashlib.sha256(options.encode()).hexdigest(),
        "output_schema_sha256": hashlib.sha256(json.dumps(output_schema).encode()).hexdigest(),
        "fingerprint": fingerprint,
        "split_rows_sha256": hashlib.sha256(json.dumps(sizes).encode()).hexdigest(),
    }


def plan_tasks(
    job: Any,
    job_id: str,
    source: Any,
    splits: list[Any],
    parallelism: int,
    committer: Any,
    *,
    resume: bool = False,
    bundle_hash: str | None = None,
    provider_version: str | None = None,
    output_schema: list[tuple[str, str]] | None = None,
    record: bool = True,
) -> TaskPlan:
    """The tasks of this run: packed and (with ``record``, for a source that fingerprints
    its input) recorded for a new job; for a resumed one, the recorded tasks less those
    committed, once the job's identity is checked. ``output_schema`` is the output's
    columns, ``(name, Arrow type)`` pairs."""
    sizes = split_sizes(source, splits)
    recording = committer is not None and (record or resume)
    fingerprint = source.fingerprint() if recording else None
    current = identity(job, fingerprint, sizes, bundle_hash, provider_version, output_schema)
    if resume:
        recorded = committer.read_plan() if committer is not None else None
        if recorded is None:
            raise ConflictError(
                f"Job {job_id} kept no tasks to resume (its output has no plan); run it again."
            )
        if recorded.get("job_id") != job_id:
            raise not_resumable(ConflictError(
                f"The output {committer.output} holds the tasks of job {recorded.get('job_id')}, "
                f"not of job {job_id}; resume that job, or run this one again (--overwrite)."
            ))
        _check_unchanged(job_id, recorded, current)
        tasks = tuple(tuple(int(i) for i in task) for task in recorded["tasks"])
        packing = Packing(
            tasks,
            len(splits),
            int(recorded.get("parallelism", parallelism)),
            recorded.get("target_rows"),
            job.rows_per_task,
        )
        kept = tuple(t for t in committer.committed() if t < len(tasks))
    else:
        packing = pack_tasks(sizes, parallelism, job.rows_per_task)
        tasks, kept = packing.tasks, ()
    resumable = fingerprint is not None
    if committer is not None and resumable and not resume:
        committer.write_plan(
            {
                "job_id": job_id,
                **current,
                "tasks": [list(t) for t in tasks],
                "parallelism": packing.parallelism,
                "target_rows": packing.target_rows,
            }
        )
    task_rows = tuple(_task_rows(task, sizes) for task in tasks)
    known = all(rows is not None for rows in task_rows)
    rows_in = sum(r for r in task_rows if r is not None) if known and tasks else None
    if rows_in is None:
        hint = source.count_hint()
        rows_in = int(hint) if hint is not None else (0 if not tasks else None)
    committed = set(kept)
    todo = tuple(t for t in range(len(tasks)) if t not in committed)
    return TaskPlan(tasks, todo, kept, task_rows, rows_in, packing, resumable)


def _task_rows(task: tuple[int, ...], sizes: list[int | None]) -> int | None:
    rows = [sizes[i] for i in task]
    return None if any(r is None for r in rows) else sum(r for r in rows if r is not None)


def not_resumable(exc: Any) -> Any:
    """``exc``, marked as a failure a resume would meet again."""
    exc.resumable = False
    return exc


def _check_unchanged(job_id: str, recorded: dict[str, Any], current: dict[str, Any]) -> None:
    for key, what in _IDENTITY:
        if recorded.get(key) != current.get(key):
            raise not_resumable(ConflictError(
                f"Job {job_id} cannot be resumed: {what} changed since its first run; run it "
                "again as a new job (--overwrite)."
            ))


def require_resumable(source: Any, provider: str) -> None:
    """Refuse to resume a job whose source has no fingerprint of its input."""
    if source.fingerprint() is None:
        raise not_resumable(InvalidValueError(
            f"The {provider} provider's source does not fingerprint its input, so a resumed "
            "job could not tell whether its input changed; run the job again (a provider "
            "makes its jobs resumable by implementing ExecutorSource.fingerprint())."
        ))


@dataclass(frozen=True)
class RowAccount:
    """A job's rows: read, written and quarantined (``rows_in`` None: unknown)."""

    rows_in: int | None
    rows_written: int
    rows_quarantined: int

    def to_dict(self) -> dict[str, Any]:
        """The top-level keys of ``_skil_job.json``, the job record and ``--json``."""
        return {
            "rows_in": self.rows_in,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
        }


def account_rows(
    committer: Any,
    tasks: range | list[int] | tuple[int, ...],
    task_rows: tuple[int | None, ...] | None,
    rows_in: int | None,
) -> RowAccount:
    """The rows of a job's committed tasks, reconciled: a task (or the job) whose rows
    written and quarantined differ from its input's fails the job, naming the gap."""
    written = quarantined = 0
    for task in tasks:
        task_written, task_quarantined = committer.task_rows(task)
        expected = task_rows[task] if task_rows is not None else None
        if expected is not None and task_written + task_quarantined != expected:
            raise not_resumable(InvalidValueError(
                f"Task {task} read {expected:,} input rows but wrote {task_written:,} and "
                f"quarantined {task_quarantined:,}, so rows were lost; the provider's reader "
                "must yield exactly the rows its split_rows() announces."
            ))
        written += task_written
        quarantined += task_quarantined
    if rows_in is not None and written + quarantined != rows_in:
        raise not_resumable(InvalidValueError(
            f"The job's input has {rows_in:,} rows but it wrote {written:,} and quarantined "
            f"{quarantined:,}, so {abs(rows_in - written - quarantined):,} rows are unaccounted "
            "for; the provider's count_hint() must be its exact row count."
        ))
    return RowAccount(rows_in, written, quarantined)


def check_budget(account: RowAccount, limit: int, committer: Any, job_id: str) -> None:
    """Fail a job whose committed tasks quarantined more rows than its budget (each task
    stops at the budget alone; this is their sum, kept tasks of earlier runs included)."""
    from skil_sdk.inference.quarantine import over_budget

    if account.rows_quarantined > limit:
        first_id, stage, error = committer.first_error()
        raise over_budget(account.rows_quarantined, limit, first_id, stage, error, job_id)


def schema_columns(schema: Any) -> list[tuple[str, str]]:
    """An Arrow schema as the ``(name, type)`` pairs a plan records."""
    return [(field.name, str(field.type)) for field in schema]


def kept_bad_rows(plan: TaskPlan, committer: Any, limit: int, job_id: str) -> int:
    """The rows an earlier run's kept tasks quarantined; a resume whose smaller budget
    they already pass fails before any task runs."""
    bad = sum(committer.task_rows(task)[1] for task in plan.kept)
    check_budget(RowAccount(None, 0, bad), limit, committer, job_id)
    return bad
