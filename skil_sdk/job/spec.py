"""The typed job spec: what a prepared job runs, and what its driver receives.

:class:`JobSpec` is built once, by :func:`skil_sdk.job.prepare.prepare`, from what a
user asked for (an :class:`~skil_sdk.job.request.InferenceRequest`): the profile
applied, defaults filled in, the model and the provider resolved, the provider's
options checked. It is frozen and JSON-serialisable (``skil-sdk infer --dry-run
--json`` prints it) and carries :data:`SPEC_SCHEMA_VERSION`.

:class:`DriverSpec` is a job spec plus what only exists once the job runs (its id,
the server's URL, the bundle's hash): the driver program's one input.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skil_sdk.errors import InvalidValueError

#: Bumped whenever a field of :class:`JobSpec` changes meaning or is removed.
SPEC_SCHEMA_VERSION = 1

INFERENCE = "inference"
EVALUATE = "evaluate"
JOB_KINDS = (INFERENCE, EVALUATE)

#: ``overwrite`` values: refuse an existing output; replace an earlier skil-sdk output
#: (or an empty directory); replace whatever is there.
OVERWRITE_NO = "no"
OVERWRITE_YES = "yes"
OVERWRITE_FORCE = "force"
OVERWRITE_MODES = (OVERWRITE_NO, OVERWRITE_YES, OVERWRITE_FORCE)


def overwrite_mode(value: bool | str | None) -> str:
    """``no``, ``yes`` or ``force`` from a flag (True/False) or one of those words."""
    if value is None or value is False:
        return OVERWRITE_NO
    if value is True:
        return OVERWRITE_YES
    text = str(value).strip().lower()
    if text in ("", "true", "1"):
        return OVERWRITE_YES
    if text in ("false", "0"):
        return OVERWRITE_NO
    if text not in OVERWRITE_MODES:
        raise InvalidValueError(
            f"overwrite must be no, yes or force, not {value!r}; --overwrite replaces an "
            "earlier skil-sdk output, --overwrite=force anything."
        )
    return text


@dataclass(frozen=True)
class ModelRef:
    """The model a job runs: its id, the sha256 of its ONNX file, its signature."""

    id: str
    sha256: str
    signature: Mapping[str, Any]


@dataclass(frozen=True)
class ProviderRef:
    """The provider a job reads, as resolved on the submitting machine.

    ``resolved`` is False for a provider that only an unpublished ``--plugin`` project
    brings (it is not installed here): its options are then checked on the driver.
    """

    name: str
    class_path: str | None = None
    plugin: str | None = None
    package: str | None = None
    version: str | None = None
    resolved: bool = True
    #: True when the job named the provider by its import path (``package.module:Class``).
    by_path: bool = False

    @property
    def lookup(self) -> str:
        """What finds the provider again on the driver: its import path or its name."""
        return self.class_path if self.by_path and self.class_path else self.name


@dataclass(frozen=True)
class JobSpec:
    """A prepared job: every setting it runs with, checked (see the module docstring)."""

    kind: str
    model: ModelRef
    provider: ProviderRef
    provider_options: Mapping[str, str]
    output: str
    overwrite: str
    batch_size: int
    spark_args: Mapping[str, Any]
    keep_columns: tuple[str, ...] = ()
    postprocess: str | None = None
    postprocess_options: Mapping[str, str] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()
    advertise_host: str | None = None
    execution_provider: str = "cpu"
    spark_home: str | None = None
    profile: str | None = None
    #: The evaluation's settings (``EvaluationSettings.to_dict()``) for ``evaluate`` jobs.
    evaluation: Mapping[str, Any] | None = None
    #: Per-row shapes of model inputs given with ``--input-shape`` (checked against the
    #: model's fixed dims).
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: ``spark`` or ``local`` (chosen when the job was prepared).
    engine: str = "spark"
    #: The target rows of a packed task (None: chosen from the cores, see
    #: :mod:`skil_sdk.job.packing`).
    rows_per_task: int | None = None
    #: The error budget (``--max-bad-rows``): ``"25"`` rows or ``"0.1%"`` of the input.
    max_bad_rows: str = "0"
    schema_version: int = SPEC_SCHEMA_VERSION

    def spark(self) -> Any:
        """The job's :class:`~skil_sdk.SparkArgs`."""
        from skil_sdk.spark.args import SparkArgs

        return SparkArgs.from_dict(dict(self.spark_args))

    def settings(self) -> Any:
        """The evaluation's :class:`~skil_sdk.evaluation.metrics.EvaluationSettings`."""
        from skil_sdk.evaluation.metrics import EvaluationSettings

        if self.evaluation is None:
            raise InvalidValueError("This job is not an evaluation; it has no settings.")
        return EvaluationSettings.from_dict(dict(self.evaluation))

    def budget(self) -> Any:
        """The job's :class:`~skil_sdk.job.budget.ErrorBudget`."""
        from skil_sdk.job.budget import ErrorBudget

        return ErrorBudget.parse(self.max_bad_rows)

    @property
    def label_column(self) -> str | None:
        """The label column an evaluation reads (None for batch inference)."""
        if self.evaluation is None:
            return None
        return str(self.evaluation.get("label_column", "label"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (lists for tuples, plain dicts for mappings)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        """The spec :meth:`to_dict` wrote; a spec of another schema version is refused."""
        version = data.get("schema_version")
        if version != SPEC_SCHEMA_VERSION:
            raise InvalidValueError(
                f"This job spec has schema version {version!r}, but this skil-sdk reads "
                f"version {SPEC_SCHEMA_VERSION}; prepare the job again with this version."
            )
        values = dict(data)
        values["model"] = ModelRef(**values["model"])
        values["provider"] = ProviderRef(**values["provider"])
        values["keep_columns"] = tuple(values.get("keep_columns") or ())
        values["plugins"] = tuple(values.get("plugins") or ())
        values["input_shapes"] = {
            str(k): tuple(int(d) for d in v) for k, v in (values.get("input_shapes") or {}).items()
        }
        return cls(**values)


@dataclass(frozen=True)
class DriverSpec:
    """A job spec and what the job's run adds: the driver program's input (never the token)."""

    job: JobSpec
    job_id: str
    server_url: str
    result_path: str
    bundle_hash: str | None = None
    #: None: each executor uses its node's default (or ``SKIL_NODE_CACHE`` set there).
    node_cache: str | None = None
    app_name: str = "skil-sdk"
    submitted_at: float = 0.0
    #: True for a job run in the caller's own SparkSession (it has no job log).
    in_session: bool = False
    #: True when the run continues a job's committed tasks (``skil-sdk jobs resume``).
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**_plain(dataclasses.asdict(self)), "job": self.job.to_dict()}

    def identity(self, options: Mapping[str, str]) -> dict[str, Any]:
        """What a job's output records about it (``options`` as the provider got them,
        secret-looking values redacted)."""
        job = self.job
        return {
            "job_id": self.job_id,
            "kind": job.kind,
            "model_id": job.model.id,
            "model_sha256": job.model.sha256,
            "provider": job.provider.name,
            "provider_options": redact_options(options),
            "bundle_hash": self.bundle_hash,
            "profile": job.profile,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriverSpec:
        """The spec :meth:`to_dict` wrote."""
        values = dict(data)
        values["job"] = JobSpec.from_dict(values["job"])
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_SECRET_OPTION = re.compile(r"(?i)(password|passwd|token|secret|key|credential)")
REDACTED = "***"


def redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """Options with secret-looking values replaced by ``***`` (for records and logs)."""
    return {k: (REDACTED if _SECRET_OPTION.search(k) else v) for k, v in options.items()}
