"""``skil-sdk models`` and ``skil-sdk experiments``: the model registry."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

from skil_sdk.cli.output import emit, info, json_option, table


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@click.group()
def models() -> None:
    """Add, list, show and remove ONNX models (stored under SKIL_HOME/models)."""


@models.command("add")
@click.argument("source")
@click.option("--experiment", "-e", required=True, help="Experiment the model belongs to.")
@click.option(
    "--name",
    "-n",
    default=None,
    help="Display name (default: the file name, or the MLflow model's name).",
)
@json_option
def add_command(source: str, experiment: str, name: str | None, as_json: bool) -> None:
    """Check a model (onnx checker, onnxruntime), record its signature and store it; print its id.

    SOURCE is a .onnx file, an MLflow model directory (one holding an MLmodel file) or an
    MLflow URI: models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or
    runs:/RUN_ID/PATH. URIs are read with MLflow's client and its settings
    (MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI, ...); install it with
    `pip install 'skil-sdk[mlflow]'`. Only the onnx flavour is taken.
    """
    from skil_sdk.store.mlflow_models import add_mlflow_model, is_mlflow_source, is_mlflow_uri
    from skil_sdk.store.models import add_model

    if is_mlflow_source(source):
        info(
            f"Fetching {source} from MLflow ..."
            if is_mlflow_uri(source)
            else f"Reading {source} ..."
        )
        record = add_mlflow_model(source, experiment, name=name)
    else:
        info(f"Checking {source} ...")
        record = add_model(Path(source), experiment, name=name)
    emit(as_json, {"id": record.id, **_public(record.to_dict())}, record.id)


def _public(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "id"}


@models.command("list")
@click.option("--experiment", "-e", default=None, help="Only this experiment's models.")
@json_option
def list_command(experiment: str | None, as_json: bool) -> None:
    """List stored models: id, name, experiment, size, added."""
    from skil_sdk.store.models import list_models

    records = list_models(experiment)

    def human() -> None:
        table(
            ["ID", "NAME", "EXPERIMENT", "SIZE", "ADDED"],
            [(r.id, r.name, r.experiment, _size(r.size), _when(r.created_at)) for r in records],
        )

    emit(as_json, [r.to_dict() for r in records], human)


@models.command("show")
@click.argument("model_id")
@json_option
def show_command(model_id: str, as_json: bool) -> None:
    """Show a model: files with sha256, and its signature."""
    from skil_sdk.store.models import get_model

    record = get_model(model_id)

    def human() -> None:
        click.echo(f"id:          {record.id}")
        click.echo(f"name:        {record.name}")
        click.echo(f"experiment:  {record.experiment}")
        click.echo(f"sha256:      {record.sha256}")
        click.echo(f"path:        {record.path}")
        if record.source:
            click.echo(f"source:      {record.source}")
        if record.input_shapes:
            shapes = ", ".join(
                f"{k}={','.join(map(str, v))}" for k, v in record.input_shapes.items()
            )
            click.echo(f"input shapes: {shapes} (the default --input-shape)")
        click.echo("files:")
        for entry in record.files:
            click.echo(f"  {entry['name']}  {_size(int(entry['size']))}  {entry['sha256']}")
        for side in ("inputs", "outputs"):
            click.echo(f"{side}:")
            for spec in record.signature[side]:
                what = spec["type"] if spec["kind"] == "tensor" else spec["kind"]
                click.echo(f"  {spec['name']}  {what}  {json.dumps(spec['shape'])}")
                if side == "inputs" and feeding.get(spec["name"]) and (
                    spec["name"] not in record.input_shapes
                ):
                    click.echo(f"    {feeding[spec['name']]}")

    from skil_sdk.inference.signature import feeding_hint

    feeding = {s["name"]: feeding_hint(s) for s in record.signature["inputs"]}
    emit(as_json, {**record.to_dict(), "feeding": feeding}, human)


@models.command("remove")
@click.argument("model_id")
@json_option
def remove_command(model_id: str, as_json: bool) -> None:
    """Remove a model from the store."""
    from skil_sdk.store.models import remove_model

    record = remove_model(model_id)
    emit(as_json, {"removed": record.id}, f"Removed {record.id}")


@click.group()
def experiments() -> None:
    """List the experiments that group models."""


@experiments.command("list")
@json_option
def experiments_list(as_json: bool) -> None:
    """List experiments and how many models each has."""
    from skil_sdk.store.models import list_experiments

    rows = list_experiments()

    def human() -> None:
        table(["EXPERIMENT", "MODELS"], [(r["name"], r["models"]) for r in rows])

    emit(as_json, rows, human)
