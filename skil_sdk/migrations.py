"""Schema versions of ``SKIL_HOME`` and the migrations between them.

``SKIL_HOME/home.json`` holds ``{"schema_version": N}``. A home without it but with
stores in it was written before the version was recorded: that is version 0. When
skil-sdk opens a home of an older version it runs every migration from that version to
:data:`~skil_sdk.home.HOME_SCHEMA_VERSION`, in order, under a file lock, stamping the
new version after each step (so a crash between steps resumes at the step that was
cut). A home of a newer version is refused with what to do.

A migration is a function ``(home: Path) -> None`` registered for the version it
upgrades from::

    @migration(1)
    def _v1_to_v2(home: Path) -> None:
        ...  # rewrite what changed; idempotent, since a crash may run it twice
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from skil_sdk.errors import HomeError
from skil_sdk.storage import atomic_write_text

Migration = Callable[[Path], None]

#: Migrations by the version they upgrade from (``n`` → ``n + 1``).
MIGRATIONS: dict[int, Migration] = {}

MARKER = "home.json"
_STORE_ENTRIES = ("models", "plugins", "cache", "jobs.sqlite", "logs", "server.token", "jobs")


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register the decorated function as the migration from ``from_version``."""

    def register(fn: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise ValueError(f"Two migrations from schema {from_version}.")
        MIGRATIONS[from_version] = fn
        return fn

    return register


@migration(0)
def _stamp_unversioned_home(home: Path) -> None:
    """Version 0 (stores but no ``home.json``) has the layout of version 1: nothing moves."""


def read_version(home: Path) -> int | None:
    """The schema version of ``home``: its ``home.json``, 0 for stores without one, None when
    the home is new (empty)."""
    marker = home / MARKER
    if marker.exists():
        try:
            return int(json.loads(marker.read_text())["schema_version"])
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise HomeError(
                f"{marker} is unreadable; restore it or point SKIL_HOME at another directory."
            ) from exc
    if any((home / entry).exists() for entry in _STORE_ENTRIES):
        return 0
    return None


def write_version(home: Path, version: int) -> None:
    """Stamp ``home`` with ``version`` (atomically)."""
    atomic_write_text(home / MARKER, json.dumps({"schema_version": version}) + "\n")


def migrate_home(home: Path, current: int) -> list[int]:
    """Bring ``home`` to schema ``current``; return the versions migrated from (in order).

    Raises :class:`HomeError` for a home of a newer schema, or one no migration reaches.
    """
    found = read_version(home)
    if found == current:
        return []
    if found is not None and found > current:
        raise HomeError(
            f"SKIL_HOME {home} was written by a newer skil-sdk (schema {found}, this one "
            f"reads {current}); upgrade skil-sdk or use another SKIL_HOME."
        )
    with FileLock(str(home / f"{MARKER}.lock")):
        found = read_version(home)
        if found is None:
            write_version(home, current)
            return []
        done: list[int] = []
        while found < current:
            step = MIGRATIONS.get(found)
            if step is None:
                raise HomeError(
                    f"SKIL_HOME {home} has schema {found}, which this skil-sdk cannot migrate "
                    f"to {current}; migrate it with the skil-sdk release that wrote it, or use "
                    "another SKIL_HOME."
                )
            step(home)
            write_version(home, found + 1)
            done.append(found)
            found += 1
        return done


__all__ = ["MIGRATIONS", "migrate_home", "migration", "read_version", "write_version"]
