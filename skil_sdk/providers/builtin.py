"""The built-in plugin: providers and post-processors shipped with skil-sdk.

Registered through the same hooks as third-party plugins, under the plugin name
``builtin``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skil_sdk.hookspecs import hookimpl


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    """Register ``mnist``, ``parquet``, ``csv``, ``numpy`` and ``images``."""
    from skil_sdk.providers.files import CsvProvider, NumpyProvider, ParquetProvider
    from skil_sdk.providers.images import ImagesProvider
    from skil_sdk.providers.mnist import MnistProvider

    for cls in (MnistProvider, ParquetProvider, CsvProvider, NumpyProvider, ImagesProvider):
        register(cls)


@hookimpl
def register_postprocessors(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register ``argmax``, ``softmax`` and ``topk``."""
    from skil_sdk import postprocess

    register("argmax", postprocess.argmax)
    register("softmax", postprocess.softmax)
    register("topk", postprocess.topk)
