"""An empty SKIL_HOME for the tests that run jobs (no Spark: the provider needs none)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def skil_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SKIL_HOME (models, jobs, logs), so a test's jobs leave ~/.skil alone, with
    only this project's plugin loaded."""
    home = tmp_path / "skil-home"
    monkeypatch.setenv("SKIL_HOME", str(home))
    monkeypatch.setenv("SKIL_LOAD_PLUGINS", "{{ cookiecutter.name }}")
    return home
