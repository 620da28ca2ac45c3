"""``skil-sdk profiles``: the cluster profiles of ``SKIL_HOME/config.toml``."""

from __future__ import annotations

import click

from skil_sdk.cli.output import emit, json_option, table


@click.group()
def profiles() -> None:
    """List and show the cluster profiles (SKIL_HOME/config.toml)."""


@profiles.command("list")
@json_option
def list_profiles(as_json: bool) -> None:
    """List the profiles; the default one is marked with *."""
    from skil_sdk.profiles import config_path, load_profiles

    found, default = load_profiles()

    def human() -> None:
        if not found:
            click.echo(f"No profiles; add [profiles.NAME] tables to {config_path()}.")
            return
        rows = [
            [("* " if p.default else "  ") + p.name, p.spark_args.get("master", ""), p.spark_home]
            for p in found
        ]
        table(["NAME", "MASTER", "SPARK_HOME"], rows)

    emit(
        as_json,
        {"file": str(config_path()), "default": default, "profiles": [p.to_dict() for p in found]},
        human,
    )


@profiles.command("show")
@click.argument("name")
@json_option
def show_profile(name: str, as_json: bool) -> None:
    """Show one profile's settings."""
    from skil_sdk.profiles import get_profile

    profile = get_profile(name)
    assert profile is not None
    data = profile.to_dict()

    def human() -> None:
        click.echo(f"{profile.name}{' (default)' if profile.default else ''}  [{profile.path}]")
        for key in ("spark_home", "advertise_host", "pex_root", "engine"):
            if data[key]:
                click.echo(f"  {key} = {data[key]}")
        for key, value in sorted(profile.spark_args.items()):
            click.echo(f"  {key} = {value}")

    emit(as_json, data, human)
