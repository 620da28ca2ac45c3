"""``SparkArgs``: every parameter of SKIL's SparkArgs, in snake_case, and its spark-submit form.

A :class:`SparkArgs` says how a batch-inference job is submitted (master, memory, cores,
jars, ``--conf`` entries...) and carries SKIL's job parameters (model, provider, output,
batch size...). :data:`FIELD_MAPPING` states, for every field, what it becomes: a
spark-submit flag and the masters it applies to, or a job parameter that spark-submit
never sees. :meth:`SparkArgs.to_submit_argv` and the tests both read that table, and
``docs/spark-args.md`` documents it.

Defaults are SKIL's, except two that make jobs slow:

* ``batch_size``: SKIL used :data:`SKIL_DEFAULT_BATCH_SIZE` (16) rows per call; ours is
  :data:`DEFAULT_BATCH_SIZE` (1024). With 16 rows the fixed cost of each onnxruntime call
  dominates; 1024 rows amortize it while a batch of typical features stays a few MiB.
* ``total_executor_cores``: SKIL used :data:`SKIL_DEFAULT_TOTAL_EXECUTOR_CORES` (1), which
  gives a standalone job one core in all; ours is ``None``: the flag is left out and the
  job gets every core the cluster offers.

The batch-size benchmark in ``bench/`` measures these choices; its recorded results are
the reference for changing them.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from skil_sdk.errors import InvalidValueError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TOTAL_EXECUTOR_CORES",
    "FIELD_MAPPING",
    "MASTER_KINDS",
    "SKIL_DEFAULTS",
    "SKIL_DEFAULT_BATCH_SIZE",
    "SKIL_DEFAULT_TOTAL_EXECUTOR_CORES",
    "TRAINING_REFUSED",
    "FieldMapping",
    "SparkArgs",
    "SparkArgsBuilder",
    "master_kind_of",
    "skil_name",
]

SKIL_DEFAULT_BATCH_SIZE = 16
"""SKIL's default rows per inference call (too small: per-call overhead dominates)."""

DEFAULT_BATCH_SIZE = 1024
"""skil-sdk's default rows per inference call."""

SKIL_DEFAULT_TOTAL_EXECUTOR_CORES = 1
"""SKIL's default ``--total-executor-cores`` (one core for the whole job)."""

DEFAULT_TOTAL_EXECUTOR_CORES: int | None = None
"""skil-sdk's default: unset, so the job gets every core the cluster offers."""

TRAINING_REFUSED = "skil-sdk runs inference; train elsewhere and export to ONNX"
"""The start of the message that refuses a training job."""

MasterKind = Literal["local", "standalone", "yarn", "k8s", "mesos"]

MASTER_KINDS: tuple[MasterKind, ...] = ("local", "standalone", "yarn", "k8s", "mesos")
"""Every kind of master :attr:`SparkArgs.master_kind` can return."""

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


# --- master URLs -----------------------------------------------------------------------

_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
_LOCAL_RE = re.compile(r"local(?:\[(?P<n>\*|[0-9]+)(?:,(?P<f>[0-9]+))?\])?")
_HOSTPORT_RE = re.compile(rf"{_HOST}:(?P<port>[0-9]{{1,5}})")
_K8S_RE = re.compile(rf"k8s://(?:https?://)?{_HOST}(?::(?P<port>[0-9]{{1,5}}))?/?")
_ZK_RE = re.compile(r"zk://(?P<hosts>[^/]+)/[A-Za-z0-9_./-]*")
_MASTER_EXAMPLE = (
    "'local[*]', 'spark://host:7077', 'yarn', 'k8s://https://host:443' or 'mesos://host:5050'"
)


def _bad_master(master: object, why: str = "is not a Spark master URL") -> InvalidValueError:
    return InvalidValueError(f"master {master!r} {why}; use e.g. {_MASTER_EXAMPLE}.")


def _host_ports_ok(text: str) -> bool:
    for part in text.split(","):
        match = _HOSTPORT_RE.fullmatch(part)
        if match is None or not 1 <= int(match["port"]) <= 65535:
            return False
    return True


