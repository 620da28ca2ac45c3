"""``skil-sdk results``: look at a job's output."""

from __future__ import annotations

import json

import click

from skil_sdk.cli.output import emit, json_option, table


@click.group()
def results() -> None:
    """Show the results of a batch-inference job."""


@results.command("show")
@click.argument("path")
@click.option("--limit", type=int, default=10, show_default=True, help="Rows to show.")
@json_option
def show_command(path: str, limit: int, as_json: bool) -> None:
    """Show the job record and the first rows of an output directory."""
    from skil_sdk.results import job_metadata, results_dataset

    dataset = results_dataset(path)
    meta = job_metadata(path)
    rows = dataset.count_rows()
    head = dataset.head(limit).to_pylist() if limit > 0 else []
    columns = dataset.schema.names
    payload = {"path": path, "rows": rows, "columns": columns, "job": meta, "head": head}

    def human() -> None:
        job, model = meta.get("job_id"), meta.get("model_id")
        click.echo(f"{path}: {rows:,} rows, job {job}, model {model}")
        table(columns, [[_short(row[c]) for c in columns] for row in head])

    emit(as_json, payload, human)


@results.command("errors")
@click.argument("path")
@click.option("--limit", type=int, default=20, show_default=True, help="Rows to show.")
@json_option
def errors_command(path: str, limit: int, as_json: bool) -> None:
    """Show the rows a job quarantined (OUTPUT/_errors/): id, stage, error, source."""
    from skil_sdk.results import load_errors

    errors = load_errors(path)
    head = errors.slice(0, max(0, limit)).to_pylist()
    payload = {"path": path, "rows_quarantined": errors.num_rows, "head": head}
    names = ("id", "stage", "error", "source", "row_offset")
    columns = [c for c in names if c in errors.schema.names]

    def human() -> None:
        click.echo(f"{path}: {errors.num_rows:,} quarantined rows")
        if head:
            table(columns, [[_short(row.get(c)) for c in columns] for row in head])

    emit(as_json, payload, human)


def _short(value: object) -> str:
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
