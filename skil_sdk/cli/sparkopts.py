"""The Spark options of ``infer`` and ``evaluate``: the SparkArgs fields a job uses.

:class:`~skil_sdk.SparkArgs` keeps every parameter of SKIL's SparkArgs, but most of them
belong to SKIL's training jobs or to SKIL's own driver jar and do nothing for a
batch-inference or evaluation job submitted with spark-submit. Each field is in exactly one
of three places:

* :data:`SPARK_OPTION_FIELDS`: a ``--kebab-case`` option of its own, added by
  :func:`spark_options`;
* :data:`OWN_OPTION_FIELDS`: set by the command under another name (``--output``,
  ``--batch-size``...);
* :data:`HIDDEN_SPARK_FIELDS`: not an option, with the reason; such a field is still set
  from Python (``SparkArgs``) or in a profile.

``docs/spark-args.md`` lists the same split.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import click

from skil_sdk.spark.args import FIELD_MAPPING, SparkArgs

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "HIDDEN_SPARK_FIELDS",
    "OWN_OPTION_FIELDS",
    "SPARK_OPTIONS_EPILOG",
    "SPARK_OPTION_FIELDS",
    "build_spark_args",
    "option_help",
    "spark_options",
]


@dataclass(frozen=True)
class _OptionText:
    metavar: str | None
    help: str
    default: str | None = None
    """What an unset option means, where the SparkArgs default (None) says nothing."""


# fmt: off
_OPTIONS: dict[str, _OptionText] = {
    "master": _OptionText("URL",
        "Spark master: local[N], spark://HOST:PORT, yarn, k8s://https://HOST:PORT or "
        "mesos://HOST:PORT."),
    "deploy_mode": _OptionText("MODE",
        "Spark deploy mode; only client works (the job's driver runs on this machine)."),
    "name": _OptionText("NAME", "Spark application name.", "skil-sdk JOB_ID"),
    "driver_memory": _OptionText("SIZE", "Memory for the driver, e.g. 2g.", "Spark's (1g)"),
    "executor_memory": _OptionText("SIZE", "Memory per executor, e.g. 4g.", "Spark's (1g)"),
    "num_executors": _OptionText("N", "Executors to start."),
    "total_executor_cores": _OptionText("N", "Cores for the whole job, across executors.",
        "every core the cluster offers"),
    "yarn_queue": _OptionText("QUEUE", "YARN queue to submit to.", "the queue named default"),
    "jars": _OptionText("JAR",
        "A jar for the driver's and executors' class paths (repeatable or comma-separated)."),
    "packages": _OptionText("GROUP:ARTIFACT:VERSION",
        "A Maven package to fetch, with its dependencies, onto the driver's and executors' "
        "class paths (repeatable or comma-separated)."),
    "exclude_packages": _OptionText("GROUP:ARTIFACT",
        "A dependency to leave out when resolving --packages (repeatable or comma-separated)."),
    "repositories": _OptionText("URL",
        "A Maven repository to search for --packages (repeatable or comma-separated)."),
    "files": _OptionText("PATH",
        "A file to place in each executor's working directory (repeatable or "
        "comma-separated)."),
    "properties_file": _OptionText("PATH", "A file of Spark properties to load.",
        "SPARK_HOME/conf/spark-defaults.conf"),
    "driver_java_options": _OptionText("OPTIONS",
        "Extra JVM options for the driver, e.g. -Dlog4j2.level=warn."),
    "driver_class_path": _OptionText("PATH", "Extra class path entries for the driver."),
    "driver_library_path": _OptionText("PATH", "Extra native library path for the driver."),
    "principal": _OptionText("PRINCIPAL", "Kerberos principal to log in as; needs --keytab."),
    "keytab": _OptionText("PATH", "Keytab file of --principal; needs --principal."),
    "proxy_user": _OptionText("USER",
        "User to run the job as (impersonation); not together with --principal."),
    "verbose": _OptionText(None, "Have spark-submit print its debug output into the job log."),
}
# fmt: on

SPARK_OPTION_FIELDS: tuple[str, ...] = tuple(_OPTIONS)
"""The SparkArgs fields that are options of ``infer`` and ``evaluate``, in help order."""

OWN_OPTION_FIELDS: dict[str, str] = {
    "output_path": "--output",
    "batch_size": "--batch-size",
    "data_set_provider": "--provider",
    "model_path": "--model",
    "conf": "--conf",
    "do_inference": "(always true)",
    "mode": "(always infer)",
}
"""SparkArgs fields the commands set under their own option names (or always the same)."""

_TRAINING = "SKIL training parameter; a job does not use it and keeps it in the job record only"
_SKIL_DRIVER = "SKIL's JVM driver program; the driver program comes from the bundle"
_RECORD = "kept in the job record only; the job does not read it"
_ACTION = "acts on another application instead of submitting one, which a job refuses"
_CLUSTER_MODE = "applies in cluster deploy mode only, which a job refuses"

HIDDEN_SPARK_FIELDS: dict[str, str] = {
    "training_master_path": _TRAINING,
    "num_epochs": _TRAINING,
    "model_history_url": _TRAINING,
    "model_history_id": _TRAINING,
    "eval_type": "SKIL's evaluation type, kept in an inference job's record only; "
    "`skil-sdk evaluate` takes it as --eval-type",
    "eval_data_set_provider_class": _TRAINING,
    "multi_data_set": _TRAINING,
    "main_class": _SKIL_DRIVER,
    "jar_path": _SKIL_DRIVER,
    "p_args": _SKIL_DRIVER + " and reads only its job spec",
    "ui_url": _RECORD,
    "model_instance_id": _RECORD,
    "kill": _ACTION,
    "status": _ACTION,
    "driver_cores": _CLUSTER_MODE,
    "supervise": _CLUSTER_MODE,
}
"""SparkArgs fields that are not command-line options, each with the reason."""

SPARK_OPTIONS_EPILOG = (
    "The other SparkArgs fields (num_epochs, training_master_path, kill, status, "
    "model_history_url...) are SKIL training parameters and SKIL driver settings that a "
    "spark-submit job does not use; they are available from Python (SparkArgs) and in "
    "profiles. docs/spark-args.md says which field is which."
)
"""The epilog for a command decorated with :func:`spark_options`: where the rest went."""

_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SparkArgs))
_HINTS: dict[str, Any] = typing.get_type_hints(SparkArgs)
_SETS = (set(SPARK_OPTION_FIELDS), set(OWN_OPTION_FIELDS), set(HIDDEN_SPARK_FIELDS))
if sum(map(len, _SETS)) != len(_FIELDS) or set().union(*_SETS) != set(_FIELDS):  # pragma: no cover
    raise RuntimeError("SparkArgs fields out of step with skil_sdk.cli.sparkopts")

_MASTER_NAMES = {
    "local": "local",
    "standalone": "standalone",
    "yarn": "YARN",
    "k8s": "Kubernetes",
    "mesos": "Mesos",
}


def _masters_note(name: str) -> str:
    """Which masters the flag is passed for, when not all of them."""
    masters = FIELD_MAPPING[name].masters
    if masters == frozenset(_MASTER_NAMES):
        return ""
    if masters == frozenset(_MASTER_NAMES) - {"local"}:
        return " Not passed for local masters."
    names = [_MASTER_NAMES[kind] for kind in _MASTER_NAMES if kind in masters]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f" {listed[0].upper()}{listed[1:]} only."


def _default_note(name: str) -> str:
    """The option's default: what SparkArgs holds, or what leaving it unset means."""
    text = _OPTIONS[name].default
    if text is None:
        value = getattr(SparkArgs(), name)
        if value is None or value == [] or isinstance(value, bool):
            return ""
        text = str(value)
    return f" Default: {text}."


