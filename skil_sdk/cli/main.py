"""The root ``skil-sdk`` group, lazy sub-command loading and error handling."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from skil_sdk import __version__
from skil_sdk.errors import SkilError

#: command name -> "module:attribute" (imported on first use).
COMMANDS: dict[str, str] = {
    "new": "skil_sdk.cli.new:new",
    "providers": "skil_sdk.cli.providers:providers",
    "build": "skil_sdk.cli.build:build",
    "publish": "skil_sdk.cli.build:publish",
    "plugins": "skil_sdk.cli.build:plugins",
    "cache": "skil_sdk.cli.build:cache",
    "models": "skil_sdk.cli.models:models",
    "experiments": "skil_sdk.cli.models:experiments",
    "serve": "skil_sdk.cli.serve:serve",
    "infer": "skil_sdk.cli.infer:infer",
    "jobs": "skil_sdk.cli.jobs:jobs",
    "results": "skil_sdk.cli.results:results",
    "evaluate": "skil_sdk.cli.evaluate:evaluate",
    "doctor": "skil_sdk.cli.doctor:doctor",
    "profiles": "skil_sdk.cli.profiles:profiles",
    "session": "skil_sdk.cli.session:session",
}

_HELP = {
    "new": "Scaffold a new provider project.",
    "providers": "List the keyed data-set providers.",
    "build": "Build the content-hashed PEX bundle (cached).",
    "publish": "Publish a plugin wheel to the plugin store.",
    "plugins": "List, show and remove published plugins.",
    "cache": "List and prune the build cache.",
    "models": "Add, list, show and remove models.",
    "experiments": "List experiments.",
    "serve": "Run the built-in HTTP server.",
    "infer": "Run batch inference on Spark.",
    "jobs": "List, follow and kill batch-inference jobs.",
    "results": "Show the results of a job.",
    "evaluate": "Evaluate a model on labelled data on Spark.",
    "doctor": "Check the environment jobs need.",
    "profiles": "List and show cluster profiles.",
    "session": "Start, inspect and stop a long-lived Spark session.",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["as_json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkilError as exc:
            report_error(exc, bool(ctx.meta.get("as_json")))
            sys.exit(1)


def report_error(exc: SkilError, as_json: bool) -> None:
    """Print a user error: one sentence on stderr, and the JSON error on stdout with --json."""
    if as_json:
        click.echo(json.dumps({"error": exc.to_dict()}))
    click.secho(f"Error: {exc.message}", err=True, fg="red")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skil-sdk")
def main() -> None:
    """skil-sdk: batch inference of ONNX models on Spark.

    Write a keyed data-set provider plugin (`skil-sdk new provider`), publish it,
    add a model, and run it over your data with `skil-sdk infer`.
    """
