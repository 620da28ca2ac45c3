"""``skil-sdk build``, ``publish``, ``plugins`` and ``cache``: the bundle and the plugin store.

Imports stay light: pex and pip run in subprocesses and only when something must be
built, so a cache hit costs little more than hashing.
"""

from __future__ import annotations

from pathlib import Path

import click

from skil_sdk.cli.output import emit, info, json_option, table
from skil_sdk.errors import InvalidValueError


def _size(num: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num < 1024 or unit == "GB":
            return f"{num:.1f} {unit}" if unit != "B" else f"{int(num)} B"
        num /= 1024
    return f"{num:.1f} GB"


@click.command()
@click.argument("projects", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of wheels to use before the index (repeatable).",
)
@click.option("--no-index", is_flag=True, help="Use only the wheelhouse and --find-links.")
@click.option(
    "--platform", default=None, help="Target platform, e.g. manylinux2014_x86_64-cp-311-cp311."
)
@click.option(
    "--complete-platform",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Target described by `pex3 interpreter inspect --markers --tags` output.",
)
@click.option(
    "--gpu",
    is_flag=True,
    help="Carry onnxruntime-gpu instead of onnxruntime (for --execution-provider cuda).",
)
@json_option
def build(
    projects: tuple[Path, ...],
    find_links: tuple[Path, ...],
    no_index: bool,
    platform: str | None,
    complete_platform: Path | None,
    gpu: bool,
    as_json: bool,
) -> None:
    """Build the bundle of the published plugins plus PROJECTS (cached by content hash).

    With no PROJECTS inside a provider project, that project is built in.
    """
    from skil_sdk.builder.api import build as build_bundle

    result = build_bundle(
        list(projects) if projects else None,
        find_links=find_links,
        no_index=no_index,
        platform=platform,
        complete_platform=complete_platform,
        progress=info,
        gpu=gpu,
    )

    def human() -> None:
        click.echo(f"Bundle:  {result.bundle}")
        click.echo(f"Hash:    {result.hash}")
        click.echo(f"Size:    {_size(result.size)}")
        click.echo(f"Runtime: {'onnxruntime-gpu' if result.gpu else 'onnxruntime'}")
        how = "cache hit" if result.cached else "built"
        click.echo(f"Cached:  {'yes' if result.cached else 'no'} ({how} in {result.seconds:.2f} s)")
        if result.plugins:
            click.echo("Plugins:")
            table(
                ["NAME", "VERSION", "SHA256", "SOURCE"],
                [(p.name, p.version, p.sha256, p.source) for p in result.plugins],
            )
        else:
            click.echo("Plugins: none published")

    emit(as_json, result.to_dict(), human)


@click.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--server", default=None, help="Publish to this skil-sdk server instead.")
@json_option
def publish(path: Path | None, server: str | None, as_json: bool) -> None:
    """Publish a plugin (PATH: project directory or wheel; default: here) to the plugin store."""
    from skil_sdk.builder.api import publish as publish_plugin

    result = publish_plugin(path or Path.cwd(), server, progress=info)
    p = result.plugin
    where = server or "the plugin store"
    verb = "Published" if result.published else "Already published (same bytes)"
    emit(as_json, result.to_dict(), f"{verb}: {p.name} {p.version} sha256 {p.sha256} to {where}")


def _name_and_version(spec: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME==VERSION`` as (name, version); a plugin's provider name as it is."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        return spec, None  # not a project name: perhaps a provider (entry point) name
    specifiers = list(requirement.specifier)
    exact = len(specifiers) == 1 and specifiers[0].operator == "=="
    if requirement.extras or requirement.marker or requirement.url or (specifiers and not exact):
        raise InvalidValueError(
            f"{spec!r:.80} is not NAME or NAME==VERSION; pass for example skil-squares==0.1.0."
        )
    return requirement.name, specifiers[0].version if exact else None


@click.group()
def plugins() -> None:
    """List, show and remove the plugins in the plugin store."""


@plugins.command("list")
@json_option
def plugins_list(as_json: bool) -> None:
    """List every published plugin version."""
    from skil_sdk.store.plugins import list_plugins

    found = list_plugins()
    emit(
        as_json,
        [p.to_dict() for p in found],
        lambda: table(
            ["NAME", "VERSION", "SHA256", "PROVIDERS", "PUBLISHED"],
            [
                (
                    p.name,
                    p.version,
                    p.sha256[:16],
                    ", ".join(sorted(p.entry_points)),
                    p.published_at,
                )
                for p in found
            ],
        ),
    )


@plugins.command("show")
@click.argument("name")
@json_option
def plugins_show(name: str, as_json: bool) -> None:
    """Show a published plugin (NAME or NAME==VERSION; latest version by default)."""
    from skil_sdk.store.plugins import get_plugin

    plugin = get_plugin(*_name_and_version(name))

    def human() -> None:
        for key, value in plugin.to_dict().items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} = {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(value) or "-"
            click.echo(f"{key + ':':<15}{value}")

    emit(as_json, plugin.to_dict(), human)


@plugins.command("remove")
@click.argument("name")
@json_option
def plugins_remove(name: str, as_json: bool) -> None:
    """Remove a plugin: NAME (every version) or NAME==VERSION."""
    from skil_sdk.store.plugins import remove_plugin

    removed = remove_plugin(*_name_and_version(name))
    emit(
        as_json,
        {"removed": [p.to_dict() for p in removed]},
        "\n".join(f"Removed {p.name} {p.version}" for p in removed),
    )


@click.group()
def cache() -> None:
    """List and prune the build cache (SKIL_HOME/cache)."""


@cache.command("list")
@json_option
def cache_list(as_json: bool) -> None:
    """List cached bundles, most recently used first."""
    import time

    from skil_sdk.builder.cache import list_bundles

    bundles = list_bundles()
    emit(
        as_json,
        [b.to_dict() for b in bundles],
        lambda: table(
            ["HASH", "SIZE", "LAST USED", "PLUGINS", "BUNDLE"],
            [
                (
                    b.hash[:12],
                    _size(b.size),
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(b.last_used)),
                    ", ".join(f"{p['name']}=={p['version']}" for p in b.manifest.get("plugins", []))
                    or "-",
                    b.bundle,
                )
                for b in bundles
            ],
        ),
    )


@cache.command("prune")
@click.option(
    "--keep",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many recently used bundles to keep.",
)
@json_option
def cache_prune(keep: int, as_json: bool) -> None:
    """Remove all but the KEEP most recently used bundles, and wheels nothing kept uses.

    Also removes the wheel copies that bundles' first runs on this machine left in the
    temp dir (pex's ``pex-whl-install.*`` folders older than an hour).
    """
    from skil_sdk.builder.cache import prune

    result = prune(keep)
    emit(
        as_json,
        result.to_dict(),
        f"Removed {len(result.removed_bundles)} bundles, {result.removed_wheels} wheels, "
        f"{result.removed_locks} locks and {result.removed_temp_dirs} leftover temp folders "
        f"({_size(result.freed_bytes)}); kept {len(result.kept)}.",
    )
