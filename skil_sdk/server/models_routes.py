"""Model routes: list, show, download (streamed, sha256 ETag, HTTP Range), upload, delete."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from skil_sdk.home import skil_home
from skil_sdk.server.auth import Principal, principal
from skil_sdk.store import models as store

router = APIRouter(tags=["models"])

MODEL_ID = PathParam(pattern=store.ID_PATTERN.pattern, max_length=128, description="A model id.")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text}
    for code, text in {
        400: "Bad request",
        401: "Missing or wrong token",
        403: "Token out of scope",
        404: "Not found",
        413: "Too large",
        422: "Invalid parameters",
    }.items()
}


def model_view(record: store.ModelRecord) -> dict[str, Any]:
    """A model as the API shows it (no server-side paths)."""
    data = record.to_dict()
    data.pop("path", None)
    return data


@router.get("/models", responses=ERRORS, summary="List the stored models")
def list_models(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
    """Every stored model (admin token)."""
    who.require_admin()
    return {"models": [model_view(r) for r in store.list_models()]}


@router.get("/models/{model_id}", responses=ERRORS, summary="Show one model")
def get_model(
    model_id: str = MODEL_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """A model's record: files with sha256 and size, signature (admin or its job's token)."""
    who.require_model(model_id)
    return model_view(store.get_model(model_id))


def _record_download(who: Principal, model_id: str, name: str, request: Request) -> None:
    """Note a job's model download in the jobs store (``skil-sdk jobs show`` lists them)."""
    if who.job_id is None:
        return
    from skil_sdk.store.jobs import JobStore

    client = request.client.host if request.client else None
    JobStore().record_download(who.job_id, model_id, name, client, request.headers.get("range"))


def _file_response(record: store.ModelRecord, name: str) -> FileResponse:
    path = store.model_file(record, name)
    sha = next(f["sha256"] for f in record.files if f["name"] == name)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"ETag": f'"{sha}"', "X-Content-SHA256": sha, "Cache-Control": "no-cache"},
    )


@router.get(
    "/models/{model_id}/file",
    responses=ERRORS,
    response_class=FileResponse,
    summary="Download the model file",
)
def download_model(
    request: Request,
    model_id: str = MODEL_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> FileResponse:
    """The main .onnx file, streamed; sha256 in ``X-Content-SHA256`` and ``ETag``; Range works."""
    who.require_model(model_id)
    response = _file_response(store.get_model(model_id), store.MAIN_FILE)
    _record_download(who, model_id, store.MAIN_FILE, request)
    return response


@router.get(
    "/models/{model_id}/files/{name:path}",
    responses=ERRORS,
    response_class=FileResponse,
    summary="Download one of the model's files",
)
def download_model_file(
    name: str,
    request: Request,
    model_id: str = MODEL_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> FileResponse:
    """One file of the model by its recorded name (external data too); Range works."""
    who.require_model(model_id)
    response = _file_response(store.get_model(model_id), name)
    _record_download(who, model_id, name, request)
    return response


@router.post("/models", status_code=201, responses=ERRORS, summary="Upload a model")
def upload_model(
    file: UploadFile = File(..., description="The .onnx file."),  # noqa: B008
    experiment: str = Form(..., max_length=128),
    name: str | None = Form(None, max_length=128),
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """Check and store an uploaded single-file ONNX model (admin token)."""
    who.require_admin()
    tmp_root = skil_home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        stem = Path(file.filename or "model.onnx").stem
        target = Path(tmp) / "upload.onnx"
        with target.open("wb") as handle:
            shutil.copyfileobj(file.file, handle, 1024 * 1024)
        default = stem if store.NAME_PATTERN.match(stem) else "model"
        record = store.add_model(target, experiment, name=name or default)
    return model_view(record)


@router.delete("/models/{model_id}", responses=ERRORS, summary="Remove a model")
def delete_model(
    model_id: str = MODEL_ID,
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """Remove a stored model (admin token)."""
    who.require_admin()
    return {"removed": model_view(store.remove_model(model_id))}
