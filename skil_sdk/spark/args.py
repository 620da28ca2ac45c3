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
from typing import Any, get_type_hints

from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.argmap import (
    _ACTION_FIELDS,
    _INFER_MODES,
    _LIST_FLAGS,
    _TRAIN_MODES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_TOTAL_EXECUTOR_CORES,
    FIELD_MAPPING,
    SKIL_DEFAULT_BATCH_SIZE,
    SKIL_DEFAULT_TOTAL_EXECUTOR_CORES,
    SKIL_DEFAULTS,
    FieldMapping,
    skil_name,
)
from skil_sdk.spark.masters import MASTER_KINDS, MasterKind, master_kind_of

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

TRAINING_REFUSED = "skil-sdk runs inference; train elsewhere and export to ONNX"
"""The start of the message that refuses a training job."""

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