def master_kind_of(master: object) -> MasterKind:
    """The kind of a master URL; an :class:`InvalidValueError` if it is not one."""
    if not isinstance(master, str):
        raise _bad_master(master)
    local = _LOCAL_RE.fullmatch(master)
    if local is not None:
        n, failures = local["n"], local["f"]
        if (n not in (None, "*") and int(n) < 1) or (failures is not None and int(failures) < 1):
            raise _bad_master(master, "asks for zero threads or retries")
        return "local"
    if master == "yarn":
        return "yarn"
    if master.startswith("spark://"):
        if _host_ports_ok(master[len("spark://") :]):
            return "standalone"
    elif master.startswith("k8s://"):
        k8s = _K8S_RE.fullmatch(master)
        if k8s is not None and (k8s["port"] is None or 1 <= int(k8s["port"]) <= 65535):
            return "k8s"
    elif master.startswith("mesos://"):
        rest = master[len("mesos://") :]
        zk = _ZK_RE.fullmatch(rest)
        if _host_ports_ok(rest) or (zk is not None and _host_ports_ok(zk["hosts"])):
            return "mesos"
    elif master in ("yarn-client", "yarn-cluster"):
        raise InvalidValueError(
            f"master {master!r} was removed in Spark 2.0; use master='yarn' with "
            f"deploy_mode={master.split('-')[1]!r}."
        )
    raise _bad_master(master)


# --- values ----------------------------------------------------------------------------

_MEMORY_RE = re.compile(r"[0-9]+(?:[kmgtp]b?|b)?", re.IGNORECASE)


def _describe(hint: Any) -> str:
    names = {
        str: "a string",
        int: "a whole number",
        bool: "True or False",
        list[str]: "a list of strings",
        dict[str, str]: "a mapping of strings to strings",
    }
    for base, text in names.items():
        if hint == base:
            return text
        if hint == base | None:
            return f"{text} or None"
    return str(hint)


def _type_ok(value: Any, hint: Any) -> bool:
    if value is None:
        return hint in (str | None, int | None)
    if hint in (str, str | None):
        return isinstance(value, str)
    if hint in (int, int | None):
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint == list[str]:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if hint == dict[str, str]:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    raise TypeError(f"no check for {hint}")


def _example(name: str) -> str:
    return f"{name}={FIELD_MAPPING[name].example!r}"


