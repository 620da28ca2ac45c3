"""``skil-sdk jobs resume``: continue a failed, killed or interrupted batch-inference job.

The tasks the job committed (``OUTPUT/_temporary/committed``) are kept; only the others
run, then the job's commit (``_SUCCESS``). The job's spec is the one recorded when it was
submitted (``SKIL_HOME/jobs/ID/job.json``), with a new ``--max-bad-rows`` if given; the
engines refuse, naming what changed, when the model, the bundle, the provider or the
input changed since the first run (:mod:`skil_sdk.job.plan`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from skil_sdk.errors import ConflictError, InvalidValueError, NotFoundError
from skil_sdk.home import skil_home
from skil_sdk.job.spec import INFERENCE, JobSpec
from skil_sdk.storage import atomic_write_text
from skil_sdk.store.jobs import FAILED, KILLED, SUCCEEDED, JobStore
from skil_sdk.uris import is_local, local_path


def resumable_job(job_id: str, max_bad_rows: str | int | None = None) -> JobSpec:
    """The spec of job ``job_id`` to resume (with a new budget, if given), once the job is
    known to have stopped with committed tasks kept."""
    from skil_sdk.commit import LocalCommitter
    from skil_sdk.job.budget import ErrorBudget
    from skil_sdk.spark.submit import JOB_SPEC_FILE
    from skil_sdk.store.models import get_model

    record = JobStore().get(job_id)  # a dead runner's RUNNING job reads as FAILED
    if record.state == SUCCEEDED:
        raise ConflictError(f"Job {job_id} succeeded; there is nothing to resume.")
    if record.state not in (FAILED, KILLED):
        raise ConflictError(
            f"Job {job_id} is {record.state}; wait for it (`skil-sdk jobs wait {job_id}`) or "
            f"stop it (`skil-sdk jobs kill {job_id}`) before resuming it."
        )
    path = skil_home() / "jobs" / job_id / JOB_SPEC_FILE
    if not path.exists():
        raise NotFoundError(
            f"Job {job_id} has no recorded spec ({path}), so it cannot be resumed; run it again."
        )
    job = JobSpec.from_dict(json.loads(path.read_text()))
    if job.kind != INFERENCE:
        raise InvalidValueError(
            f"Job {job_id} is an evaluation, which commits no tasks; run it again."
        )
    if not is_local(job.output):
        raise InvalidValueError(
            f"Job {job_id} writes to {job.output} through Spark's file systems, which have no "
            "per-task commit to resume from; run it again."
        )
    committer = LocalCommitter(local_path(job.output))
    plan = committer.read_plan()
    if plan is None:
        raise ConflictError(
            f"Job {job_id} kept no tasks at {job.output} (its provider's input has no "
            "fingerprint, or the output was removed); run it again."
        )
    if plan.get("job_id") != job_id:
        raise ConflictError(
            f"The output {job.output} holds the tasks of job {plan.get('job_id')}, not of "
            f"job {job_id}; resume that job, or run this one again (--overwrite)."
        )
    model = get_model(job.model.id)
    if model.sha256 != job.model.sha256:
        raise ConflictError(
            f"Job {job_id} cannot be resumed: the model {job.model.id}'s bytes (sha256) "
            "changed since its first run; run it again as a new job (--overwrite)."
        )
    if max_bad_rows is not None:
        job = dataclasses.replace(job, max_bad_rows=ErrorBudget.parse(max_bad_rows).text)
        atomic_write_text(path, json.dumps(job.to_dict(), indent=2), mode=0o600)
    return job


def resume(
    job_id: str,
    *,
    max_bad_rows: str | int | None = None,
    detach: bool = False,
    on_progress: Any = None,
    on_log: Any = None,
) -> Any:
    """Resume job ``job_id`` (see the module docstring); return its
    :class:`~skil_sdk.spark.request.JobResult`."""
    import os
    import socket
    import time

    from skil_sdk.spark.request import JobResult

    started = time.time()
    job = resumable_job(job_id, max_bad_rows)
    store = JobStore()
    record = store.get(job_id)
    bundle = None
    if job.engine != "local":
        from skil_sdk.builder.api import ensure_bundle

        bundle = ensure_bundle(
            [Path(p) for p in job.plugins], progress=on_log, verify=True,
            gpu=job.execution_provider == "cuda",
        )
        recorded = record.details.get("bundle_hash")
        if recorded and recorded != bundle.hash:
            raise ConflictError(
                f"Job {job_id} cannot be resumed: its bundle changed since its first run "
                f"({recorded[:12]} then, {bundle.hash[:12]} now: a plugin changed); run it "
                "again as a new job (--overwrite)."
            )
    resumes = [*record.details.get("resumes", []), {"at": started}]
    store.reopen(
        job_id,
        runner_pid=os.getpid(),
        runner_host=socket.gethostname(),
        details={**record.details, "resumes": resumes, "max_bad_rows": job.max_bad_rows},
    )
    if detach:
        from skil_sdk.spark.submit import spawn_detached

        store.update(job_id, runner_pid=spawn_detached(job_id, resume=True))
        return JobResult(
            job_id, store.get(job_id).state, None, job.output, time.time() - started,
            bundle.hash if bundle else None, kind=job.kind, engine=job.engine,
        )
    if bundle is None:
        from skil_sdk.local.engine import run_local_job

        return run_local_job(
            job_id, job, on_progress=on_progress, started=started, resume=True
        )
    from skil_sdk.spark.submit import run_job

    return run_job(
        job_id, job, bundle, on_progress=on_progress, on_log=on_log, started=started,
        resume=True,
    )
