"""`skil-sdk doctor`: passes on a healthy setup, fails with the fix named on broken ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _model_fixtures as models
import pytest

from skil_sdk import SkilContext
from skil_sdk.doctor import FAIL, OK, Check, check_bundle_python, run_checks

SKIL = str(Path(sys.executable).with_name("skil-sdk"))


def doctor_cli(*args: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [SKIL, "doctor", "--json", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    return completed.returncode, json.loads(completed.stdout)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_healthy_setup_passes(skil_home: Path, tmp_path: Path) -> None:
    SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "doctor")
    code, report = doctor_cli()
    assert code == 0, report
    assert report["ok"] is True
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    for name in ("java", "spark", "spark-submit", "server", "skil-home", "models", "token"):
        assert statuses[name] == OK, report
    assert set(statuses.values()) <= {"ok", "warn"}


def test_tampered_model_fails_with_the_fix(skil_home: Path, tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "doctor")
    stored = next((skil_home / "models" / model_id).glob("*.onnx"))
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"tampered")

    code, report = doctor_cli()

    assert code == 1 and report["ok"] is False
    check = next(c for c in report["checks"] if c["name"] == "models")
    assert check["status"] == FAIL and "sha256" in check["message"]
    assert check["fix"] == f"Run `skil-sdk models remove {model_id}` and add the model again."


def test_missing_spark_home_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "no-spark-here"))
    _name, checks = run_checks()
    spark = by_name(checks)["spark"]
    assert spark.status == FAIL and "no-spark-here" in spark.message
    assert spark.fix is not None and "SPARK_HOME" in spark.fix
    assert by_name(checks)["spark-submit"].status == FAIL


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_unreachable_advertise_host_fails(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("SKIL_ADVERTISE_HOST", host)
    _name, checks = run_checks()
    server = by_name(checks)["server"]
    assert server.status == FAIL and host in server.message
    assert server.fix is not None and "advertise_host" in server.fix


def test_token_readable_by_others_fails(skil_home: Path) -> None:
    token = skil_home / "server.token"
    token.write_text("ska_secret\n")
    token.chmod(0o644)
    _name, checks = run_checks()
    check = by_name(checks)["token"]
    assert check.status == FAIL and "0644" in check.message
    assert check.fix == f"Run `chmod 600 {token}`."
    assert oct(token.stat().st_mode & 0o777) == "0o644", "doctor changes nothing"
    token.chmod(0o600)
    assert by_name(run_checks()[1])["token"].status == OK


def test_tampered_plugin_and_bad_profile_fail(skil_home: Path, tmp_path: Path) -> None:
    from _bundle_fixtures import write_wheel

    from skil_sdk.store.plugins import list_plugins, publish_wheel

    publish_wheel(write_wheel(tmp_path / "wheels"))
    wheel = list_plugins()[0].path
    wheel.chmod(0o644)
    wheel.write_bytes(wheel.read_bytes() + b"x")
    (skil_home / "config.toml").write_text('[profiles.bad]\ncolour = "red"\n')
    _name, checks = run_checks("bad")
    found = by_name(checks)
    assert found["plugins"].status == FAIL and "hand-made" in found["plugins"].message
    assert found["profile"].status == FAIL and "'colour'" in found["profile"].message


@pytest.mark.slow
def test_bundle_python_matches_the_cached_bundle(
    built_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKIL_HOME", str(Path(built_bundle.bundle).parents[3]))
    from skil_sdk.doctor import _Context

    check = check_bundle_python(_Context(master="local[2]"))
    assert check.status == OK, check
    remote = check_bundle_python(_Context(master="yarn"))
    assert remote.status == "warn" and remote.fix and "PATH" in remote.fix


def test_leftover_pex_folders_warn_until_cache_prune_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _tmpdirs import old_pex_leftover

    temp = tmp_path / "tmp"
    leftover = old_pex_leftover(temp, "ud9m64fj.skil_squares-0.1.0-py3-none-any.whl", 2_000_000)
    monkeypatch.setenv("TMPDIR", str(temp))
    code, report = doctor_cli()
    check = {c["name"]: c for c in report["checks"]}["temp-dir"]
    assert check["status"] == "warn" and "1 pex-whl-install" in check["message"]
    assert "2 MB" in check["message"] and "skil-sdk cache prune" in check["fix"]
    assert code == 0  # a warning, not a failure
    subprocess.run([SKIL, "cache", "prune"], env=dict(os.environ), check=True, timeout=120)
    code, report = doctor_cli()
    assert {c["name"]: c for c in report["checks"]}["temp-dir"]["status"] == OK and code == 0
    assert not leftover.exists()
