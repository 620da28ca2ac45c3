"""The Spark options of `infer` and `evaluate`: which SparkArgs fields they show, their help,
and the SparkArgs built from them. Fast: click's CliRunner on a small command, no Spark."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from skil_sdk.cli.sparkopts import (
    HIDDEN_SPARK_FIELDS,
    OWN_OPTION_FIELDS,
    SPARK_OPTION_FIELDS,
    SPARK_OPTIONS_EPILOG,
    build_spark_args,
    option_help,
    spark_options,
)
from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.args import SparkArgs

FIELDS = [f.name for f in dataclasses.fields(SparkArgs)]
DOCS = Path(__file__).resolve().parent.parent / "docs" / "spark-args.md"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@click.command(epilog=SPARK_OPTIONS_EPILOG)
@spark_options
def job(**values: Any) -> None:
    """A job command with the Spark options; prints the SparkArgs it would submit."""
    click.echo(json.dumps(build_spark_args(values, {"spark.task.cpus": "1"}).to_dict()))


@click.command()
@spark_options(exclude=["eval_type", "verbose"])
def job_without(**values: Any) -> None:
    """The Spark options less two fields."""
    click.echo(json.dumps(sorted(values)))


def _help(command: click.Command = job) -> str:
    result = CliRunner().invoke(command, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def _run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(job, list(args))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def _option_lines(text: str) -> dict[str, str]:
    """Each option of a --help page and its help text (continuation lines joined)."""
    options: dict[str, str] = {}
    current = None
    for line in text.split("Options:", 1)[1].splitlines():
        match = re.match(r"^  (--[a-z-]+)(?: [A-Z][^ ]*)?(?:\s+(.*))?$", line)
        if match:
            current = match.group(1)
            options[current] = match.group(2) or ""
        elif current and line.startswith("      "):
            options[current] = (options[current] + " " + line.strip()).strip()
        elif not line.strip():
            current = None
    return options


# --- which fields ----------------------------------------------------------------------


def test_every_sparkargs_field_is_shown_hidden_or_own_exactly_once() -> None:
    groups = [set(SPARK_OPTION_FIELDS), set(HIDDEN_SPARK_FIELDS), set(OWN_OPTION_FIELDS)]
    for name in FIELDS:
        assert sum(name in group for group in groups) == 1, name
    assert set().union(*groups) == set(FIELDS)
    assert len(SPARK_OPTION_FIELDS) == len(set(SPARK_OPTION_FIELDS))


def test_every_hidden_field_has_a_reason() -> None:
    for name, reason in HIDDEN_SPARK_FIELDS.items():
        assert len(reason.split()) >= 5, (name, reason)


def test_own_fields_are_the_ones_infer_takes_under_its_own_names() -> None:
    assert OWN_OPTION_FIELDS == {
        "output_path": "--output",
        "batch_size": "--batch-size",
        "data_set_provider": "--provider",
        "model_path": "--model",
        "conf": "--conf",
        "do_inference": "(always true)",
        "mode": "(always infer)",
    }


def test_training_and_action_fields_are_hidden() -> None:
    for name in ("num_epochs", "training_master_path", "kill", "status", "model_history_url"):
        assert name in HIDDEN_SPARK_FIELDS
    for name in ("master", "executor_memory", "num_executors", "yarn_queue", "keytab"):
        assert name in SPARK_OPTION_FIELDS


# --- help ------------------------------------------------------------------------------


def test_help_lists_the_shown_options_and_not_the_hidden_ones() -> None:
    options = _option_lines(_help())
    assert set(options) == {_flag(n) for n in SPARK_OPTION_FIELDS} | {"--help"}
    for hidden in ("--num-epochs", "--kill", "--status", "--training-master-path"):
        assert hidden not in options
    assert options["--executor-memory"] == (
        "Memory per executor, e.g. 4g. Not passed for local masters. Default: Spark's (1g)."
    )


def test_help_gives_real_descriptions_and_defaults() -> None:
    options = _option_lines(_help())
    for name in SPARK_OPTION_FIELDS:
        text = options[_flag(name)]
        assert not re.search(r"SparkArgs\.\w+", text), text
        assert "(default: None)" not in text
        assert text == option_help(name)
    assert options["--master"].endswith("Default: local[*].")
    assert options["--deploy-mode"].endswith("Default: client.")
    assert options["--num-executors"] == "Executors to start. YARN and Kubernetes only. Default: 2."
    assert options["--total-executor-cores"].endswith(
        "Standalone and Mesos only. Default: every core the cluster offers."
    )
    assert options["--yarn-queue"] == (
        "YARN queue to submit to. YARN only. Default: the queue named default."
    )
    assert options["--verbose"] == "Have spark-submit print its debug output into the job log."


def test_help_epilog_says_where_the_other_fields_went() -> None:
    epilog = " ".join(_help().split("Show this message and exit.", 1)[1].split())
    assert epilog == " ".join(SPARK_OPTIONS_EPILOG.split())
    assert "SKIL training parameters" in epilog
    assert "available from Python (SparkArgs) and in profiles" in epilog
    assert "docs/spark-args.md" in epilog


def test_exclude_leaves_fields_out() -> None:
    options = _option_lines(_help(job_without))
    assert "--verbose" not in options and "--eval-type" not in options
    assert "--master" in options
    result = CliRunner().invoke(job_without, [])
    assert json.loads(result.output) == sorted(set(SPARK_OPTION_FIELDS) - {"verbose"})


def test_exclude_refuses_a_name_that_is_no_field() -> None:
    with pytest.raises(ValueError, match=r"no SparkArgs field: \['eval-type'\]"):
        spark_options(exclude=["eval-type"])


# --- build_spark_args ------------------------------------------------------------------


def test_unset_options_keep_the_sparkargs_defaults() -> None:
    built = _run()
    expected = SparkArgs(conf={"spark.task.cpus": "1"}, do_inference=True).to_dict()
    assert built == expected
    assert built["master"] == "local[*]" and built["num_executors"] == 2
    assert built["do_inference"] is True and built["verbose"] is False


def test_options_map_to_their_fields() -> None:
    built = _run(
        "--master", "yarn",
        "--deploy-mode", "client",
        "--name", "nightly",
        "--driver-memory", "2g",
        "--executor-memory", "4g",
        "--num-executors", "8",
        "--total-executor-cores", "16",
        "--yarn-queue", "batch",
        "--jars", "/opt/a.jar,/opt/b.jar",
        "--jars", "/opt/c.jar",
        "--packages", "org.apache.hadoop:hadoop-aws:3.3.4",
        "--exclude-packages", "com.google.guava:guava",
        "--repositories", "https://repo1.maven.org/maven2",
        "--files", "/data/lookup.csv",
        "--properties-file", "/etc/spark/job.conf",
        "--driver-java-options", "-Dlog4j2.level=warn",
        "--driver-class-path", "/opt/extra.jar",
        "--driver-library-path", "/opt/native",
        "--principal", "etl@EXAMPLE.COM",
        "--keytab", "/etc/etl.keytab",
        "--verbose",
    )  # fmt: skip
    given = {
        "master": "yarn",
        "deploy_mode": "client",
        "name": "nightly",
        "driver_memory": "2g",
        "executor_memory": "4g",
        "num_executors": 8,
        "total_executor_cores": 16,
        "yarn_queue": "batch",
        "jars": ["/opt/a.jar", "/opt/b.jar", "/opt/c.jar"],
        "packages": ["org.apache.hadoop:hadoop-aws:3.3.4"],
        "exclude_packages": ["com.google.guava:guava"],
        "repositories": ["https://repo1.maven.org/maven2"],
        "files": ["/data/lookup.csv"],
        "properties_file": "/etc/spark/job.conf",
        "driver_java_options": "-Dlog4j2.level=warn",
        "driver_class_path": "/opt/extra.jar",
        "driver_library_path": "/opt/native",
        "principal": "etl@EXAMPLE.COM",
        "keytab": "/etc/etl.keytab",
        "verbose": True,
    }
    for name, value in given.items():
        assert built[name] == value, name
    assert built["conf"] == {"spark.task.cpus": "1"}
    assert built["do_inference"] is True
    untouched = SparkArgs().to_dict()
    for name in set(FIELDS) - set(given) - {"conf", "do_inference"}:
        assert built[name] == untouched[name], name
    args = SparkArgs.from_dict(built)
    args.validate()
    assert args.to_submit_argv()[:4] == ["--master", "yarn", "--deploy-mode", "client"]


def test_proxy_user_maps_to_its_field() -> None:
    assert _run("--proxy-user", "etl")["proxy_user"] == "etl"


def test_build_spark_args_reads_only_the_shown_fields() -> None:
    values = {"master": "local[2]", "num_epochs": 9, "kill": "driver-1", "eval_type": "x"}
    args = build_spark_args(values, {})
    assert args.master == "local[2]"
    assert (args.num_epochs, args.kill, args.eval_type) == (5, None, None)
    assert args.conf == {} and args.do_inference is True


def test_build_spark_args_leaves_checking_to_validate() -> None:
    args = build_spark_args({"executor_memory": "lots"}, {})
    assert args.executor_memory == "lots"
    with pytest.raises(InvalidValueError, match="executor_memory 'lots' is not a memory size"):
        args.validate()


# --- docs ------------------------------------------------------------------------------


def test_docs_say_which_fields_are_options() -> None:
    section = DOCS.read_text(encoding="utf-8").split("## On the command line", 1)[1]
    section = section.split("\n## ", 1)[0]
    shown = dict(re.findall(r"^\| `(--[a-z-]+)` \| `(\w+)` \|", section, re.M))
    assert shown == {_flag(name): name for name in SPARK_OPTION_FIELDS}
    hidden_rows = [
        line
        for line in section.splitlines()
        if line.startswith("| `") and "--" not in line.split("|")[1]
    ]
    hidden = {name for row in hidden_rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert hidden == set(HIDDEN_SPARK_FIELDS)
    for name in OWN_OPTION_FIELDS:
        assert f"`{name}`" in section, name
