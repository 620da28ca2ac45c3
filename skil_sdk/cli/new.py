"""``skil-sdk new``: scaffold projects from skil-sdk's cookiecutter templates."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from skil_sdk.cli.output import emit, json_option


@click.group()
def new() -> None:
    """Scaffold new projects (a provider plugin) from skil-sdk's templates."""


@new.command("provider")
@click.argument("name")
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The directory the project directory NAME is created in.",
)
@click.option("--description", help="A one-line description of the provider.")
@click.option("--author", help="The author named in the project's metadata.")
@click.option(
    "--reads-on-executors",
    is_flag=True,
    help="Make data() return an ExecutorSource the executors read themselves (JSON lines or "
    "CSV, no Spark), so jobs also run on the local engine; by default it returns a DataFrame.",
)
@click.option(
    "--no-input",
    is_flag=True,
    help="Never prompt; use defaults for what is not given (as when stdin is not a terminal).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Render into an existing directory, overwriting the template's files (others are kept).",
)
@json_option
def provider(
    name: str,
    output_dir: Path,
    description: str | None,
    author: str | None,
    reads_on_executors: bool,
    no_input: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Create the provider plugin project NAME in OUTPUT_DIR/NAME.

    NAME is the plugin's distribution name, entry point name and PLUGIN_NAME; its
    Python package is NAME in lowercase with '-' as '_' (acme-rows -> acme_rows).
    """
    from skil_sdk import scaffold

    names = scaffold.provider_names(name)
    target = output_dir.absolute() / names.name
    scaffold.check_target(target, force)
    if not no_input and sys.stdin.isatty():
        if description is None:
            description = click.prompt(
                "Description", default=scaffold.DEFAULT_DESCRIPTION, err=True
            )
        if author is None:
            author = click.prompt("Author", default="", show_default=False, err=True)
    path = scaffold.new_provider(
        names.name,
        output_dir,
        description=description,
        author=author,
        force=force,
        reads_on_executors=reads_on_executors,
    )
    files = scaffold.project_files(path)

    def human() -> None:
        click.echo(f"Created the provider project {names.name} in {path}.")
        click.echo("Next: test it, then publish it:")
        click.echo(f"  cd {path}")
        click.echo("  pip install -e '.[test]' && pytest")
        if reads_on_executors:
            click.echo("Its jobs run on this machine with --engine local (no Spark, no publish);")
            click.echo("publish it to run them on Spark:")
        click.echo("  skil-sdk publish")

    emit(
        as_json,
        {
            "path": str(path),
            "name": names.name,
            "module": names.module,
            "class": f"{names.module}.provider:{names.class_name}",
            "reads_on_executors": reads_on_executors,
            "files": files,
        },
        human,
    )
