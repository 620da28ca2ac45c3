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
    from skil_sdk.results import job_metadata, load_results

    data = load_results(path)
    meta = job_metadata(path)
    head = data.slice(0, limit).to_pylist()
    payload = {
        "path": path,
        "rows": data.num_rows,
        "columns": data.column_names,
        "job": meta,
        "head": head,
    }

    def human() -> None:
        job, model = meta.get("job_id"), meta.get("model_id")
        click.echo(f"{path}: {data.num_rows:,} rows, job {job}, model {model}")
        table(data.column_names, [[_short(row[c]) for c in data.column_names] for row in head])

    emit(as_json, payload, human)


def _short(value: object) -> str:
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
