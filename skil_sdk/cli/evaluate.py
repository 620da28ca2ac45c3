"""``skil-sdk evaluate``: run a model over labelled data on Spark and report metrics."""

from __future__ import annotations

from typing import Any

import click

from skil_sdk.cli.infer import (
    after_job_hint,
    build_spark_args,
    dry_run_option,
    job_submit_options,
    job_target_options,
    overwrite_option,
    parse_input_shapes,
    parse_pairs,
    run_prepared,
    spark_options,
)
from skil_sdk.cli.output import emit, json_option
from skil_sdk.cli.sparkopts import SPARK_OPTIONS_EPILOG
from skil_sdk.evaluation.metrics import EVAL_TYPES


@click.command(epilog=SPARK_OPTIONS_EPILOG)
@job_target_options
@click.option(
    "--eval-type",
    "eval_type",
    required=True,
    type=click.Choice(EVAL_TYPES),
    help="What to compute.",
)
@click.option(
    "--label-column",
    default="label",
    show_default=True,
    help="The column holding the labels (a DataFrame's, or the parquet provider's files').",
)
@click.option(
    "--threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="Decision threshold for evaluationbinary (a score at or above it is positive).",
)
@click.option(
    "--model-output",
    default=None,
    help="The model output to evaluate (default: the first probability or float output).",
)
@click.option("--output", default=None, help="Also write the metrics as JSON to this path.")
@overwrite_option(
    "Replace an existing --output file written by skil-sdk; --overwrite=force replaces any file."
)
@dry_run_option
@job_submit_options
@spark_options
@json_option
def evaluate(**values: Any) -> None:
    """Evaluate a model on a provider's labelled data on Spark.

    Metrics are computed on the executors and merged on the driver; see
    docs/evaluation.md for each --eval-type and its JSON keys.
    """
    from skil_sdk.job.request import InferenceRequest

    as_json = values.pop("as_json")
    spark_args = build_spark_args(values, parse_pairs(values["conf"], "--conf"))
    spark_args.eval_type = values["eval_type"]
    evaluation: dict[str, Any] = {
        "eval_type": values["eval_type"],
        "label_column": values["label_column"],
        "threshold": values["threshold"],
    }
    if values["model_output"]:
        evaluation["output"] = values["model_output"]
    request = InferenceRequest(
        model_id=values["model_id"],
        provider=values["provider"],
        output=values["output"] or "",
        spark_args=spark_args,
        batch_size=values["batch_size"],
        rows_per_task=values["rows_per_task"],
        provider_options=parse_pairs(values["provider_option"], "--provider-option"),
        overwrite=values["overwrite"],
        plugins=list(values["plugins"]),
        advertise_host=values["advertise_host"],
        execution_provider=values["execution_provider"],
        spark_home=values["spark_home"],
        profile=values["profile"],
        input_shapes=parse_input_shapes(values["input_shape"]),
        kind="evaluate",
        evaluation=evaluation,
        engine=values["engine"],
    )
    result = run_prepared(request, values, as_json)
    if result is None:
        return

    def human() -> None:
        metrics = result.metrics or {}
        click.echo(
            f"Job {result.job_id} {result.state}: {values['eval_type']} over "
            f"{result.rows:,} rows in {result.seconds:.1f} s."
        )
        for line in summary_lines(metrics):
            click.echo(f"  {line}")
        if values["output"]:
            click.echo(f"Metrics written to {values['output']}.")
        click.echo(after_job_hint(result.job_id))

    emit(as_json, result.to_dict(), human)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "n/a" if value is None else str(value)


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The headline metrics, one ``name: value`` line each."""
    lines = []
    for key in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auc",
        "macro_auc",
        "mse",
        "mae",
        "rmse",
        "r2",
    ):
        if key not in metrics:
            continue
        value = metrics[key]
        if isinstance(value, dict):
            value = {k: value[k] for k in ("macro", "weighted") if k in value}
            lines.append(f"{key}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
        else:
            lines.append(f"{key}: {_fmt(value)}")
    return lines
