"""Running ONNX models with onnxruntime: sessions, signatures, reshaping, batching, fetching.

Imports are lazy so that ``skil_sdk.inference.fetch`` (used on executors before a model
is loaded) does not pull in onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "ModelRunner": "skil_sdk.inference.runner:ModelRunner",
    "get_runner": "skil_sdk.inference.runner:get_runner",
    "fetch_model": "skil_sdk.inference.fetch:fetch_model",
    "signature_from_session": "skil_sdk.inference.signature:signature_from_session",
}

__all__ = ["ModelRunner", "fetch_model", "get_runner", "signature_from_session"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'skil_sdk.inference' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
