"""``skil-sdk session``: a long-lived Spark session that runs jobs warm."""

from __future__ import annotations

import time
from typing import Any

import click

from skil_sdk.cli.output import emit, info, json_option
from skil_sdk.cli.sparkopts import SPARK_OPTIONS_EPILOG, build_spark_args, spark_options


@click.group()
def session() -> None:
    """Start, inspect and stop a long-lived Spark session.

    While a session whose bundle and Spark settings match a job's is running, the job's
    Spark work runs there ("warm": executors, Python workers and onnxruntime sessions
    are already up) instead of in a spark-submit of its own ("cold").
    """


@session.command("start", epilog=SPARK_OPTIONS_EPILOG)
@click.option(
    "--idle-timeout",
    default="30m",
    show_default=True,
    metavar="DURATION",
    help="Stop after this long without a job: seconds, or 90s, 30m, 2h; 0 never stops.",
)
@click.option(
    "--keep-warm",
    default="40s",
    show_default=True,
    metavar="DURATION",
    help="While idle, run a moment's task per core this often, so that Spark keeps the "
    "Python workers (and their loaded models) that it stops after a minute unused; 0: never.",
)
@click.option(
    "--conf", "conf", multiple=True, metavar="KEY=VALUE", help="A Spark conf (repeatable)."
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    type=click.Path(file_okay=False),
    help="An unpublished provider project to add to the session's bundle (repeatable); "
    "jobs run warm when they name the same projects.",
)
@click.option("--spark-home", default=None, help="Spark installation to submit with.")
@click.option(
    "--profile", default=None, help="A profile of SKIL_HOME/config.toml (default: its default)."
)
@spark_options
@json_option
def start_command(**values: Any) -> None:
    """Start a Spark session in the background and return once it accepts jobs.

    Its Spark settings are given as a job's are (options, --conf, --profile); a job runs
    in it when its own settings are the same. Its log is `skil-sdk session logs`.
    """
    from skil_sdk.cli.infer import parse_pairs
    from skil_sdk.session.client import SessionRequest, start_session
    from skil_sdk.session.state import parse_duration

    as_json = values.pop("as_json")
    request = SessionRequest(
        spark_args=build_spark_args(values, parse_pairs(values["conf"], "--conf")),
        spark_home=values["spark_home"],
        profile=values["profile"],
        idle_timeout_s=parse_duration(values["idle_timeout"]),
        keep_warm_s=parse_duration(values["keep_warm"], "--keep-warm"),
        plugins=tuple(values["plugins"]),
    )
    state = start_session(request, on_log=info)
    emit(
        as_json,
        state.to_dict(),
        f"The Spark session is running on {state.master} (bundle {(state.bundle_hash or '')[:12]},"
        f" application {state.app_id}); stop it with `skil-sdk session stop`.",
    )


@session.command("status")
@json_option
def status_command(as_json: bool) -> None:
    """Show the session: state, master, bundle, running jobs, idle timeout."""
    from skil_sdk.session.client import session_status

    data = session_status()

    def human() -> None:
        click.echo(f"state         {data['state']}")
        if data.get("error"):
            click.echo(f"error         {data['error']}")
        if data["state"] == "stopped":
            return
        timeout = data["idle_timeout_s"]
        rows = [
            ("master", data["master"]),
            ("bundle", (data["bundle_hash"] or "")[:12]),
            ("application", data["app_id"]),
            ("spark ui", data["spark_ui"]),
            ("uptime", f"{data['uptime_s']:.0f} s" if data["uptime_s"] is not None else None),
            ("idle timeout", f"{timeout:.0f} s" if timeout else "never"),
            ("keep warm", f"every {data['keep_warm_s']:.0f} s" if data["keep_warm_s"] else "no"),
            ("jobs running", ", ".join(data["jobs"]) or "none"),
            ("jobs run", data["jobs_run"]),
        ]
        for name, value in rows:
            click.echo(f"{name:13} {value}")

    emit(as_json, data, human)


@session.command("logs")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@json_option
def logs_command(tail: int | None, as_json: bool) -> None:
    """Print the session's log (spark-submit's and the session driver's output)."""
    from skil_sdk.session.state import log_path

    path = log_path()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    emit(as_json, {"log_path": str(path), "lines": lines}, "\n".join(lines) if lines else None)


@session.command("stop")
@click.option("--force", is_flag=True, help="Cancel running jobs instead of waiting for them.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Give up after this many seconds (default: wait for the running jobs).",
)
@json_option
def stop_command(force: bool, timeout: float | None, as_json: bool) -> None:
    """Stop the session; return once it is down (running jobs finish first, unless --force)."""
    from skil_sdk.session.client import stop_session
    from skil_sdk.session.state import read_state

    before = read_state()
    if before.is_up and before.jobs and not force:
        info(f"Waiting for the running jobs to finish: {', '.join(before.jobs)} ...")
    started = time.time()
    state = stop_session(force=force, timeout=timeout)
    data = {**state.to_dict(), "was_running": before.is_up}
    message = (
        f"The Spark session stopped in {time.time() - started:.1f} s."
        if before.is_up
        else "No Spark session was running."
    )
    emit(as_json, data, message)
