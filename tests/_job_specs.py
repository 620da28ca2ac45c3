"""Job specs built directly (no model store, no plugins) for tests of the runner's parts."""

from __future__ import annotations

from typing import Any

from skil_sdk.job.spec import JobSpec, ModelRef, ProviderRef
from skil_sdk.spark.args import SparkArgs

SIGNATURE = {
    "inputs": [{"name": "input", "kind": "tensor", "type": "float32", "shape": ["N", 4]}],
    "outputs": [{"name": "output", "kind": "tensor", "type": "float32", "shape": ["N", 3]}],
}


def make_job(spark_args: SparkArgs | None = None, **fields: Any) -> JobSpec:
    """A JobSpec of an inference job over the ``numpy`` provider, with ``fields`` changed."""
    values: dict[str, Any] = {
        "kind": "inference",
        "model": ModelRef("m-000000000000", "0" * 64, SIGNATURE),
        "provider": ProviderRef("numpy"),
        "provider_options": {},
        "output": "/tmp/out",
        "overwrite": "no",
        "batch_size": 1024,
        "spark_args": (spark_args or SparkArgs()).to_dict(),
    }
    values.update(fields)
    return JobSpec(**values)
