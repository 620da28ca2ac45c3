"""A wheel of skil-sdk rebuilt from its installed files (when there is no source tree).

The files listed in the installed distribution's RECORD are written into a wheel with
sorted entries and fixed timestamps, so the same installation gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from skil_sdk.builder import cache
from skil_sdk.builder.hashing import BUILDER_SCHEMA_VERSION, inputs_hash
from skil_sdk.builder.wheelinfo import WheelInfo, read_wheel
from skil_sdk.builder.wheels import BuiltWheel
from skil_sdk.errors import BuildError
from skil_sdk.home import atomic_directory, atomic_write_text, sha256_file

_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def installed_sdk_wheel(progress: Callable[[str], None] | None = None) -> BuiltWheel:
    """The wheel of the installed (non-editable) skil-sdk, from the cache or repacked now."""
    dist = metadata.distribution("skil-sdk")
    record = dist.read_text("RECORD") or ""
    if not record:
        raise BuildError(
            "The installed skil-sdk has no RECORD, so it cannot be bundled; reinstall it with pip."
        )
    digest = hashlib.sha256(record.encode()).hexdigest()
    key = inputs_hash({"schema": BUILDER_SCHEMA_VERSION, "installed": digest})
    entry = cache.wheels_dir() / key
    with atomic_directory(entry) as ad:
        if not ad.is_finalized():
            if progress:
                progress("Packing the installed skil-sdk into a wheel")
            _repack(dist, ad.work_dir)
    meta = json.loads((entry / "wheel.json").read_text())
    info = WheelInfo.from_dict(meta["info"])
    return BuiltWheel(entry / info.filename, meta["sha256"], info, digest, cached=True)


def _repack(dist: metadata.Distribution, out_dir: Path) -> None:
    name = dist.metadata["Name"].replace("-", "_")
    version = dist.version
    dist_info = f"{name}-{version}.dist-info"
    entries: dict[str, bytes] = {}
    for file in dist.files or ():
        parts = file.parts
        if parts[0] == ".." or "__pycache__" in parts or file.name.endswith(".pyc"):
            continue
        if parts[0] == dist_info and file.name in _SKIP_DIST_INFO:
            continue
        entries[file.as_posix()] = Path(str(file.locate())).read_bytes()
    record_lines = [
        f"{arc},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}"
        for arc, data in sorted(entries.items())
    ]
    record_lines.append(f"{dist_info}/RECORD,,")
    entries[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    filename = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out_dir / filename, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc in sorted(entries, key=lambda a: (a.endswith("/RECORD"), a)):
            info = zipfile.ZipInfo(arc, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[arc])
    wheel = out_dir / filename
    atomic_write_text(
        out_dir / "wheel.json",
        json.dumps({"sha256": sha256_file(wheel), "info": read_wheel(wheel).to_dict()}, indent=2),
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