@dataclass
class SparkArgs:
    """How a batch-inference job is submitted to Spark: SKIL's SparkArgs in snake_case.

    Every field, its SKIL name and default, and the spark-submit flag it becomes are in
    :data:`FIELD_MAPPING` and ``docs/spark-args.md``. Build one directly, from a dict
    (:meth:`from_dict`), or SKIL's way::

        args = SparkArgs.builder().master("yarn").executor_memory("4g").build()
        argv = args.to_submit_argv()  # ['--master', 'yarn', '--deploy-mode', 'client', ...]

    Comma-separated strings given for ``jars``, ``packages``, ``exclude_packages``,
    ``repositories`` and ``files`` are split into lists.
    """

    master: str = "local[*]"
    deploy_mode: str = "client"
    main_class: str | None = None
    jars: list[str] = field(default_factory=list)
    name: str | None = None
    packages: list[str] = field(default_factory=list)
    exclude_packages: list[str] = field(default_factory=list)
    properties_file: str | None = None
    repositories: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    driver_memory: str | None = None
    driver_java_options: str | None = None
    driver_library_path: str | None = None
    driver_class_path: str | None = None
    executor_memory: str | None = None
    proxy_user: str | None = None
    driver_cores: int = 1
    yarn_queue: str = "default"
    num_executors: int = 2
    principal: str | None = None
    keytab: str | None = None
    supervise: bool = False
    kill: str | None = None
    status: str | None = None
    total_executor_cores: int | None = DEFAULT_TOTAL_EXECUTOR_CORES
    training_master_path: str | None = None
    model_path: str | None = None
    ui_url: str | None = None
    data_set_provider: str | None = None
    jar_path: str | None = None
    p_args: list[str] = field(default_factory=list)
    model_history_url: str | None = None
    model_history_id: str | None = None
    eval_type: str | None = None
    num_epochs: int = 5
    eval_data_set_provider_class: str | None = None
    multi_data_set: bool = False
    model_instance_id: str | None = None
    do_inference: bool = False
    output_path: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    verbose: bool = False
    conf: dict[str, str] = field(default_factory=dict)
    mode: str = "infer"

    def __post_init__(self) -> None:
        for name in _LIST_FLAGS:
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, [v.strip() for v in value.split(",") if v.strip()])

    # -- construction -------------------------------------------------------------------

    @staticmethod
    def builder() -> SparkArgsBuilder:
        """A SKIL-style builder: one chained setter per field, then ``build()``."""
        return SparkArgsBuilder()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparkArgs:
        """SparkArgs from a dict of field names (snake_case or SKIL's camelCase).

        Unknown keys, and a field given under both names, are an
        :class:`InvalidValueError`; values are checked by :meth:`validate`, not here.
        """
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = _FIELD_BY_ANY_NAME.get(key) if isinstance(key, str) else None
            if name is None:
                close = difflib.get_close_matches(str(key), list(_FIELD_BY_ANY_NAME), n=1)
                hint = close[0] if close else "driver_memory"
                raise InvalidValueError(
                    f"Unknown SparkArgs key {key!r}; use a field name such as {hint!r}."
                )
            if name in values:
                raise InvalidValueError(
                    f"SparkArgs key {key!r} repeats field {name!r}; give it once, "
                    f"e.g. {_example(name)}."
                )
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every field by its snake_case name, JSON-safe (copies of lists and dicts)."""
        return dataclasses.asdict(self)

    # -- master -------------------------------------------------------------------------

    @property
    def master_kind(self) -> MasterKind:
        """``"local"``, ``"standalone"``, ``"yarn"``, ``"k8s"`` or ``"mesos"``."""
        return master_kind_of(self.master)

    # -- validation ---------------------------------------------------------------------

    def validate(self) -> None:
        """Check every field; raise :class:`InvalidValueError` at the first bad one.

        The message is one sentence naming the field and a good value. A job that asks
        for training (``mode="train"``, or ``training_master_path`` set while
        ``do_inference`` is False) is refused with :data:`TRAINING_REFUSED`.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = _HINTS[f.name]
            if not _type_ok(value, hint):
                raise InvalidValueError(
                    f"{f.name} must be {_describe(hint)}, not {value!r}; "
                    f"use e.g. {_example(f.name)}."
                )
        kind = self.master_kind
        self._validate_values()
        self._validate_combinations(kind)
        self._refuse_training()

    def _validate_values(self) -> None:
        if self.deploy_mode not in ("client", "cluster"):
            raise InvalidValueError(
                f"deploy_mode {self.deploy_mode!r} is neither 'client' nor 'cluster'; "
                "use e.g. deploy_mode='client'."
            )
        for name in ("driver_memory", "executor_memory"):
            value = getattr(self, name)
            if value is not None and (
                _MEMORY_RE.fullmatch(value) is None or int(re.sub(r"\D", "", value)) == 0
            ):
                raise InvalidValueError(
                    f"{name} {value!r} is not a memory size; use a number with an optional "
                    f"unit k, m, g or t, e.g. {_example(name)} or '512m'."
                )
        for name in (
            "driver_cores",
            "num_executors",
            "total_executor_cores",
            "num_epochs",
            "batch_size",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidValueError(
                    f"{name} must be at least 1, not {value}; use e.g. {_example(name)}."
                )
        for f in dataclasses.fields(self):
            mapping = FIELD_MAPPING[f.name]
            value = getattr(self, f.name)
            if mapping.kind == "value" and isinstance(value, str) and not value.strip():
                raise InvalidValueError(
                    f"{f.name} is empty; leave it unset or use e.g. {_example(f.name)}."
                )
        for name in _LIST_FLAGS:
            for item in getattr(self, name):
                if not item.strip() or "," in item:
                    raise InvalidValueError(
                        f"{name} entry {item!r} is empty or holds a comma; give one item per "
                        f"entry, e.g. {_example(name)}."
                    )
        for key in self.conf:
            if not key.strip() or "=" in key or key != key.strip():
                raise InvalidValueError(
                    f"conf key {key!r} is not a Spark property name; use e.g. {_example('conf')}."
                )
        if self.mode not in _INFER_MODES | _TRAIN_MODES:
            raise InvalidValueError(f"mode {self.mode!r} is not a skil-sdk mode; use mode='infer'.")

    def _validate_combinations(self, kind: MasterKind) -> None:
        if self.deploy_mode == "cluster" and kind == "local":
            raise InvalidValueError(
                f"deploy_mode 'cluster' does not work with master {self.master!r}; use "
                "deploy_mode='client', or a cluster master such as master='yarn'."
            )
        if self.deploy_mode == "cluster" and kind == "standalone":
            raise InvalidValueError(
                "deploy_mode 'cluster' is not supported by Spark for Python drivers on a "
                "standalone master; use deploy_mode='client'."
            )
        if self.kill is not None and self.status is not None:
            raise InvalidValueError(
                f"kill and status are both set; set only one, e.g. {_example('kill')}."
            )
        for name in ("kill", "status"):
            if getattr(self, name) is not None and kind not in FIELD_MAPPING[name].masters:
                raise InvalidValueError(
                    f"{name} needs a standalone, Mesos or Kubernetes master, not "
                    f"{self.master!r}; use e.g. master='spark://host:7077' with "
                    f"{_example(name)}."
                )
        if (self.principal is None) != (self.keytab is None):
            missing = "keytab" if self.keytab is None else "principal"
            raise InvalidValueError(
                f"{missing} must be set together with "
                f"{'principal' if missing == 'keytab' else 'keytab'}; use e.g. "
                f"{_example(missing)}."
            )
        if self.proxy_user is not None and self.principal is not None:
            raise InvalidValueError(
                "proxy_user does not work with principal and keytab; set only one, e.g. "
                f"{_example('proxy_user')}."
            )

    def _refuse_training(self) -> None:
        if self.mode in _TRAIN_MODES:
            raise InvalidValueError(f"{TRAINING_REFUSED} (mode={self.mode!r} asks for training).")
        if self.training_master_path is not None and not self.do_inference:
            raise InvalidValueError(
                f"{TRAINING_REFUSED} (training_master_path is set and do_inference is False)."
            )

    # -- spark-submit -------------------------------------------------------------------

    def to_submit_argv(self) -> list[str]:
        """The spark-submit options for these args, after :meth:`validate`.

        Each field is passed as :data:`FIELD_MAPPING` says, only for the masters (and
        deploy mode) it applies to; job parameters are left out. The application (the
        driver program from the bundle) and its arguments are not part of the result.
        With ``kill`` or ``status`` set only ``--master``, ``--conf``, ``--verbose`` and
        that flag are returned: spark-submit then acts on a driver instead of submitting.
        """
        self.validate()
        kind = self.master_kind
        action = self.kill is not None or self.status is not None
        argv: list[str] = []
        for f in dataclasses.fields(self):
            mapping = FIELD_MAPPING[f.name]
            if action and f.name not in _ACTION_FIELDS:
                continue
            if mapping.flag is None or not mapping.applies(kind, self.deploy_mode):
                continue
            value = getattr(self, f.name)
            if mapping.kind == "switch":
                if value:
                    argv.append(mapping.flag)
            elif mapping.kind == "conf":
                for key in sorted(value):
                    argv += [mapping.flag, f"{key}={value[key]}"]
            elif isinstance(value, list):
                if value:
                    argv += [mapping.flag, ",".join(value)]
            elif value is not None:
                argv += [mapping.flag, str(value)]
        return argv


_HINTS: dict[str, Any] = get_type_hints(SparkArgs)
_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SparkArgs))
_FIELD_BY_ANY_NAME: dict[str, str] = {name: name for name in _FIELD_NAMES}
_FIELD_BY_ANY_NAME.update(
    {alias: name for name in _FIELD_NAMES if (alias := skil_name(name)) is not None}
)

