"""Resumable jobs on the local engine: a job killed half-way (SIGKILL of the whole
``skil-sdk infer`` process group, or ``jobs kill``) keeps its committed tasks, and
``skil-sdk jobs resume`` runs only the others, every id once; a bad row past the budget
can be resumed with a larger one; a changed input or model refuses resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _spark_helpers import read_output, run_onnxruntime
from _waiting import release_and_reap, wait_for

from skil_sdk import SkilContext, SparkArgs, load_results
from skil_sdk.errors import ConflictError, IntegrityError, InvalidValueError, ModelError
from skil_sdk.job.request import InferenceRequest
from skil_sdk.results import load_errors
from skil_sdk.spark.submit import submit
from skil_sdk.store.jobs import FAILED, KILLED, SUCCEEDED, JobStore
from skil_sdk.store.models import get_model

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
HERE = Path(__file__).resolve().parent
ROWS, SPLITS, UNBLOCKED = 800, 8, 4


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def _reads(markers: Path, split: int) -> int:
    """How many times split ``split`` was read (MarkedSource leaves a marker per read)."""
    start = split * (ROWS // SPLITS)
    return len(list(markers.glob(f"read-{start}-*")))


def _start_blocked_job(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path, str]:
    """A job of 8 tasks whose first 4 commit and whose others wait for a release file."""
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "resume")
    markers, out = tmp_path / "markers", tmp_path / "out"
    markers.mkdir()
    process = subprocess.Popen(
        [SKIL, "infer", "--model", model_id, "--provider", "_local_providers:MarkedProvider",
         "--provider-option", f"markers={markers}", "--provider-option", "block=true",
         "--provider-option", f"block_from={UNBLOCKED}", "--provider-option", f"n={ROWS}",
         "--provider-option", f"splits={SPLITS}", "--output", str(out), "--engine", "local",
         "--master", "local[2]", "--batch-size", "50"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    committed = out / "_temporary" / "committed"

    def half_way() -> bool:
        done = len(list(committed.glob("task-*"))) if committed.is_dir() else 0
        return (done == UNBLOCKED and (markers / "started").exists()) or process.poll() is not None

    wait_for(half_way, "four tasks to commit and the fifth to wait")
    assert process.poll() is None, process.communicate()[1].decode()[-2000:]
    return process, markers, out, JobStore().list()[0].id


def _check_every_id_once(out: Path) -> None:
    table = read_output(out)
    assert table.column("id").to_pylist() == list(range(ROWS))
    features = (np.arange(ROWS)[:, None] / np.array([1.0, 2.0, 3.0, 4.0]) / 1000.0)
    model = Path(get_model(JobStore().list()[0].model_id or "").path)
    expected = run_onnxruntime(model, {"input": features.astype(np.float32)})["output"]
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)


@pytest.mark.slow
def test_resume_after_sigkill_runs_only_the_tasks_that_were_missing(tmp_path: Path) -> None:
    process, markers, out, job_id = _start_blocked_job(tmp_path)
    os.killpg(process.pid, signal.SIGKILL)  # the client and its workers, without warning
    process.communicate(timeout=120)
    (markers / "release").touch()
    assert JobStore().get(job_id).state == FAILED, "a dead runner's job reads as FAILED"
    assert not any(p.name.startswith("part-") for p in out.iterdir()), "no rows are visible"
    shown = json.loads(subprocess.run([SKIL, "jobs", "show", job_id, "--json"], env=_env(),
                                      capture_output=True, text=True, timeout=120).stdout)
    assert (shown["tasks_committed"], shown["tasks_total"]) == (UNBLOCKED, SPLITS)
    resumed = subprocess.run([SKIL, "jobs", "resume", job_id, "--json"], env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout)
    assert result["state"] == SUCCEEDED and result["job_id"] == job_id
    assert (result["tasks"], result["tasks_kept"]) == (SPLITS, UNBLOCKED)
    assert (result["rows_in"], result["rows_written"], result["rows_quarantined"]) == (
        ROWS, ROWS, 0)
    _check_every_id_once(out)
    # the kept tasks' splits were read once, by the first run; the resumed run read the rest
    assert [_reads(markers, s) for s in range(UNBLOCKED)] == [1] * UNBLOCKED
    assert all(_reads(markers, s) >= 1 for s in range(UNBLOCKED, SPLITS))
    meta = json.loads((out / "_skil_job.json").read_text())
    assert (meta["tasks"], meta["tasks_kept"], meta["tasks_run"]) == (SPLITS, UNBLOCKED, 4)
    assert len(JobStore().get(job_id).details["resumes"]) == 1


@pytest.mark.slow
def test_jobs_kill_keeps_the_committed_tasks_for_resume(tmp_path: Path) -> None:
    process, markers, out, job_id = _start_blocked_job(tmp_path)
    try:
        killed = subprocess.run([SKIL, "jobs", "kill", job_id, "--json"], env=_env(),
                                capture_output=True, text=True, timeout=120)
        assert json.loads(killed.stdout)["state"] == KILLED
        process.communicate(timeout=120)
    finally:
        release_and_reap(process, markers)
    record = JobStore().get(job_id)
    assert record.state == KILLED and f"skil-sdk jobs resume {job_id}" in (record.error or "")
    with pytest.raises(InvalidValueError, match="jobs resume"):
        load_results(out)
    assert SkilContext().resume(job_id) == job_id
    _check_every_id_once(out)
    assert [_reads(markers, s) for s in range(UNBLOCKED)] == [1] * UNBLOCKED


def _failing_job(tmp_path: Path) -> tuple[str, Path, Path, Path]:
    """A job of 10 one-row-group tasks on one worker whose last task holds a bad row (5
    values for a model taking 4): tasks 0-8 commit, then the job fails."""
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "resume")
    features = np.random.default_rng(5).standard_normal((1000, 4)).astype(np.float32)
    rows: list[Any] = features.tolist()
    rows[950] = [1.0, 2.0, 3.0, 4.0, 5.0]
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": pa.array(np.arange(1000, dtype=np.int64)),
                             "features": pa.array(rows, pa.list_(pa.float32()))}),
                   data, row_group_size=100)
    request = InferenceRequest(model_id, "parquet", str(tmp_path / "out"),
                               SparkArgs(master="local[1]"), provider_options={"path": str(data)},
                               rows_per_task=100, engine="local")
    with pytest.raises(ModelError, match="the row with id 950") as caught:
        submit(request)
    job_id = JobStore().list()[0].id
    assert "9 committed task(s) are kept" in caught.value.message
    return job_id, data, tmp_path / "out", model


def test_a_bad_row_past_the_budget_is_resumed_with_a_larger_one(tmp_path: Path) -> None:
    job_id, _data, out, _model = _failing_job(tmp_path)
    with pytest.raises(ModelError, match="the row with id 950"):
        SkilContext().resume(job_id)  # the same budget meets the same row
    assert SkilContext().resume(job_id, max_bad_rows=1) == job_id
    result_meta = json.loads((out / "_skil_job.json").read_text())
    assert (result_meta["rows_written"], result_meta["rows_quarantined"]) == (999, 1)
    assert (result_meta["tasks_kept"], result_meta["tasks_run"]) == (9, 1)
    assert load_errors(out).column("id").to_pylist() == [950]
    table = read_output(out)
    assert table.column("id").to_pylist() == [i for i in range(1000) if i != 950]
    assert JobStore().get(job_id).state == SUCCEEDED
    with pytest.raises(ConflictError, match="nothing to resume"):
        SkilContext().resume(job_id)


def test_a_changed_input_or_model_refuses_resume(tmp_path: Path) -> None:
    job_id, data, out, _model = _failing_job(tmp_path)
    rerun = InferenceRequest(JobStore().get(job_id).model_id or "", "parquet", str(out),
                             SparkArgs(master="local[1]"), provider_options={"path": str(data)})
    with pytest.raises(ConflictError, match=f"continue it with `skil-sdk jobs resume {job_id}`"):
        submit(rerun)  # the same command again is pointed at resume
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten, same bytes
    with pytest.raises(ConflictError, match=r"the input files .* changed since its first run"):
        SkilContext().resume(job_id, max_bad_rows=1)
    assert len(list((out / "_temporary" / "committed").iterdir())) == 9, "the kept tasks stay"
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    stored = get_model(JobStore().get(job_id).model_id or "").path
    stored.write_bytes(stored.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="sha256"):
        SkilContext().resume(job_id, max_bad_rows=1)
    assert JobStore().get(job_id).state == FAILED


def test_a_reader_that_loses_rows_fails_the_job(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "lose")
    (tmp_path / "markers").mkdir()
    request = InferenceRequest(
        model_id, "_local_providers:MarkedProvider", str(tmp_path / "out"),
        SparkArgs(master="local[2]"), engine="local",
        provider_options={"markers": str(tmp_path / "markers"), "n": "500", "lose_row": "123"},
    )
    with pytest.raises(InvalidValueError, match="input has 500 rows but it wrote 499 and "
                       "quarantined 0, so 1 rows are unaccounted for"):
        submit(request)
    assert not (tmp_path / "out").exists(), "a resume would lose the same row: nothing kept"


def test_resume_refuses_the_tasks_of_another_job(tmp_path: Path) -> None:
    first_job, data, out, _model = _failing_job(tmp_path)
    again = InferenceRequest(JobStore().get(first_job).model_id or "", "parquet", str(out),
                             SparkArgs(master="local[1]"), provider_options={"path": str(data)},
                             rows_per_task=100, engine="local", overwrite=True)
    with pytest.raises(ModelError, match="the row with id 950"):
        submit(again)  # a new job over the first one's output: its tasks replace them
    second_job = JobStore().list()[0].id
    assert second_job != first_job
    with pytest.raises(ConflictError, match=f"holds the tasks of job {second_job}"):
        SkilContext().resume(first_job, max_bad_rows=1)
    assert SkilContext().resume(second_job, max_bad_rows=1) == second_job
