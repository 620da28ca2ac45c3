"""SKIL_HOME over time: a schema version in home.json, migrations up, a clear refusal down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _model_fixtures as models
import pytest

from skil_sdk import migrations
from skil_sdk.errors import HomeError
from skil_sdk import home as skil_home_module
from skil_sdk.home import HOME_SCHEMA_VERSION
from skil_sdk.store.models import add_model, list_models

SKIL = str(Path(sys.executable).with_name("skil-sdk"))


def _version(home: Path) -> int:
    return int(json.loads((home / "home.json").read_text())["schema_version"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SKIL, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )


def test_a_new_home_is_stamped_with_the_current_version(skil_home: Path) -> None:
    skil_home.rmdir()
    assert skil_home_module.skil_home() == skil_home.resolve()
    assert _version(skil_home) == HOME_SCHEMA_VERSION


def test_an_unversioned_home_with_stores_is_migrated(skil_home: Path, tmp_path: Path) -> None:
    """Version 0: stores written before home.json existed are kept and the home stamped."""
    record = add_model(models.small_mlp_model(tmp_path), "old")
    (skil_home / "home.json").unlink()
    assert migrations.read_version(skil_home) == 0
    listed = json.loads(_cli("models", "list", "--json").stdout)
    assert [m["id"] for m in listed] == [record.id]
    assert _version(skil_home) == HOME_SCHEMA_VERSION


def test_a_newer_home_is_refused_and_left_alone(skil_home: Path, tmp_path: Path) -> None:
    add_model(models.small_mlp_model(tmp_path), "new")
    (skil_home / "home.json").write_text('{"schema_version": 999}\n')
    before = sorted(p.name for p in skil_home.rglob("*"))
    completed = _cli("models", "list", "--json")
    assert completed.returncode == 1
    message = json.loads(completed.stdout)["error"]["message"]
    assert "written by a newer skil-sdk (schema 999" in message
    assert "upgrade skil-sdk or use another SKIL_HOME" in message
    assert sorted(p.name for p in skil_home.rglob("*")) == before
    assert _version(skil_home) == 999


def test_an_unreadable_marker_names_the_fix(skil_home: Path) -> None:
    (skil_home / "home.json").write_text("{not json")
    with pytest.raises(HomeError, match="is unreadable; restore it"):
        skil_home_module.skil_home()


def test_migrations_run_in_order_and_resume_after_a_crash(
    skil_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A two-step upgrade whose second step fails once: the rerun resumes at that step."""
    add_model(models.small_mlp_model(tmp_path), "steps")
    calls: list[int] = []
    failures = [RuntimeError("power cut")]

    def step_one(home: Path) -> None:
        calls.append(1)
        (home / "models.index").write_text("v2\n")

    def step_two(home: Path) -> None:
        if failures:
            raise failures.pop()
        calls.append(2)

    target = HOME_SCHEMA_VERSION + 2
    monkeypatch.setitem(migrations.MIGRATIONS, HOME_SCHEMA_VERSION, step_one)
    monkeypatch.setitem(migrations.MIGRATIONS, HOME_SCHEMA_VERSION + 1, step_two)
    with pytest.raises(RuntimeError):
        migrations.migrate_home(skil_home, target)
    assert _version(skil_home) == HOME_SCHEMA_VERSION + 1 and calls == [1]
    assert migrations.migrate_home(skil_home, target) == [HOME_SCHEMA_VERSION + 1]
    assert _version(skil_home) == target and calls == [1, 2]
    assert migrations.migrate_home(skil_home, target) == []


def test_a_version_without_a_migration_says_what_to_do(
    skil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(migrations.MIGRATIONS, 0)
    (skil_home / "models").mkdir(exist_ok=True)
    (skil_home / "home.json").unlink(missing_ok=True)
    with pytest.raises(HomeError, match="cannot migrate to 1; migrate it with the skil-sdk"):
        migrations.migrate_home(skil_home, HOME_SCHEMA_VERSION)
    assert not (skil_home / "home.json").exists()


def test_every_version_below_the_current_one_has_a_migration() -> None:
    assert sorted(migrations.MIGRATIONS) == list(range(HOME_SCHEMA_VERSION))
    assert list_models() == []
