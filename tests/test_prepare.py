"""``prepare``: one checked, typed job spec for every entry point, refused before Spark.

The CLI (``--dry-run --json``), ``SkilContext`` and profiles all go through
:func:`skil_sdk.job.prepare.prepare`, so they must give the same spec. What it refuses
is refused before any bundle, job record or JVM exists: a fake Spark installation whose
``spark-submit`` leaves a marker shows that none was started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _model_fixtures as models
import pytest
from test_plugins import PROVIDER_MODULE, Site

from skil_sdk import ProviderOption, SkilContext, SparkArgs
from skil_sdk.errors import ConflictError, InvalidValueError, NotFoundError
from skil_sdk.job.prepare import check_output_directory, prepare
from skil_sdk.job.request import InferenceRequest
from skil_sdk.job.spec import SPEC_SCHEMA_VERSION, JobSpec
from skil_sdk.providers.options import resolve_options
from skil_sdk.store.jobs import JobStore
from skil_sdk.store.models import add_model

SKIL = str(Path(sys.executable).with_name("skil-sdk"))


@pytest.fixture
def model_id(tmp_path: Path, skil_home: Path) -> str:
    return add_model(models.small_mlp_model(tmp_path), "prep").id


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")
    return path


def skil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SKIL, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=120
    )


# ------------------------------------------------------------------ the spec itself


def test_defaults_are_filled_and_the_spec_round_trips(model_id: str, data: Path) -> None:
    job = prepare(
        InferenceRequest(model_id, "parquet", "out", provider_options={"path": str(data)})
    )
    assert job.kind == "inference" and job.schema_version == SPEC_SCHEMA_VERSION
    assert dict(job.provider_options) == {
        "path": str(data),
        "id": "id",
        "features": "features",
        "anonymous": "false",
    }
    assert job.batch_size == 1024 and job.overwrite == "no"
    assert job.provider.class_path == "skil_sdk.providers.files:ParquetProvider"
    assert JobSpec.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_a_spec_of_another_schema_version_is_refused(model_id: str, data: Path) -> None:
    job = prepare(
        InferenceRequest(model_id, "parquet", "out", provider_options={"path": str(data)})
    )
    stale = {**job.to_dict(), "schema_version": SPEC_SCHEMA_VERSION + 1}
    with pytest.raises(InvalidValueError, match="schema version"):
        JobSpec.from_dict(stale)


def test_option_types_are_enforced_and_normalised() -> None:
    declared = (
        ProviderOption("path", "data", required=True, type="path"),
        ProviderOption("n", "rows", default="10", type="int", minimum=1),
        ProviderOption("ratio", "a share", type="float"),
        ProviderOption("fast", "go fast", default="false", type="bool"),
        ProviderOption("mode", "how", type="choice", choices=("a", "b")),
    )
    here = str(Path(__file__))
    assert resolve_options("t", declared, {"path": here, "fast": "YES", "ratio": "0.5"}) == {
        "path": here,
        "n": "10",
        "ratio": "0.5",
        "fast": "true",
    }
    assert resolve_options("t", declared, {"path": "s3://bucket/x"})["path"] == "s3://bucket/x"
    cases = [
        ({"path": here, "n": "0"}, "'n' must be at least 1, not 0"),
        ({"path": here, "n": "ten"}, "'n' must be a whole number, not 'ten'"),
        ({"path": here, "ratio": "half"}, "'ratio' must be a number, not 'half'"),
        ({"path": here, "mode": "c"}, "'mode' must be one of a, b, not 'c'"),
        ({"path": here, "fast": "maybe"}, "'fast' must be true or false"),
        ({"path": "/no/such/file"}, "/no/such/file, which does not exist"),
        ({}, "needs the option 'path'"),
        ({"path": here, "nn": "3"}, "has no option 'nn' (did you mean 'n'?)"),
    ]
    for given, message in cases:
        with pytest.raises(InvalidValueError) as caught:
            resolve_options("t", declared, given)
        assert message in caught.value.message, (given, caught.value.message)


def test_a_provider_that_declares_no_options_takes_any() -> None:
    assert resolve_options("t", (), {"anything": "1"}) == {"anything": "1"}


# ------------------------------------------------------- one spec from every entry point


class StopAfterPrepare(Exception):
    """Raised in place of running the job, once its spec was recorded."""


def _context_spec(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> JobSpec:
    """The spec ``SkilContext.batch_inference(**kwargs)`` prepares (the job is not run)."""
    import skil_sdk.spark.submit as submit_module

    seen: list[JobSpec] = []
    real = submit_module.prepare

    def recording(request: InferenceRequest, **options: Any) -> JobSpec:
        seen.append(real(request, **options))
        raise StopAfterPrepare

    monkeypatch.setattr(submit_module, "prepare", recording)
    with pytest.raises(StopAfterPrepare):
        SkilContext().batch_inference(**kwargs)
    return seen[0]


def test_cli_context_and_profile_give_the_same_spec(
    model_id: str, data: Path, tmp_path: Path, skil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (skil_home / "config.toml").write_text(
        'default_profile = "team"\n\n[profiles.team]\nmaster = "local[2]"\n'
        'executor_memory = "3g"\nbatch_size = 77\n\n[profiles.team.conf]\n'
        '"spark.sql.shuffle.partitions" = "4"\n'
    )
    out = str(tmp_path / "out")
    completed = skil(
        "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
        f"path={data}", "--output", out, "--dry-run", "--json",
    )
    assert completed.returncode == 0, completed.stderr
    from_cli = json.loads(completed.stdout)
    from_context = _context_spec(
        monkeypatch, args=None, model_id=model_id, provider="parquet", output_path=out,
        path=str(data),
    )
    assert from_context.to_dict() == from_cli
    # the default profile applied to both
    assert from_cli["profile"] == "team" and from_cli["batch_size"] == 77
    assert from_cli["spark_args"]["executor_memory"] == "3g"
    assert from_cli["spark_args"]["master"] == "local[2]"
    assert from_cli["spark_args"]["conf"] == {"spark.sql.shuffle.partitions": "4"}
    # the command line still wins over the profile
    completed = skil(
        "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
        f"path={data}", "--output", out, "--executor-memory", "5g", "--dry-run", "--json",
    )
    assert json.loads(completed.stdout)["spark_args"]["executor_memory"] == "5g"
    assert JobStore().list() == [], "a dry run records no job"


def test_evaluate_dry_run_records_the_kind_and_settings(
    model_id: str, data: Path
) -> None:
    completed = skil(
        "evaluate", "--model", model_id, "--provider", "parquet", "--provider-option",
        f"path={data}", "--eval-type", "evaluation", "--label-column", "y", "--dry-run",
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    spec = json.loads(completed.stdout)
    assert spec["kind"] == "evaluate" and spec["evaluation"]["label_column"] == "y"
    assert spec["evaluation"]["eval_type"] == "evaluation"


# ---------------------------------------------------------------- the output rule


def test_overwrite_replaces_only_an_earlier_output(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(ConflictError, match=r"not a skil-sdk output \(such as 'notes.txt'"):
        check_output_directory(str(theirs), "yes")
    with pytest.raises(ConflictError, match="pass --overwrite"):
        check_output_directory(str(theirs), "no")
    check_output_directory(str(theirs), "force")
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "part-00000.parquet").write_bytes(b"PAR1")
    (ours / "_skil_job.json").write_text("{}")
    check_output_directory(str(ours), "yes")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_output_directory(str(empty), "yes")
    leftovers = tmp_path / "leftovers"
    (leftovers / "_temporary" / "0").mkdir(parents=True)
    check_output_directory(str(leftovers), "yes")
    assert (theirs / "notes.txt").read_text() == "keep me"


def test_overwrite_flag_forms(model_id: str, data: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    base = ("infer", "--model", model_id, "--provider", "parquet", "--provider-option",
            f"path={data}", "--output", str(theirs), "--dry-run", "--json")
    assert json.loads(skil(*base, "--overwrite=force").stdout)["overwrite"] == "force"
    refused = skil(*base, "--overwrite")
    assert refused.returncode == 1 and "--overwrite=force" in refused.stderr
    assert (theirs / "notes.txt").exists()


# ------------------------------------------------------- refused before any JVM starts


@pytest.fixture
def fake_spark(tmp_path: Path) -> tuple[Path, Path]:
    """A Spark installation whose spark-submit only leaves a marker and fails."""
    home = tmp_path / "fake-spark"
    (home / "bin").mkdir(parents=True)
    marker = tmp_path / "spark-submit-ran"
    script = home / "bin" / "spark-submit"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 3\n")
    script.chmod(0o755)
    return home, marker


@pytest.fixture
def installed_unpublished(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A plugin installed in the environment (on PYTHONPATH) but never published."""
    root = tmp_path / "site"
    root.mkdir()
    Site(root).add(
        "acme-local", "1.0",
        {"acme_local_mod": PROVIDER_MODULE.format(cls="LocalRows", name="acme-local")},
        {"acme-local": "acme_local_mod"},
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    yield env


def test_mistakes_are_refused_without_a_jvm_or_a_record(
    model_id: str,
    data: Path,
    tmp_path: Path,
    skil_home: Path,
    fake_spark: tuple[Path, Path],
    installed_unpublished: dict[str, str],
) -> None:
    spark_home, marker = fake_spark
    common = ("--model", model_id, "--output", str(tmp_path / "out"), "--spark-home",
              str(spark_home), "--master", "local[2]")
    cases = [
        (("--provider", "parqet"), "No provider named 'parqet' (did you mean 'parquet'?)"),
        (("--provider", "parquet"), "needs the option 'path'"),
        (("--provider", "parquet", "--provider-option", f"path={data}",
          "--provider-option", "colour=red"), "has no option 'colour'"),
        (("--provider", "parquet", "--provider-option", f"path={tmp_path}/absent"),
         "does not exist on this machine"),
        (("--provider", "acme-local"),
         "installed here but not published"),
    ]
    for args, message in cases:
        completed = skil("infer", *common, *args, env=installed_unpublished)
        assert completed.returncode == 1, (args, completed.stderr)
        assert message in completed.stderr, (args, completed.stderr)
        assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert not marker.exists(), "spark-submit was started"
    assert JobStore().list() == [], "a refused job leaves no record"
    assert not (skil_home / "cache").exists(), "no bundle was built or looked up"
    assert not (tmp_path / "out").exists()


def test_an_unpublished_provider_is_named_as_such(
    model_id: str, tmp_path: Path, installed_unpublished: dict[str, str]
) -> None:
    completed = skil(
        "infer", "--model", model_id, "--provider", "acme-local", "--output",
        str(tmp_path / "out"), env=installed_unpublished,
    )
    assert completed.returncode == 1
    assert "comes from the package 'acme-local'" in completed.stderr
    assert "skil-sdk publish" in completed.stderr and "--plugin" in completed.stderr
    assert "providers list" not in completed.stderr


def test_prepare_takes_a_provider_only_the_bundle_holds(model_id: str, tmp_path: Path) -> None:
    """A published plugin that is not installed here is checked on the driver."""
    from _bundle_fixtures import write_wheel

    from skil_sdk.store.plugins import publish_wheel

    wheel = write_wheel(tmp_path, "skil-remote", "0.1.0", {"remote-rows": "hand_made.provider"})
    publish_wheel(wheel)
    job = prepare(InferenceRequest(model_id, "remote-rows", "out", provider_options={"n": "3"}))
    assert job.provider.name == "remote-rows" and not job.provider.resolved
    assert job.provider.lookup == "remote-rows" and dict(job.provider_options) == {"n": "3"}
    by_path = prepare(InferenceRequest(model_id, "hand_made.provider:Rows", "out"))
    assert by_path.provider.lookup == "hand_made.provider:Rows" and not by_path.provider.resolved
    from skil_sdk.store.plugins import remove_plugin

    remove_plugin("skil-remote")
    with pytest.raises(NotFoundError, match="No provider named 'remote-rows'"):
        prepare(InferenceRequest(model_id, "remote-rows", "out"))


def test_sparkargs_and_master_checks_come_before_the_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="master 'bogus'"):
        prepare(InferenceRequest("nosuch-0000", "parquet", "out",
                                 spark_args=SparkArgs(master="bogus")))