def option_help(name: str) -> str:
    """The ``--help`` line of the option for SparkArgs field ``name``."""
    return _OPTIONS[name].help + _masters_note(name) + _default_note(name)


def _option(name: str) -> Callable[[F], F]:
    flag = "--" + name.replace("_", "-")
    hint = _HINTS[name]
    text = _OPTIONS[name]
    help_text = option_help(name)
    if hint is bool:
        return click.option(flag, name, is_flag=True, default=None, help=help_text)
    if typing.get_origin(hint) is list:
        return click.option(flag, name, multiple=True, metavar=text.metavar, help=help_text)
    kind = int if hint is int or int in typing.get_args(hint) else str
    return click.option(flag, name, type=kind, default=None, metavar=text.metavar, help=help_text)


@overload
def spark_options(fn: F, *, exclude: Collection[str] = ()) -> F: ...


@overload
def spark_options(fn: None = None, *, exclude: Collection[str] = ()) -> Callable[[F], F]: ...


def spark_options(fn: F | None = None, *, exclude: Collection[str] = ()) -> F | Callable[[F], F]:
    """Add one ``--kebab-case`` option per field of :data:`SPARK_OPTION_FIELDS`.

    Each option's parameter name is the SparkArgs field name, and an option left out of
    the command line is None (or ``()``), so :func:`build_spark_args` keeps the SparkArgs
    default. Use it bare (``@spark_options``) or leave fields out that the command has
    as options of its own (``@spark_options(exclude=["eval_type"])``); ``exclude`` names
    SparkArgs fields. Give the command :data:`SPARK_OPTIONS_EPILOG` as its epilog.
    """
    unknown = sorted(set(exclude) - set(_FIELDS))
    if unknown:
        raise ValueError(f"spark_options(exclude=...) names no SparkArgs field: {unknown}")

    def decorate(target: F) -> F:
        for name in reversed(SPARK_OPTION_FIELDS):
            if name not in exclude:
                target = _option(name)(target)
        return target

    return decorate if fn is None else decorate(fn)


def build_spark_args(values: Mapping[str, Any], conf: dict[str, str]) -> SparkArgs:
    """SparkArgs from the parsed options of :func:`spark_options`, with ``conf``.

    Options left unset keep the SparkArgs defaults; list options take repeated and
    comma-separated values; ``do_inference`` is True. Values are checked later, by
    :meth:`SparkArgs.validate`.
    """
    given: dict[str, Any] = {}
    for name in SPARK_OPTION_FIELDS:
        value = values.get(name)
        if value is None or value == ():
            continue
        if isinstance(value, (tuple, list)):
            value = [part.strip() for item in value for part in item.split(",") if part.strip()]
        given[name] = value
    given["conf"] = dict(conf)
    given["do_inference"] = True
    return SparkArgs.from_dict(given)
