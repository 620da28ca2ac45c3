"""Job routes: list and show jobs, progress and executor reports, job-scoped tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from skil_sdk.server.auth import Principal, principal
from skil_sdk.server.models_routes import ERRORS

router = APIRouter(tags=["jobs"])

JOB_ID = PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="A job id.")


class Progress(BaseModel):
    """Progress of a batch-inference job, as its driver reports it."""

    rows_done: int = Field(ge=0, le=2**62)
    tasks_done: int = Field(ge=0, le=2**62)
    tasks_total: int | None = Field(default=None, ge=0, le=2**62)
    rows_total: int | None = Field(default=None, ge=0, le=2**62)


class TokenRequest(BaseModel):
    """The models a job token grants."""

    model_ids: list[str] = Field(max_length=64)


def _jobs() -> Any:
    from skil_sdk.store.jobs import JobStore

    return JobStore()


@router.get("/jobs", responses=ERRORS, summary="List jobs")
def list_jobs(
    limit: int = Query(50, ge=1, le=1000),
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """The newest jobs, newest first (admin token)."""
    who.require_admin()
    return {"jobs": [job.to_dict() for job in _jobs().list(limit=limit)]}


@router.get("/jobs/{job_id}", responses=ERRORS, summary="Show one job")
def get_job(job_id: str = JOB_ID, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
    """One job (admin token)."""
    who.require_admin()
    result: dict[str, Any] = _jobs().get(job_id).to_dict()
    return result


@router.post("/jobs/{job_id}/progress", responses=ERRORS, summary="Report job progress")
def report_progress(
    progress: Progress,
    job_id: str = JOB_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """Record rows and tasks done (admin token or this job's token)."""
    who.require_job(job_id)
    _jobs().report_progress(
        job_id,
        rows_done=progress.rows_done,
        tasks_done=progress.tasks_done,
        tasks_total=progress.tasks_total,
        rows_total=progress.rows_total,
    )
    return {"ok": True}


@router.post("/jobs/{job_id}/executors", responses=ERRORS, summary="Report an executor")
def report_executor(
    record: dict[str, Any] = Body(...),  # noqa: B008
    job_id: str = JOB_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """Record one executor process (host, pid, python, rows...) for this job."""
    who.require_job(job_id)
    _jobs().add_executor(job_id, record)
    return {"ok": True}


@router.post(
    "/jobs/{job_id}/tokens", status_code=201, responses=ERRORS, summary="Issue a job token"
)
def issue_token(
    request: TokenRequest,
    job_id: str = JOB_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """A token that can read these models and report this job, until it ends (admin)."""
    who.require_admin()
    from skil_sdk.store.jobs import issue_job_token
    from skil_sdk.store.models import get_model

    for model_id in request.model_ids:
        get_model(model_id)
    _jobs().get(job_id)
    return {"token": issue_job_token(job_id, list(request.model_ids))}
