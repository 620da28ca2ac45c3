"""A wheel of an installed distribution rebuilt from its files (skil-sdk without a source tree).

The files listed in the installed distribution's RECORD are written into a wheel with
sorted entries and fixed timestamps, so the same installation gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def repack_wheel(dist: metadata.Distribution, out_dir: Path) -> Path:
    """Write the wheel of the installed ``dist`` into ``out_dir`` and return its path."""
    # the wheel's and the installed .dist-info's spelling of the name (`-` escaped as `_`)
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
    wheel = out_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc in sorted(entries, key=lambda a: (a.endswith("/RECORD"), a)):
            info = zipfile.ZipInfo(arc, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[arc])
    return wheel


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
