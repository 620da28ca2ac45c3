"""skil-sdk: batch inference of ONNX models on Spark, with a plugin build system.

The public API is what ``__all__`` lists; everything else is internal. Heavy parts
(the builder, Spark, onnxruntime) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from skil_sdk.errors import SkilError
from skil_sdk.hookspecs import hookimpl
from skil_sdk.providers.interface import ExecutorSource, KeyedDataSetProvider, ProviderOption

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "SkilContext": "skil_sdk.context:SkilContext",
    "SparkArgs": "skil_sdk.spark.args:SparkArgs",
    "BadRows": "skil_sdk.inference.quarantine:BadRows",
    "build": "skil_sdk.builder.api:build",
    "publish": "skil_sdk.builder.api:publish",
    "load_results": "skil_sdk.results:load_results",
    "output_array": "skil_sdk.results:output_array",
    "results_dataset": "skil_sdk.results:results_dataset",
}

__all__ = [
    "BadRows",
    "ExecutorSource",
    "KeyedDataSetProvider",
    "ProviderOption",
    "SkilContext",
    "SkilError",
    "SparkArgs",
    "__version__",
    "build",
    "hookimpl",
    "load_results",
    "output_array",
    "publish",
    "results_dataset",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'skil_sdk' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
