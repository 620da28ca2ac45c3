"""``skil-sdk doctor``: check the environment jobs need."""

from __future__ import annotations

import sys

import click

from skil_sdk.cli.output import emit, info, json_option

_MARKS = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red")}


@click.command()
@click.option("--profile", default=None, help="Check with this profile of SKIL_HOME/config.toml.")
@json_option
def doctor(profile: str | None, as_json: bool) -> None:
    """Check Java, Spark, the bundle's Python, the server's reachability and SKIL_HOME.

    Each check prints ok, warn or fail and, when not ok, the fix. Exits 1 when a check
    fails.
    """
    from skil_sdk.doctor import FAIL, run_checks

    info("Running checks (spark-submit --version takes a few seconds)...")
    name, checks = run_checks(profile)
    failed = [c for c in checks if c.status == FAIL]

    def human() -> None:
        for check in checks:
            mark, colour = _MARKS[check.status]
            click.echo(f"[{click.style(mark.ljust(4), fg=colour)}] {check.name}: {check.message}")
            if check.fix and check.status != "ok":
                click.echo(f"       fix: {check.fix}")
        click.echo(f"{len(failed)} check(s) failed." if failed else "Every check passed.")

    emit(
        as_json,
        {"ok": not failed, "profile": name, "checks": [c.to_dict() for c in checks]},
        human,
    )
    if failed:
        sys.exit(1)
