"""``skil-sdk infer``: run batch inference on Spark."""

from __future__ import annotations

import dataclasses
import time
import typing
from collections.abc import Callable
from typing import Any

import click

from skil_sdk.cli.output import emit, info, is_tty_stderr, json_option
from skil_sdk.errors import InvalidValueError

#: SparkArgs fields that `infer` takes under its own option names.
_OWN_OPTIONS = {
    "output_path": "--output",
    "batch_size": "--batch-size",
    "data_set_provider": "--provider",
    "model_path": "--model",
    "conf": "--conf",
    "do_inference": "(always true)",
    "mode": "(always infer)",
}


_PAIR_EXAMPLES = {
    "--provider-option": "path=data/",
    "--conf": "spark.executor.cores=2",
    "--postprocess-option": "k=3",
}


def parse_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``key=value`` strings as a dict; a value without ``=`` is an error naming ``what``."""
    result: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            example = _PAIR_EXAMPLES.get(what, "key=value")
            raise InvalidValueError(
                f"{what} {value!r} is not key=value; write e.g. {what} {example}."
            )
        result[key.strip()] = rest
    return result


def _spark_arg_fields() -> list[tuple[str, Any]]:
    from skil_sdk.spark.args import SparkArgs

    hints = typing.get_type_hints(SparkArgs)
    return [
        (f.name, hints[f.name]) for f in dataclasses.fields(SparkArgs) if f.name not in _OWN_OPTIONS
    ]


def spark_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add one ``--kebab-case`` option per SparkArgs field (SKIL's SparkArgs, all of them)."""
    from skil_sdk.spark.args import SparkArgs

    defaults = SparkArgs()
    for name, hint in reversed(_spark_arg_fields()):
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        origin = typing.get_origin(hint)
        if hint is bool:
            fn = click.option(flag, name, is_flag=True, default=None, help=f"SparkArgs.{name}.")(fn)
        elif origin is list:
            fn = click.option(
                flag, name, multiple=True, help=f"SparkArgs.{name} (repeatable or comma-separated)."
            )(fn)
        else:
            kind = int if int in typing.get_args(hint) or hint is int else str
            fn = click.option(
                flag, name, type=kind, default=None, help=f"SparkArgs.{name} (default: {default})."
            )(fn)
    return fn


def build_spark_args(values: dict[str, Any], conf: dict[str, str]) -> Any:
    """SparkArgs from the parsed options (unset options keep their defaults)."""
    from skil_sdk.spark.args import SparkArgs

    given: dict[str, Any] = {}
    for name, _hint in _spark_arg_fields():
        value = values.get(name)
        if value is None or value == ():
            continue
        given[name] = list(value) if isinstance(value, tuple) else value
    given["conf"] = conf
    given["do_inference"] = True
    return SparkArgs.from_dict(given)


