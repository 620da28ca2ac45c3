"""``skil-sdk infer``: run batch inference on Spark."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from skil_sdk.cli.output import emit, info, is_tty_stderr, json_option
from skil_sdk.cli.sparkopts import SPARK_OPTIONS_EPILOG, build_spark_args, spark_options
from skil_sdk.errors import InvalidValueError

__all__ = [
    "build_spark_args",
    "job_submit_options",
    "job_target_options",
    "parse_input_shapes",
    "spark_options",
]

_PAIR_EXAMPLES = {
    "--provider-option": "path=data/",
    "--conf": "spark.executor.cores=2",
    "--postprocess-option": "k=3",
    "--input-shape": "x=3,224,224",
}


def parse_input_shapes(values: tuple[str, ...]) -> dict[str, list[int]]:
    """``NAME=3,224,224`` strings as ``{name: [3, 224, 224]}``."""
    shapes: dict[str, list[int]] = {}
    for name, dims in parse_pairs(values, "--input-shape").items():
        try:
            shapes[name] = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise InvalidValueError(
                f"--input-shape {name}={dims} is not a list of whole numbers; write e.g. "
                f"--input-shape {name}=3,224,224."
            ) from None
    return shapes


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
                "--rows-per-task",
                type=click.IntRange(min=1),
                default=None,
                help="Rows of a task for providers that read on the executors: consecutive "
                "splits (files, row groups) are packed into tasks of at most this many rows "
                "(default: 3 equal tasks per core, at most 1,048,576 rows each).",
            ),
            click.option(
                "--engine",
                type=click.Choice(["auto", "local", "spark"]),
                default=None,
                help="Where the job runs: auto (the default, unless the profile names one: "
                "local when the job can run there, else spark), local (worker processes on "
                "this machine, no JVM: local masters and providers that read on the "
                "executors, such as parquet, numpy, mnist, images) or spark (spark-submit).",
            ),
            click.option(
                "--input-shape",
                "input_shape",
                multiple=True,
                metavar="NAME=D1,D2,...",
                help="The per-row shape of a model input whose dims are dynamic, e.g. "
                "x=3,224,224: flat rows are reshaped to it (repeatable).",
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


def overwrite_option(help_text: str) -> Callable[..., Any]:
    """``--overwrite`` (replace an earlier skil-sdk output) or ``--overwrite=force``."""
    return click.option(
        "--overwrite",
        is_flag=False,
        flag_value="yes",
        default="no",
        type=click.Choice(["no", "yes", "force"]),
        metavar="[=force]",
        help=help_text,
    )


def dry_run_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--dry-run``: prepare and check the job, print its spec, run nothing."""
    return click.option(
        "--dry-run",
        is_flag=True,
        help="Check the job and print its prepared spec (profile applied, defaults filled); "
        "start nothing.",
    )(fn)


def run_prepared(request: Any, values: dict[str, Any], as_json: bool, detach: bool = False) -> Any:
    """Prepare ``request``; with ``--dry-run`` print the spec and return None, else run it
    with progress on stderr and return its result."""
    from skil_sdk.job.prepare import local_engine_warning, prepare
    from skil_sdk.spark.submit import submit

    job = prepare(request)
    warning = local_engine_warning(request, job)
    if warning is not None:
        info(f"Warning: {warning}")
    if values["dry_run"]:
        from skil_sdk.job.spec import redact_options

        shown = {**job.to_dict(), "provider_options": redact_options(job.provider_options)}
        emit(as_json, shown, lambda: _print_spec(shown))
        return None
    progress = _Progress(enabled=not detach)
    try:
        return submit(job, detach=detach, on_progress=progress, on_log=info)
    finally:
        progress.close()


def _print_spec(spec: dict[str, Any]) -> None:
    import json

    click.echo(json.dumps(spec, indent=2))
    click.echo("The job is valid; run the same command without --dry-run to start it.")


@click.command(epilog=SPARK_OPTIONS_EPILOG)
@job_target_options
@click.option("--output", required=True, help="Output path (local, hdfs://, s3a://...).")
@overwrite_option(
    "Replace an existing output directory written by skil-sdk (or an empty one); "
    "--overwrite=force replaces whatever is there."
)
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
@click.option(
    "--max-bad-rows",
    default=None,
    metavar="N|P%",
    help="Rows that cannot be fed to the model (wrong length, null, a value that does not "
    "cast, a row onnxruntime refuses) to quarantine in OUTPUT/_errors/ instead of failing: "
    "a count (25) or a share of the input (0.1%). Default 0: the first bad row fails the "
    "job, named by its id.",
)
@dry_run_option
@job_submit_options
@spark_options
@json_option
def infer(**values: Any) -> None:
    """Run a model over a provider's keyed data on Spark and write Parquet.

    Each executor fetches the model once, runs onnxruntime locally in batches, and
    writes `id` beside the model's outputs to --output. The job is checked before
    Spark starts; --dry-run prints what would run.
    """
    from skil_sdk.job.request import InferenceRequest

    as_json = values.pop("as_json")
    request = InferenceRequest(
        model_id=values["model_id"],
        provider=values["provider"],
        output=values["output"],
        spark_args=build_spark_args(values, parse_pairs(values["conf"], "--conf")),
        batch_size=values["batch_size"],
        rows_per_task=values["rows_per_task"],
        max_bad_rows=values["max_bad_rows"],
        provider_options=parse_pairs(values["provider_option"], "--provider-option"),
        overwrite=values["overwrite"],
        keep_columns=list(values["keep_columns"]),
        postprocess=values["postprocess"],
        postprocess_options=parse_pairs(values["postprocess_option"], "--postprocess-option"),
        plugins=list(values["plugins"]),
        advertise_host=values["advertise_host"],
        execution_provider=values["execution_provider"],
        spark_home=values["spark_home"],
        profile=values["profile"],
        input_shapes=parse_input_shapes(values["input_shape"]),
        engine=values["engine"],
    )
    result = run_prepared(request, values, as_json, detach=values["detach"])
    if result is None:
        return
    emit(as_json, result.to_dict(), lambda: print_job_result(result, values["detach"]))


def print_job_result(result: Any, detach: bool) -> None:
    """The lines ``infer`` and ``jobs resume`` print about a job's end."""
    if detach:
        click.echo(
            f"Job {result.job_id} started; follow it with `skil-sdk jobs wait {result.job_id}`."
        )
        return
    where = (
        "local engine"
        if result.engine == "local"
        else f"bundle {result.bundle_hash and result.bundle_hash[:12]}"
    )
    click.echo(
        f"Job {result.job_id} {result.state}: {result.rows:,} rows written to {result.output} "
        f"in {result.seconds:.1f} s ({where})."
    )
    if result.rows_quarantined:
        click.echo(
            f"{result.rows_quarantined:,} bad rows were quarantined; see them with "
            f"`skil-sdk results errors {result.output}`."
        )
    if result.tasks_kept:
        click.echo(f"{result.tasks_kept} of {result.tasks} tasks were kept from earlier runs.")
    click.echo(after_job_hint(result.job_id))


def after_job_hint(job_id: str) -> str:
    """Where a finished job's details are (its per-job web page closed with the job)."""
    return f"Details: `skil-sdk jobs show {job_id}` (or the jobs page of `skil-sdk serve`)."