def test_a_failed_job_removes_only_an_output_it_created(tmp_path: Path) -> None:
    from _job_specs import make_job

    from skil_sdk.spark.submit import discard_incomplete_output

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "data.csv").write_text("keep")
    discard_incomplete_output(make_job(output=str(theirs), overwrite="force"), True, "job-x")
    assert (theirs / "data.csv").read_text() == "keep", "a path that existed is never removed"
    ours = tmp_path / "ours"
    (ours / "_temporary" / "0").mkdir(parents=True)
    discard_incomplete_output(make_job(output=str(ours)), False, "job-x")
    assert not ours.exists(), "an incomplete output the job created is removed"
    done = tmp_path / "done"
    done.mkdir()
    (done / "_SUCCESS").touch()
    discard_incomplete_output(make_job(output=str(done)), False, "job-x")
    assert (done / "_SUCCESS").exists(), "a committed output stays"


def test_metrics_files_are_told_from_other_files() -> None:
    from skil_sdk.job.prepare import is_metrics_document

    assert is_metrics_document('{"accuracy": 0.9, "job": {"job_id": "job-1"}}')
    assert not is_metrics_document('{"accuracy": 0.9}')
    assert not is_metrics_document("id,label\n1,2\n")


def test_dry_run_redacts_secret_options(model_id: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    spark_tests = str(Path(__file__).parent / "spark")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [spark_tests, env.get("PYTHONPATH")]))
    completed = skil(
        "infer", "--model", model_id, "--provider", "_providers:OpenOptionsProvider",
        "--provider-option", "api_token=hunter2", "--provider-option", "n=3", "--output",
        str(tmp_path / "out"), "--dry-run", "--json", env=env,
    )
    assert completed.returncode == 0, completed.stderr
    assert "hunter2" not in completed.stdout
    assert json.loads(completed.stdout)["provider_options"] == {"api_token": "***", "n": "3"}