if set(FIELD_MAPPING) != set(_FIELD_NAMES):  # pragma: no cover - a programming error
    raise RuntimeError(f"FIELD_MAPPING out of step: {set(FIELD_MAPPING) ^ set(_FIELD_NAMES)}")


class SparkArgsBuilder:
    """SKIL's builder: ``SparkArgs.builder().master("yarn").do_inference(True).build()``.

    There is one chained setter per field, under its snake_case name and SKIL's
    camelCase name (``deployMode``, ``doInference``...). ``conf`` takes either a mapping
    or one ``key, value`` pair and adds to what is there. ``build()`` validates.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def build(self) -> SparkArgs:
        """The :class:`SparkArgs`, validated (an :class:`InvalidValueError` if not)."""
        args = SparkArgs(**self._values)
        args.validate()
        return args

    def conf(self, key: str | Mapping[str, str], value: str | None = None) -> SparkArgsBuilder:
        """Add ``--conf`` entries: ``conf("spark.a", "1")`` or ``conf({"spark.a": "1"})``."""
        entries = dict(self._values.get("conf", {}))
        if isinstance(key, Mapping):
            entries.update(key)
        else:
            entries[key] = value
        self._values["conf"] = entries
        return self

    def __getattr__(self, name: str) -> Callable[[Any], SparkArgsBuilder]:
        close = difflib.get_close_matches(name, list(_FIELD_BY_ANY_NAME), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise AttributeError(f"SparkArgsBuilder has no setter {name!r}{hint}")


def _make_setter(name: str) -> Callable[[SparkArgsBuilder, Any], SparkArgsBuilder]:
    def setter(self: SparkArgsBuilder, value: Any) -> SparkArgsBuilder:
        self._values[name] = value
        return self

    setter.__name__ = name
    setter.__qualname__ = f"SparkArgsBuilder.{name}"
    setter.__doc__ = f"Set ``{name}`` ({FIELD_MAPPING[name].note}); returns the builder."
    return setter


for _alias, _name in _FIELD_BY_ANY_NAME.items():
    if _name != "conf":
        setattr(SparkArgsBuilder, _alias, _make_setter(_name))
del _alias, _name
