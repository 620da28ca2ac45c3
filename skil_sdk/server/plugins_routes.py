"""Plugin routes: upload a wheel (the remote side of ``skil-sdk publish --server``), list."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Depends, File, UploadFile
from packaging.utils import canonicalize_name

from skil_sdk.errors import InvalidValueError
from skil_sdk.home import skil_home
from skil_sdk.server.auth import Principal, principal
from skil_sdk.server.models_routes import ERRORS

router = APIRouter(tags=["plugins"])

WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+]+-[A-Za-z0-9_.+!]+(-[A-Za-z0-9_.+]+){2,3}\.whl$")
MAX_ENTRIES = 10_000


def check_wheel(path: Path, filename: str) -> dict[str, str]:
    """Name and version of a wheel from its METADATA; refuse unsafe or malformed archives."""
    if not zipfile.is_zipfile(path):
        raise InvalidValueError(f"{filename} is not a wheel (not a zip archive); upload a .whl.")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) > MAX_ENTRIES:
            raise InvalidValueError(
                f"{filename} has {len(names)} entries, over {MAX_ENTRIES}; upload a smaller wheel."
            )
        for entry in names:
            pure = PurePosixPath(entry.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", entry):
                raise InvalidValueError(
                    f"{filename} has an entry outside the wheel ({entry[:80]!r}); rebuild it."
                )
        metadata = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(metadata) != 1:
            raise InvalidValueError(
                f"{filename} has no single .dist-info/METADATA; build it with pip wheel or build."
            )
        text = archive.read(metadata[0])[: 1024 * 1024].decode("utf-8", "replace")
    headers = Parser().parsestr(text, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise InvalidValueError(
            f"{filename} METADATA lacks Name or Version; build it with pip wheel or build."
        )
    return {"name": str(name), "version": str(version)}


def _same_version(from_filename: str, from_metadata: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(from_filename.replace("_", "-")) == Version(from_metadata)
    except InvalidVersion:
        return from_filename == from_metadata


def _plugin_store() -> Any:
    from skil_sdk.store import plugins

    return plugins


@router.post("/plugins", status_code=201, responses=ERRORS, summary="Publish a plugin wheel")
def upload_plugin(
    file: UploadFile = File(..., description="The plugin .whl file."),  # noqa: B008
    who: Principal = Depends(principal),  # noqa: B008
) -> dict[str, Any]:
    """Publish an uploaded wheel to the plugin store (admin token)."""
    who.require_admin()
    filename = file.filename or ""
    if not WHEEL_NAME.match(filename):
        raise InvalidValueError(
            f"{filename[:80]!r} is not a wheel file name (name-version-tags.whl); upload a .whl."
        )
    tmp_root = skil_home() / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        target = Path(tmp) / filename
        with target.open("wb") as handle:
            shutil.copyfileobj(file.file, handle, 1024 * 1024)
        meta = check_wheel(target, filename)
        if canonicalize_name(filename.split("-")[0]) != canonicalize_name(meta["name"]):
            raise InvalidValueError(
                f"{filename} does not match its METADATA name {meta['name']!r}; rebuild the wheel."
            )
        if not _same_version(filename.split("-")[1], meta["version"]):
            raise InvalidValueError(
                f"{filename} does not match its METADATA version {meta['version']!r:.40}; "
                "rebuild the wheel."
            )
        result = _plugin_store().publish_wheel(target)
    data: dict[str, Any] = result.to_dict()
    data.pop("path", None)
    data.setdefault("name", meta["name"])
    data.setdefault("version", meta["version"])
    return data


@router.get("/plugins", responses=ERRORS, summary="List published plugins")
def list_plugins(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
    """Every published plugin version (admin token)."""
    who.require_admin()
    plugins = [p.to_dict() for p in _plugin_store().list_plugins()]
    return {"plugins": [{k: v for k, v in p.items() if k != "path"} for p in plugins]}
