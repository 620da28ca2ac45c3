"""``skil-sdk providers``: the registered keyed data-set providers."""

from __future__ import annotations

import click

from skil_sdk.cli.output import emit, json_option, table
from skil_sdk.plugins import list_providers


@click.group()
def providers() -> None:
    """List the keyed data-set providers that installed plugins register."""


@providers.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List providers: name, package and version, class, and options."""
    infos = list_providers()

    def human() -> None:
        table(
            ["NAME", "PACKAGE", "VERSION", "CLASS", "OPTIONS"],
            [
                (
                    i.name,
                    i.package,
                    i.version,
                    i.class_path,
                    ", ".join(
                        o.name + ("" if o.default is None else f"={o.default}") for o in i.options
                    ),
                )
                for i in infos
            ],
        )

    emit(as_json, [i.to_dict() for i in infos], human)
