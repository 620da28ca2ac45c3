"""Waiting on a condition (a file, a state), never on a sleep of a guessed length."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 300) -> Any:
    """Poll ``condition`` until it is truthy and return its value; fail naming ``what``
    once ``seconds`` have passed (a bound for a broken run, not a timing)."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.05)


def release_and_reap(process: subprocess.Popen[bytes], markers: Path) -> None:
    """Let a provider blocked on ``markers/release`` go on, then reap ``process`` (killed
    if it still runs): the ``finally`` of a test that stops a blocked job."""
    (markers / "release").touch()
    if process.poll() is None:
        process.kill()
        process.wait()