def test_a_missing_spark_installation_is_refused_before_the_bundle(
    model_id: str, data: Path, tmp_path: Path, skil_home: Path
) -> None:
    completed = skil(
        "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
        f"path={data}", "--output", str(tmp_path / "out"), "--spark-home", str(tmp_path),
        "--engine", "spark",
    )
    assert completed.returncode == 1 and "has no bin/spark-submit" in completed.stderr
    assert JobStore().list() == [] and not (skil_home / "cache").exists()


def test_a_models_recorded_input_shapes_are_the_default(tmp_path: Path, data: Path) -> None:
    """An MLflow signature's shapes, stored with the model, feed flat rows; the command
    line's --input-shape wins over them."""
    record = add_model(
        models.dynamic_cnn_model(tmp_path), "prep", input_shapes={"x": [3, 6, 5]}
    )
    options = {"path": str(data)}
    job = prepare(InferenceRequest(record.id, "parquet", "out", provider_options=options))
    assert dict(job.input_shapes) == {"x": (3, 6, 5)}
    given = prepare(InferenceRequest(record.id, "parquet", "out", provider_options=options,
                                     input_shapes={"x": [3, 8, 8]}))
    assert dict(given.input_shapes) == {"x": (3, 8, 8)}


# ------------------------------------------------------------------ the engine


