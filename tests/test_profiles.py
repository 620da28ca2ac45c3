"""Cluster profiles: SKIL_HOME/config.toml, apply_profile, `skil-sdk profiles`, and two real
jobs submitted with two Spark installations (pip's pyspark and a copy of it elsewhere)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import _model_fixtures as models
import pytest
from click.testing import CliRunner

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.cli.main import main as cli
from skil_sdk.errors import InvalidValueError, NotFoundError
from skil_sdk.profiles import apply_profile, get_profile, load_profiles
from skil_sdk.spark.sparkhome import find_spark_home
from skil_sdk.spark.submit import InferenceRequest

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
MARKER = "skil-test: spark-submit of the copied installation"


def pip_spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def copy_spark_home(target: Path) -> Path:
    """Another Spark installation: bin/ copied (marked), jars and python linked."""
    source = pip_spark_home()
    shutil.copytree(source / "bin", target / "bin")
    submit = target / "bin" / "spark-submit"
    lines = submit.read_text().splitlines()
    lines.insert(1, f'echo "{MARKER} at $(cd "$(dirname "$0")/.."; pwd)" >&2')
    submit.write_text("\n".join(lines) + "\n")
    for name in ("jars", "python"):
        (target / name).symlink_to(source / name)
    return target


def write_config(home: Path, text: str) -> Path:
    path = home / "config.toml"
    path.write_text(text)
    return path


def request(**kwargs: Any) -> InferenceRequest:
    return InferenceRequest(model_id="m", provider="p", output="out", **kwargs)


def test_apply_profile_fills_what_the_command_line_left_unset(skil_home: Path) -> None:
    spark = pip_spark_home()
    write_config(
        skil_home,
        f"""
default_profile = "prod"

[profiles.prod]
spark_home = "{spark}"
master = "spark://10.0.0.1:7077"
executor_memory = "4g"
advertise_host = "10.0.0.5"
pex_root = "/mnt/pex"
batch_size = 256

[profiles.prod.conf]
"spark.executor.cores" = "2"
"spark.task.cpus" = 1
""",
    )
    explicit = request(
        spark_args=SparkArgs(executor_memory="8g", conf={"spark.task.cpus": "2"}),
        advertise_host="10.9.9.9",
    )

    got = apply_profile(explicit, None)  # the default profile

    assert got.profile == "prod" and got.spark_home == str(spark)
    assert got.spark_args.master == "spark://10.0.0.1:7077"
    assert got.spark_args.executor_memory == "8g", "the command line wins"
    assert got.spark_args.batch_size == 256
    assert got.spark_args.conf == {
        "spark.executor.cores": "2",
        "spark.task.cpus": "2",
        "spark.executorEnv.PEX_ROOT": "/mnt/pex",
    }
    assert got.advertise_host == "10.9.9.9"
    assert explicit.profile is None, "the request given is not changed"
    assert apply_profile(request(spark_home="/other"), "prod").spark_home == "/other"


def test_no_config_means_no_profile(skil_home: Path) -> None:
    original = request()
    assert apply_profile(original, None) is original
    assert load_profiles() == ([], None)
    with pytest.raises(NotFoundError, match=r"No profile 'x' in .*config\.toml"):
        get_profile("x")


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ('[profiles.bad]\ncolour = "red"\n', r"has an unknown key 'colour'"),
        ('[profiles.bad]\nspark_home = "/no/such/spark"\n', r"spark_home /no/such/spark is not a"),
        ('[profiles.bad]\nmaster = "nowhere"\n', r"master 'nowhere' is not a Spark master URL"),
        ('[profiles.bad]\nnum_executors = "many"\n', r"num_executors must be a whole number"),
        ('default_profile = "gone"\n[profiles.bad]\n', r"default_profile 'gone' names no"),
        ("[profiles.bad\n", r"is not valid TOML"),
    ],
)
def test_bad_profiles_are_refused_naming_key_and_file(
    skil_home: Path, body: str, pattern: str
) -> None:
    path = write_config(skil_home, body)
    with pytest.raises(InvalidValueError, match=pattern) as caught:
        get_profile("bad")
    assert str(path) in caught.value.message


def test_profiles_cli_list_show_and_errors(skil_home: Path) -> None:
    spark = pip_spark_home()
    write_config(
        skil_home,
        f'default_profile = "a"\n[profiles.a]\nmaster = "local[2]"\nengine = "spark"\n'
        f'[profiles.b]\nspark_home = "{spark}"\nmaster = "yarn"\n',
    )
    runner = CliRunner()
    listed = runner.invoke(cli, ["profiles", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert data["default"] == "a" and [p["name"] for p in data["profiles"]] == ["a", "b"]
    human = runner.invoke(cli, ["profiles", "list"])
    assert "* a" in human.output and str(spark) in human.output
    shown = json.loads(runner.invoke(cli, ["profiles", "show", "b", "--json"]).output)
    assert shown["spark_home"] == str(spark) and shown["spark_args"] == {"master": "yarn"}
    assert shown["engine"] is None
    a = runner.invoke(cli, ["profiles", "show", "a"])
    assert "  engine = spark" in a.output and "  master = local[2]" in a.output

    missing = runner.invoke(
        cli, ["infer", "--model", "m", "--provider", "p", "--output", "o", "--profile", "nope"]
    )
    assert missing.exit_code == 1 and "No profile 'nope'" in missing.output
    write_config(skil_home, '[profiles.a]\nmastr = "yarn"\n')
    bad = runner.invoke(cli, ["profiles", "show", "a"])
    assert bad.exit_code == 1 and "unknown key 'mastr'" in bad.output


@pytest.fixture()
def profile_home(bundle_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The session bundle's home, with its config.toml removed afterwards."""
    monkeypatch.delenv("SPARK_HOME", raising=False)
    yield bundle_home
    (bundle_home / "config.toml").unlink(missing_ok=True)


@pytest.mark.slow
def test_each_job_submits_with_its_profiles_spark(profile_home: Path, tmp_path: Path) -> None:
    bundle_home = profile_home
    pip_home = pip_spark_home()
    copy_home = copy_spark_home(tmp_path / "spark-copy")
    assert find_spark_home(str(copy_home)) == copy_home
    write_config(
        bundle_home,
        f'[profiles.pip]\nspark_home = "{pip_home}"\nmaster = "local[1]"\n\n'
        f'[profiles.copy]\nspark_home = "{copy_home}"\nmaster = "local[2]"\n',
    )
    model_id = SkilContext().add_model_to_experiment(
        models.mlp_model(tmp_path, (1, 4, 2), name="one.onnx"), "profiles"
    )
    records = {}
    for profile in ("pip", "copy"):
        out = tmp_path / f"out-{profile}"
        completed = subprocess.run(
            [
                SKIL,
                "infer",
                "--model",
                model_id,
                "--provider",
                "squares",
                "--provider-option",
                "n=12",
                "--output",
                str(out),
                "--profile",
                profile,
                "--json",
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=600,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        result = json.loads(completed.stdout)
        record = SkilContext().job(result["job_id"])
        meta = json.loads((out / "_skil_job.json").read_text())
        records[profile] = (record, meta, Path(record["log_path"]).read_text())

    for profile, master in (("pip", "local[1]"), ("copy", "local[2]")):
        record, meta, _log = records[profile]
        assert record["details"]["profile"] == profile and meta["profile"] == profile
        assert record["details"]["spark_args"]["master"] == master and meta["master"] == master
    assert f"{MARKER} at {copy_home}" in records["copy"][2]
    assert MARKER not in records["pip"][2]
