"""The ``skil-sdk`` command line. The only part of skil-sdk that prints.

Command groups live in one module each and are imported only when invoked, so that
``skil-sdk --help`` stays fast (no pyspark, onnxruntime or pex import).
"""

from __future__ import annotations

from skil_sdk.cli.main import main

__all__ = ["main"]