def test_the_engine_is_auto_by_default_and_a_profile_can_name_one(
    model_id: str, data: Path, skil_home: Path, tmp_path: Path
) -> None:
    from skil_sdk.job.prepare import local_engine_ignores

    csv = tmp_path / "rows.csv"
    csv.write_text("id,a\n1,2\n")

    def engine(provider: str, options: dict[str, str], **kwargs: Any) -> str:
        return prepare(InferenceRequest(model_id, provider, str(tmp_path / "o"),
                                        provider_options=options, **kwargs)).engine

    parquet = {"path": str(data)}
    assert engine("parquet", parquet) == "local", "local[*] and an executor-read provider"
    assert engine("parquet", parquet, spark_args=SparkArgs(master="local[2,3]")) == "local"
    assert engine("csv", {"path": str(csv)}) == "spark", "a DataFrame provider needs Spark"
    assert engine("parquet", parquet, engine="spark") == "spark"
    with pytest.raises(InvalidValueError, match="--engine local cannot run this job: the csv"):
        engine("csv", {"path": str(csv)}, engine="local")

    (skil_home / "config.toml").write_text(
        'default_profile = "p"\n[profiles.p]\nmaster = "local[2]"\nengine = "spark"\n'
    )
    assert engine("parquet", parquet) == "spark", "the profile's engine"
    assert engine("parquet", parquet, engine="auto") == "local", "--engine wins"
    (skil_home / "config.toml").write_text('[profiles.p]\nengine = "jvm"\n')
    with pytest.raises(InvalidValueError, match="engine must be one of auto, local, spark"):
        engine("parquet", parquet, profile="p")
    (skil_home / "config.toml").unlink()

    given = InferenceRequest(
        model_id, "parquet", str(tmp_path / "o"), provider_options=parquet,
        spark_args=SparkArgs(master="local[2]", executor_memory="2g",
                             conf={"spark.sql.shuffle.partitions": "4"}),
    )
    job = prepare(given)
    assert job.engine == "local"
    assert local_engine_ignores(given, job) == [
        "--executor-memory", "--conf spark.sql.shuffle.partitions"
    ]
    plain = InferenceRequest(model_id, "parquet", str(tmp_path / "o"), provider_options=parquet)
    assert local_engine_ignores(plain, prepare(plain)) == []
    (skil_home / "config.toml").write_text(
        'default_profile = "p"\n[profiles.p]\nmaster = "local[2]"\ndriver_memory = "2g"\n'
    )
    assert local_engine_ignores(plain, prepare(plain)) == [], "a profile's settings are not named"
    (skil_home / "config.toml").unlink()


def test_spark_settings_on_a_local_job_are_warned_of(
    model_id: str, data: Path, tmp_path: Path
) -> None:
    completed = skil("infer", "--model", model_id, "--provider", "parquet", "--provider-option",
                     f"path={data}", "--output", str(tmp_path / "o"), "--executor-memory", "2g",
                     "--dry-run", "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["engine"] == "local"
    assert ("Warning: The local engine runs no JVM and ignores --executor-memory; pass "
            "--engine spark") in completed.stderr
    quiet = skil("infer", "--model", model_id, "--provider", "parquet", "--provider-option",
                 f"path={data}", "--output", str(tmp_path / "o"), "--dry-run", "--json")
    assert quiet.returncode == 0 and "Warning" not in quiet.stderr
