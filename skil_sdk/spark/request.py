"""A batch-inference request, its result, and the checks and job spec derived from it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.errors import ConflictError, InvalidValueError, SkilError
from skil_sdk.spark.args import SparkArgs
from skil_sdk.store.jobs import JobRecord

EXECUTION_PROVIDERS = ("cpu", "cuda")


@dataclass
class InferenceRequest:
    """One batch-inference job, as ``skil-sdk infer`` and ``SkilContext`` describe it."""

    model_id: str
    provider: str
    output: str
    spark_args: SparkArgs = field(default_factory=SparkArgs)
    batch_size: int | None = None
    provider_options: dict[str, str] = field(default_factory=dict)
    overwrite: bool = False
    keep_columns: list[str] = field(default_factory=list)
    postprocess: str | None = None
    postprocess_options: dict[str, str] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    advertise_host: str | None = None
    execution_provider: str = "cpu"
    spark_home: str | None = None
    profile: str | None = None
    #: ``inference`` (write Parquet to ``output``) or ``evaluate`` (metrics; ``output``
    #: is then an optional JSON file), with the evaluation's settings in ``evaluation``.
    kind: str = "inference"
    evaluation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the detached runner reads it back with :meth:`from_dict`)."""
        data = dict(self.__dict__)
        data["spark_args"] = self.spark_args.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceRequest:
        """The request :meth:`to_dict` wrote."""
        values = dict(data)
        values["spark_args"] = SparkArgs.from_dict(values["spark_args"])
        return cls(**values)


@dataclass
class JobResult:
    """What a job produced (``skil-sdk infer --json``)."""

    job_id: str
    state: str
    rows: int | None
    output: str
    seconds: float
    bundle_hash: str | None = None
    log_path: str | None = None
    error: str | None = None
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


ProgressCallback = Callable[[JobRecord], None]

LogCallback = Callable[[str], None]


def _is_local_path(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path[len("file://") :] if path.startswith("file://") else path).expanduser()


def check_request(request: InferenceRequest) -> None:
    """Refuse a request that cannot run, before anything is written or submitted."""
    args = request.spark_args
    args.validate()
    if args.deploy_mode == "cluster":
        raise InvalidValueError(
            "skil-sdk runs the job's driver on this machine (it serves the model and tracks "
            "the job); use --deploy-mode client."
        )
    if args.kill or args.status:
        raise InvalidValueError(
            "kill and status ask spark-submit about another application; run "
            "`spark-submit --kill ID` or `--status ID` directly, or `skil-sdk jobs kill JOB`."
        )
    for field_name, given, own in (
        ("output_path", args.output_path, request.output),
        ("data_set_provider", args.data_set_provider, request.provider),
    ):
        if given and own and given != own:
            raise InvalidValueError(
                f"SparkArgs.{field_name} is {given!r} but the job names {own!r}; give one."
            )
    if request.batch_size is not None and request.batch_size < 1:
        raise InvalidValueError(
            f"batch_size must be at least 1, not {request.batch_size}; e.g. 1024."
        )
    if request.execution_provider not in EXECUTION_PROVIDERS:
        raise InvalidValueError(
            f"execution provider must be one of {', '.join(EXECUTION_PROVIDERS)}, not "
            f"{request.execution_provider!r}."
        )
    if (
        request.output
        and _is_local_path(request.output)
        and _local(request.output).exists()
        and not request.overwrite
    ):
        raise ConflictError(
            f"The output path {request.output} already exists; choose another or pass --overwrite."
        )
    for project in request.plugins:
        if not (Path(project) / "pyproject.toml").exists():
            raise InvalidValueError(
                f"--plugin {project} is not a provider project (no pyproject.toml); pass the "
                "directory `skil-sdk new provider` created."
            )


def advertise_host(request: InferenceRequest) -> str:
    """The address executors use to reach the server; it must resolve here."""
    host = request.advertise_host or os.environ.get("SKIL_ADVERTISE_HOST")
    if not host:
        master = request.spark_args.master
        if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
            host = "127.0.0.1"
        else:
            host = socket.getfqdn()
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise InvalidValueError(
            f"The advertise host {host!r} does not resolve ({exc.strerror}); pass "
            "--advertise-host with an address the executors can reach."
        ) from exc
    return host


def job_details(request: InferenceRequest, bundle_hash: str) -> dict[str, Any]:
    """What the job record keeps about a request (secret-looking option values redacted)."""
    from skil_sdk.spark.driver import redact_options

    return {
        "spark_args": request.spark_args.to_dict(),
        "provider_options": redact_options(request.provider_options),
        "batch_size": request.batch_size,
        "bundle_hash": bundle_hash,
        "keep_columns": request.keep_columns,
        "postprocess": request.postprocess,
        "plugins": request.plugins,
        "profile": request.profile,
        "execution_provider": request.execution_provider,
        "spark_home": _spark_home_or_none(request.spark_home),
    }


def _spark_home_or_none(explicit: str | None) -> str | None:
    from skil_sdk.spark.sparkhome import find_spark_home

    try:
        return str(find_spark_home(explicit))
    except SkilError:
        return None


def job_spec(
    job_id: str,
    request: InferenceRequest,
    model: Any,
    bundle_hash: str | None,
    server_url: str,
    result_path: Path,
) -> dict[str, Any]:
    """The driver program's input (JSON): everything but the token."""

    return {
        "job_id": job_id,
        "model": {"id": model.id, "sha256": model.sha256, "signature": model.signature},
        "provider": request.provider,
        "provider_options": request.provider_options,
        "output": request.output,
        "overwrite": request.overwrite,
        "batch_size": request.batch_size,
        "keep_columns": request.keep_columns,
        "postprocess": request.postprocess,
        "postprocess_options": request.postprocess_options,
        "server_url": server_url,
        "bundle_hash": bundle_hash,
        # None: each executor uses its node's default (or SKIL_NODE_CACHE set on it)
        "node_cache": os.environ.get("SKIL_NODE_CACHE"),
        "execution_provider": request.execution_provider,
        "result_path": str(result_path),
        "app_name": request.spark_args.name or f"skil-sdk {job_id}",
        "profile": request.profile,
        "submitted_at": time.time(),
        "kind": request.kind,
        "evaluation": request.evaluation,
    }


def bundle_hash_of(python: str) -> str | None:
    """The short hash in a bundle file name (``skil-bundle-HASH.pex``), or None."""
    name = Path(python).name
    if name.startswith("skil-bundle-") and name.endswith(".pex"):
        return name[len("skil-bundle-") : -len(".pex")]
    return None


def node_cache_dir() -> str:
    """This machine's node cache (``SKIL_NODE_CACHE`` or the per-user default)."""
    from skil_sdk.spark.executor import default_node_cache

    return str(default_node_cache())
