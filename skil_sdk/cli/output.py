"""Output helpers shared by every command: ``--json``, stderr progress, tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    """Add ``--json``: print exactly one JSON document on stdout instead of text."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(fn)


def emit(as_json: bool, data: Any, human: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` as JSON, or run/print the human-readable form."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
        return
    if callable(human):
        human()
    elif human is not None:
        click.echo(human)


def info(message: str) -> None:
    """A progress or log line: always stderr, so stdout stays machine-readable."""
    click.echo(message, err=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain, aligned text table on stdout."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        click.echo(click.style(line, bold=True) if index == 0 else line)


def is_tty_stderr() -> bool:
    """Whether stderr is a terminal (progress bars redraw in place only then)."""
    return sys.stderr.isatty()
