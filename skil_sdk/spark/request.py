"""A job's run: its result, its record's details, and the driver spec derived from it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skil_sdk.errors import InvalidValueError, SkilError
from skil_sdk.job.spec import DriverSpec, JobSpec, redact_options
from skil_sdk.store.jobs import JobRecord


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
    #: ``inference`` or ``evaluate``.
    kind: str = "inference"
    #: ``spark`` or ``local``.
    engine: str = "spark"
    #: The input's rows (None: the provider does not say), the rows written and the rows
    #: quarantined in ``OUTPUT/_errors/`` (batch inference).
    rows_in: int | None = None
    rows_written: int | None = None
    rows_quarantined: int | None = None
    #: Tasks of the job, and of those the ones an earlier run committed (``jobs resume``).
    tasks: int | None = None
    tasks_kept: int | None = None
    #: How a Spark job ran: ``warm`` (in the running ``skil-sdk session``) or ``cold`` (a
    #: spark-submit of its own); None for the local engine and a caller's SparkSession.
    session: str | None = None
    #: What a cold job's driver JVM did with the class-data archive
    #: (:mod:`skil_sdk.spark.jvmarchive`): ``used``, ``recording``, ``dumping`` or ``unused``;
    #: None where it does not apply.
    jvm_archive: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


ProgressCallback = Callable[[JobRecord], None]

LogCallback = Callable[[str], None]


def advertise_host(job: JobSpec, master: str | None = None) -> str:
    """The address executors use to reach the server; it must resolve here."""
    return default_advertise_host(job.advertise_host, master or str(job.spark_args["master"]))


def default_advertise_host(explicit: str | None, master: str) -> str:
    """``explicit``, else ``SKIL_ADVERTISE_HOST``, else loopback for a local master and this
    machine's name for a cluster's; it must resolve here."""
    host = explicit or os.environ.get("SKIL_ADVERTISE_HOST")
    if not host:
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


def job_details(job: JobSpec, bundle_hash: str | None) -> dict[str, Any]:
    """What the job record keeps about a job (secret-looking option values redacted)."""
    return {
        "spark_args": dict(job.spark_args),
        "provider_options": redact_options(job.provider_options),
        "batch_size": job.batch_size,
        "bundle_hash": bundle_hash,
        "keep_columns": list(job.keep_columns),
        "postprocess": job.postprocess,
        "plugins": list(job.plugins),
        "profile": job.profile,
        "execution_provider": job.execution_provider,
        "engine": job.engine,
        "spark_home": _spark_home_or_none(job.spark_home) if job.engine == "spark" else None,
        **({"evaluation": dict(job.evaluation)} if job.evaluation is not None else {}),
    }


def _spark_home_or_none(explicit: str | None) -> str | None:
    from skil_sdk.spark.sparkhome import find_spark_home

    try:
        return str(find_spark_home(explicit))
    except SkilError:
        return None


def driver_spec(
    job_id: str,
    job: JobSpec,
    bundle_hash: str | None,
    server_url: str,
    result_path: Path,
    in_session: bool = False,
    resume: bool = False,
) -> DriverSpec:
    """The driver program's input: the job spec and what this run adds (never the token)."""
    return DriverSpec(
        job=job,
        job_id=job_id,
        server_url=server_url,
        result_path=str(result_path),
        bundle_hash=bundle_hash,
        # None: each executor uses its node's default (or SKIL_NODE_CACHE set on it)
        node_cache=os.environ.get("SKIL_NODE_CACHE"),
        app_name=str(job.spark_args.get("name") or f"skil-sdk {job_id}"),
        submitted_at=time.time(),
        in_session=in_session,
        resume=resume,
    )


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
