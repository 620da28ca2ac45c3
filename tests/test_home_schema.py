"""SKIL_HOME over time: a schema version in home.json, migrations up, a clear refusal down;
and a writer killed half-way leaves it consistent (``doctor`` clean, the retry works)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _model_fixtures as models
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from skil_sdk import home as skil_home_module
from skil_sdk import migrations
from skil_sdk.errors import HomeError
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


def _large_model(directory: Path, megabytes: int = 160) -> Path:
    """A valid model whose file is ``megabytes`` large (one big initializer)."""
    big = numpy_helper.from_array(np.zeros(megabytes * 1024 * 1024 // 4, np.float32), "big")
    first = numpy_helper.from_array(np.array([0], dtype=np.int64), "first")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["big", "first"], ["g"]),
         helper.make_node("Add", ["x", "g"], ["y"])],
        "large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[big, first],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", models.OPSET)])
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / "large.onnx"))
    return directory / "large.onnx"


def store_checks(env: dict[str, str] | None = None) -> dict[str, str]:
    """``skil-sdk doctor --json``: the status of the checks of SKIL_HOME and its stores."""
    completed = subprocess.run(
        [SKIL, "doctor", "--json"], capture_output=True, text=True, timeout=300,
        env=env or dict(os.environ),
    )
    checks = json.loads(completed.stdout)["checks"]
    return {c["name"]: c["status"] for c in checks if c["name"] in STORE_CHECKS}


STORE_CHECKS = ("skil-home", "models", "plugins", "token")


def test_models_add_killed_half_way_leaves_the_store_consistent(
    skil_home: Path, tmp_path: Path
) -> None:
    """SIGKILL while the model's files are copied: no model, doctor clean, the retry works."""
    source = _large_model(tmp_path)
    store = skil_home / "models"
    process = subprocess.Popen(
        [SKIL, "models", "add", str(source), "--experiment", "crash", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if store.exists() and any(p.name.endswith(".work") for p in store.iterdir()):
            break
        time.sleep(0.002)
    assert process.poll() is None, "models add finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    entries = [p.name for p in store.iterdir() if not p.name.endswith(".lock")]
    assert [name for name in entries if not name.startswith(".")] == []
    assert list_models() == []
    assert set(store_checks().values()) == {"ok"}
    retry = _cli("models", "add", str(source), "--experiment", "crash", "--json")
    assert retry.returncode == 0, retry.stderr
    record = json.loads(retry.stdout)
    assert [m.id for m in list_models()] == [record["id"]]
    left = [p.name for p in store.iterdir() if not p.name.endswith(".lock")]
    assert left == [record["id"]], "the killed writer's work directory is gone"
    assert store_checks()["models"] == "ok"
