"""Fingerprints of a provider's input files, for resuming a job (``skil-sdk jobs resume``).

A fingerprint is the sha256 of each file's path, size and modification time: a file
rewritten, added or removed since the job's first run changes it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any


def files_fingerprint(paths: Iterable[str | os.PathLike[str]], filesystem: Any = None) -> str:
    """The fingerprint of ``paths``: local files, or files of a pyarrow ``filesystem``."""
    digest = hashlib.sha256()
    texts = [os.fspath(path) for path in paths]
    if filesystem is None:
        stats = [os.stat(t) for t in texts]
        stamps = [(st.st_size, st.st_mtime_ns) for st in stats]
    else:  # on an object store, one metadata request per file
        stamps = [(i.size, i.mtime_ns) for i in filesystem.get_file_info(texts)]
    for text, (size, mtime) in zip(texts, stamps, strict=True):
        digest.update(f"{text}\t{size}\t{mtime}\n".encode())
    return digest.hexdigest()
