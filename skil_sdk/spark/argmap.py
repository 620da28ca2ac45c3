"""What every SparkArgs field becomes: a spark-submit flag, a conf, or a job parameter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from skil_sdk.spark.masters import MASTER_KINDS

SKIL_DEFAULT_BATCH_SIZE = 16
"""SKIL's default rows per inference call (too small: per-call overhead dominates)."""

DEFAULT_BATCH_SIZE = 1024
"""skil-sdk's default rows per inference call."""

SKIL_DEFAULT_TOTAL_EXECUTOR_CORES = 1
"""SKIL's default ``--total-executor-cores`` (one core for the whole job)."""

DEFAULT_TOTAL_EXECUTOR_CORES: int | None = None
"""skil-sdk's default: unset, so the job gets every core the cluster offers."""

_ALL: frozenset[str] = frozenset(MASTER_KINDS)
_CLUSTERS: frozenset[str] = _ALL - {"local"}

MappingKind = Literal["value", "switch", "conf", "job"]


@dataclass(frozen=True)
class FieldMapping:
    """What one :class:`SparkArgs` field becomes on the spark-submit command line.

    ``kind`` is ``"value"`` (``flag VALUE``; lists joined with commas), ``"switch"``
    (``flag`` alone when true), ``"conf"`` (``--conf key=value`` per entry) or ``"job"``
    (a job parameter: never passed to spark-submit). ``masters`` are the master kinds it
    is passed for; with ``cluster_only`` only in cluster deploy mode. ``example`` is a good
    value, quoted by error messages and the docs.
    """

    kind: MappingKind
    flag: str | None
    example: Any
    note: str
    masters: frozenset[str] = _ALL
    cluster_only: bool = False

    @property
    def is_job_parameter(self) -> bool:
        """True when spark-submit never sees this field."""
        return self.kind == "job"

    def applies(self, master_kind: str, deploy_mode: str) -> bool:
        """Whether the flag is passed for this master kind and deploy mode."""
        if self.is_job_parameter or master_kind not in self.masters:
            return False
        return deploy_mode == "cluster" or not self.cluster_only


def _flag(
    flag: str, example: Any, note: str, masters: frozenset[str] = _ALL, cluster_only: bool = False
) -> FieldMapping:
    return FieldMapping("value", flag, example, note, masters, cluster_only)


def _job(example: Any, note: str) -> FieldMapping:
    return FieldMapping("job", None, example, note, frozenset())


_YARN_K8S = frozenset({"yarn", "k8s"})
_ACTIONS = frozenset({"standalone", "mesos", "k8s"})
_RECORD = "kept in the job record only"
_ACTS = "instead of submitting (only master, conf and verbose are passed with it)"

