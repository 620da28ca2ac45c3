"""What a user asks for: one batch-inference or evaluation job, before it is prepared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skil_sdk.spark.args import SparkArgs


@dataclass
class InferenceRequest:
    """One job, as ``skil-sdk infer``, ``skil-sdk evaluate`` and ``SkilContext`` describe it.

    :func:`skil_sdk.job.prepare.prepare` turns it into a checked, frozen
    :class:`~skil_sdk.job.spec.JobSpec`.
    """

    model_id: str
    provider: str
    output: str
    spark_args: SparkArgs = field(default_factory=SparkArgs)
    batch_size: int | None = None
    #: The target rows of a packed task (``--rows-per-task``; None: chosen from the cores).
    rows_per_task: int | None = None
    #: The bad rows the job may quarantine in ``OUTPUT/_errors/`` instead of failing:
    #: a count (``25``) or a share of the input (``"0.1%"``); None: none.
    max_bad_rows: str | int | None = None
    provider_options: dict[str, str] = field(default_factory=dict)
    #: False, True (replace an earlier skil-sdk output or an empty directory) or "force".
    overwrite: bool | str = False
    keep_columns: list[str] = field(default_factory=list)
    postprocess: str | None = None
    postprocess_options: dict[str, str] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    advertise_host: str | None = None
    execution_provider: str = "cpu"
    spark_home: str | None = None
    profile: str | None = None
    #: Per-row shapes of model inputs (``--input-shape NAME=3,224,224``), resolving their
    #: dynamic dims for flat rows.
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    #: ``spark`` (spark-submit), ``local`` (worker processes here, no JVM) or ``auto``
    #: (local for a local master and a provider that reads on the executors); None: the
    #: profile's, else ``auto``.
    engine: str | None = None
    #: ``inference`` (write Parquet to ``output``) or ``evaluate`` (metrics; ``output``
    #: is then an optional JSON file), with the evaluation's settings in ``evaluation``.
    kind: str = "inference"
    evaluation: dict[str, Any] = field(default_factory=dict)
