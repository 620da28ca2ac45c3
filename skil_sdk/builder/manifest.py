"""The ``manifest.json`` beside each bundle: its inputs, size and sha256."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skil_sdk.builder.bundle import interpreter_constraints, shebang
from skil_sdk.builder.hashing import BUILDER_SCHEMA_VERSION
from skil_sdk.builder.targets import Target
from skil_sdk.builder.wheels import BuiltWheel
from skil_sdk.storage import atomic_write_text, sha256_file


def write_manifest(
    work_dir: Path,
    *,
    name: str,
    digest: str,
    inputs: dict[str, Any],
    target: Target,
    sdk: BuiltWheel,
    plugins: list[dict[str, Any]],
    pins: list[dict[str, Any]],
    lock_key: str,
    wheel_entries: list[str],
    gpu: bool = False,
) -> dict[str, Any]:
    """Write ``manifest.json`` for the bundle ``work_dir/name`` and return it.

    ``gpu`` says the bundle carries onnxruntime-gpu instead of onnxruntime.
    """
    pex = work_dir / name
    manifest = {
        "schema": BUILDER_SCHEMA_VERSION,
        "hash": digest,
        "bundle": name,
        "size": pex.stat().st_size,
        "sha256": sha256_file(pex),
        "python": target.python_version,
        "shebang": shebang(target),
        "interpreter_constraints": interpreter_constraints(target),
        "target": target.ident,
        "gpu": gpu,
        "sdk": {
            "name": sdk.info.name,
            "version": sdk.info.version,
            "sha256": sdk.sha256,
            "filename": sdk.info.filename,
        },
        "plugins": plugins,
        "pins": [{k: v for k, v in p.items() if k != "path"} for p in pins],
        "excludes": inputs["excludes"],
        "pex_version": inputs["pex"],
        "pip_version": inputs["pip"],
        "inputs": inputs,
        "lock": lock_key,
        "wheel_entries": wheel_entries,
    }
    atomic_write_text(work_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


#: How :func:`input_changes` names a changed input other than the plugins.
_INPUT_LABELS = {
    "sdk": "skil-sdk changed",
    "pins": "third-party wheels changed",
    "excludes": "left-out requirements changed",
    "pex": "pex version changed",
    "pip": "pip version changed",
    "schema": "builder schema changed",
    "python": "Python version changed",
    "target": "target platform changed",
    "onnxruntime": "onnxruntime build changed",
}


def input_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two bundles' ``inputs``, in words ("plugin NAME changed", ...)."""
    old_plugins = {p[0]: p for p in before.get("plugins", [])}
    new_plugins = {p[0]: p for p in after.get("plugins", [])}
    changes = []
    for name in sorted(old_plugins.keys() | new_plugins.keys()):
        if name not in old_plugins:
            changes.append(f"plugin {name} added")
        elif name not in new_plugins:
            changes.append(f"plugin {name} removed")
        elif old_plugins[name] != new_plugins[name]:
            changes.append(f"plugin {name} changed")
    for key in sorted((before.keys() | after.keys()) - {"plugins"}):
        if before.get(key) != after.get(key):
            changes.append(_INPUT_LABELS.get(key, f"{key} changed"))
    return changes