# fmt: off
FIELD_MAPPING: dict[str, FieldMapping] = {
    "master": _flag("--master", "yarn", "Always passed."),
    "deploy_mode": _flag("--deploy-mode", "client",
        "Always passed; `cluster` is refused for local masters and, for Python drivers, "
        "by Spark on standalone masters."),
    "main_class": _job("org.example.Main",
        f"SKIL's driver class (`--class`); {_RECORD} (the driver comes from the bundle)."),
    "jars": _flag("--jars", ["/opt/libs/extra.jar"], "Comma-joined."),
    "name": _flag("--name", "nightly-scoring", "Application name."),
    "packages": _flag("--packages", ["org.apache.hadoop:hadoop-aws:3.3.4"],
        "Comma-joined Maven coordinates."),
    "exclude_packages": _flag("--exclude-packages", ["com.google.guava:guava"],
        "Comma-joined groupId:artifactId."),
    "properties_file": _flag("--properties-file", "/etc/spark/job.conf", "Extra properties."),
    "repositories": _flag("--repositories", ["https://repo1.maven.org/maven2"],
        "Comma-joined URLs."),
    "files": _flag("--files", ["/data/lookup.csv"], "Comma-joined; shipped to every executor."),
    "driver_memory": _flag("--driver-memory", "2g", "Memory size."),
    "driver_java_options": _flag("--driver-java-options", "-Dlog4j2.level=warn",
        "Extra driver JVM options."),
    "driver_library_path": _flag("--driver-library-path", "/opt/hadoop/lib/native",
        "Extra driver library path."),
    "driver_class_path": _flag("--driver-class-path", "/opt/libs/extra.jar",
        "Extra driver class path."),
    "executor_memory": _flag("--executor-memory", "4g",
        "Memory size; left out for local masters, whose executor is the driver.", _CLUSTERS),
    "proxy_user": _flag("--proxy-user", "etl",
        "User to impersonate; not together with principal/keytab."),
    "driver_cores": _flag("--driver-cores", 2,
        "Cluster deploy mode only (in client mode the driver runs where spark-submit runs).",
        _CLUSTERS, cluster_only=True),
    "yarn_queue": _flag("--queue", "default", "YARN only.", frozenset({"yarn"})),
    "num_executors": _flag("--num-executors", 4,
        "YARN and Kubernetes only (`spark.executor.instances`).", _YARN_K8S),
    "principal": _flag("--principal", "etl@EXAMPLE.COM",
        "YARN and Kubernetes only; needs keytab.", _YARN_K8S),
    "keytab": _flag("--keytab", "/etc/security/etl.keytab",
        "YARN and Kubernetes only; needs principal.", _YARN_K8S),
    "supervise": FieldMapping("switch", "--supervise", True,
        "Standalone and Mesos cluster deploy mode only; passed when true.",
        frozenset({"standalone", "mesos"}), cluster_only=True),
    "kill": _flag("--kill", "driver-20240101000000-0000",
        f"Standalone, Mesos and Kubernetes only: spark-submit kills that driver {_ACTS}.",
        _ACTIONS),
    "status": _flag("--status", "driver-20240101000000-0000",
        f"Standalone, Mesos and Kubernetes only: spark-submit reports that driver {_ACTS}.",
        _ACTIONS),
    "total_executor_cores": _flag("--total-executor-cores", 16,
        "Standalone and Mesos only; left out when None (every core the cluster offers).",
        frozenset({"standalone", "mesos"})),
    "training_master_path": _job("/models/training-master.json",
        "SKIL's training configuration; set with do_inference=False it asks for training, "
        "which is refused."),
    "model_path": _job("/models/model.onnx", "The model file the driver program runs."),
    "ui_url": _job("http://localhost:9008",
        "SKIL's UI address; kept in the job record (progress goes to the skil-sdk server)."),
    "data_set_provider": _job("mnist",
        "The keyed data-set provider (plugin name or `package.module:Class`)."),
    "jar_path": _job("/opt/skil/job.jar",
        f"SKIL's driver jar; {_RECORD} (the driver comes from the bundle)."),
    "p_args": _job(["--flag"], "Extra arguments appended to the driver program's arguments."),
    "model_history_url": _job("http://localhost:9100", f"SKIL's model-history server; {_RECORD}."),
    "model_history_id": _job("history-1", f"SKIL's model-history entry; {_RECORD}."),
    "eval_type": _job("classification", f"SKIL's evaluation type; {_RECORD}."),
    "num_epochs": _job(1, f"SKIL's training epochs (inference makes one pass); {_RECORD}."),
    "eval_data_set_provider_class": _job("my_provider.data:EvalProvider",
        f"SKIL's evaluation provider; {_RECORD}."),
    "multi_data_set": _job(False,
        f"SKIL's MultiDataSet switch (inputs come from the ONNX model); {_RECORD}."),
    "model_instance_id": _job("model-1", "Identifies the model in the job record."),
    "do_inference": _job(True,
        "SKIL's inference switch; False with training_master_path asks for training, "
        "which is refused."),
    "output_path": _job("file:///tmp/scores", "Where the driver program writes Parquet output."),
    "batch_size": _job(DEFAULT_BATCH_SIZE, "Rows per onnxruntime call on the executors."),
    "verbose": FieldMapping("switch", "--verbose", True,
        "Passed when true (spark-submit debug output)."),
    "conf": FieldMapping("conf", "--conf", {"spark.executor.cores": "4"},
        "One `--conf key=value` per entry, sorted by key."),
    "mode": _job("infer", "`infer` (the only mode); `train` is refused."),
}
# fmt: on
"""What every :class:`SparkArgs` field becomes; ``to_submit_argv`` and the docs follow it."""

SKIL_DEFAULTS: dict[str, Any] = {
    "batch_size": SKIL_DEFAULT_BATCH_SIZE,
    "total_executor_cores": SKIL_DEFAULT_TOTAL_EXECUTOR_CORES,
}
"""SKIL's defaults where they differ from ours."""

_NOT_SKIL = frozenset({"conf", "mode"})
_LIST_FLAGS = ("jars", "packages", "exclude_packages", "repositories", "files")
_TRAIN_MODES = frozenset({"train", "training", "fit"})
_INFER_MODES = frozenset({"infer", "inference"})
_ACTION_FIELDS = frozenset({"master", "kill", "status", "conf", "verbose"})


def skil_name(field_name: str) -> str | None:
    """SKIL's camelCase name of a field, or None for fields SKIL did not have."""
    if field_name in _NOT_SKIL:
        return None
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)