def job_target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--model``, ``--provider`` and ``--provider-option``: what a job runs over what."""
    for option in reversed(
        [
            click.option(
                "--model", "model_id", required=True, help="Model id (see `skil-sdk models list`)."
            ),
            click.option(
                "--provider", required=True, help="Provider name, or package.module:Class."
            ),
            click.option(
                "--provider-option",
                "provider_option",
                multiple=True,
                metavar="KEY=VALUE",
                help="An option for the provider (repeatable).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def job_submit_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How a job is run: batch size, confs, server address, plugins, device, Spark, profile."""
    for option in reversed(
        [
            click.option(
                "--batch-size",
                type=int,
                default=None,
                help="Rows per onnxruntime call (default 1024).",
            ),
            click.option(
                "--conf",
                "conf",
                multiple=True,
                metavar="KEY=VALUE",
                help="A Spark conf (repeatable).",
            ),
            click.option(
                "--advertise-host", default=None, help="Address executors use to reach the server."
            ),
            click.option(
                "--plugin",
                "plugins",
                multiple=True,
                type=click.Path(file_okay=False),
                help="An unpublished provider project to add to this job's bundle (repeatable).",
            ),
            click.option(
                "--execution-provider",
                type=click.Choice(["cpu", "cuda"]),
                default="cpu",
                help="onnxruntime execution provider on the executors; cuda runs on a bundle "
                "that carries onnxruntime-gpu (built on first use).",
            ),
            click.option("--spark-home", default=None, help="Spark installation to submit with."),
            click.option(
                "--profile",
                default=None,
                help="A profile of SKIL_HOME/config.toml (default: its default).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


class _Progress:
    """A one-line progress display on stderr: tasks, rows, rows/s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = is_tty_stderr()
        self.last = ""
        self.latest = ""
        self.last_print = 0.0

    def __call__(self, record: Any) -> None:
        if not self.enabled:
            return
        tasks = f"{record.tasks_done}/{record.tasks_total or '?'}"
        rate = record.rows_per_second
        total = f"/{record.rows_total:,}" if record.rows_total else ""
        line = f"[{record.state}] tasks {tasks}  rows {record.rows_done:,}{total}" + (
            f"  {rate:,.0f} rows/s" if rate else ""
        )
        if record.tasks_total:
            width = 24
            filled = int(width * record.tasks_done / record.tasks_total)
            line = f"[{'#' * filled}{'.' * (width - filled)}] " + line
        now = time.monotonic()
        self.latest = line
        if self.tty:
            click.echo("\r" + line.ljust(len(self.last)), err=True, nl=False)
            self.last = line
        elif line != self.last and now - self.last_print > 5:
            info(line)
            self.last, self.last_print = line, now

    def close(self) -> None:
        """End the display; off a terminal, the final state is always printed."""
        if not self.enabled:
            return
        if self.tty and self.last:
            click.echo("", err=True)
        elif not self.tty and self.latest and self.latest != self.last:
            info(self.latest)


@click.command()
@job_target_options
@click.option("--output", required=True, help="Output path (local, hdfs://, s3a://...).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output path.")
@click.option("--detach", is_flag=True, help="Start the job and return its id at once.")
@click.option(
    "--keep-column", "keep_columns", multiple=True, help="Copy a provider column into the output."
)
@click.option(
    "--postprocess", default=None, help="A post-processor: argmax, softmax, topk, or a plugin's."
)
@click.option(
    "--postprocess-option",
    "postprocess_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option for the post-processor (e.g. k=3 for topk).",
)
@job_submit_options
@spark_options
@json_option
def infer(**values: Any) -> None:
    """Run a model over a provider's keyed data on Spark and write Parquet.

    Each executor fetches the model once, runs onnxruntime locally in batches, and
    writes `id` beside the model's outputs to --output.
    """
    from skil_sdk.profiles import apply_profile
    from skil_sdk.spark.submit import InferenceRequest, submit

    as_json = values.pop("as_json")
    request = InferenceRequest(
        model_id=values["model_id"],
        provider=values["provider"],
        output=values["output"],
        spark_args=build_spark_args(values, parse_pairs(values["conf"], "--conf")),
        batch_size=values["batch_size"],
        provider_options=parse_pairs(values["provider_option"], "--provider-option"),
        overwrite=values["overwrite"],
        keep_columns=list(values["keep_columns"]),
        postprocess=values["postprocess"],
        postprocess_options=parse_pairs(values["postprocess_option"], "--postprocess-option"),
        plugins=list(values["plugins"]),
        advertise_host=values["advertise_host"],
        execution_provider=values["execution_provider"],
        spark_home=values["spark_home"],
    )
    request = apply_profile(request, values["profile"])
    progress = _Progress(enabled=not values["detach"])
    try:
        result = submit(request, detach=values["detach"], on_progress=progress, on_log=info)
    finally:
        progress.close()

    def human() -> None:
        if values["detach"]:
            click.echo(
                f"Job {result.job_id} started; follow it with `skil-sdk jobs wait {result.job_id}`."
            )
            return
        click.echo(
            f"Job {result.job_id} {result.state}: {result.rows:,} rows written to {result.output} "
            f"in {result.seconds:.1f} s (bundle {result.bundle_hash and result.bundle_hash[:12]})."
        )

    emit(as_json, result.to_dict(), human)
