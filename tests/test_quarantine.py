"""Row quarantine and row accounting, in real jobs on both engines.

The input is 10,000 rows of a ``list<string>`` feature column (4 numbers per row, as
text) with 7 bad rows among them: two of the wrong length (stage ``shape``), two null rows
and a null value inside a row (``read``), two values that do not parse as numbers
(``cast``). Within the budget the job writes the 9,993 others (compared with onnxruntime
run directly), puts the 7 in ``OUTPUT/_errors/`` with their ids, stages and offsets, and
its counts reconcile; past the budget it fails naming the count, the budget and the first
bad id, and leaves nothing a reader sees.
"""

from __future__ import annotations

import json
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

from skil_sdk import SkilContext, SparkArgs, load_results
from skil_sdk.errors import BadRowsError, InvalidValueError, SkilError
from skil_sdk.job.request import InferenceRequest
from skil_sdk.results import load_errors
from skil_sdk.spark.submit import submit
from skil_sdk.store.jobs import FAILED, JobStore

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
ROWS = 10_000
#: id -> (stage, what is wrong with its features)
BAD = {
    17: ("shape", ["1", "2", "3"]),
    2048: ("shape", ["1", "2", "3", "4", "5"]),
    311: ("read", None),
    9999: ("read", None),
    4321: ("read", ["1", None, "3", "4"]),
    5000: ("cast", ["1", "abc", "3", "4"]),
    7777: ("cast", ["1.5", "2", "1.2.3", "4"]),
}


def _bad_parquet(tmp_path: Path) -> tuple[Path, np.ndarray]:
    features = np.random.default_rng(3).standard_normal((ROWS, 4)).astype(np.float32)
    rows: list[Any] = [[repr(float(v)) for v in row] for row in features]
    for row_id, (_stage, value) in BAD.items():
        rows[row_id] = value
    table = pa.table({
        "id": pa.array(np.arange(ROWS, dtype=np.int64)),
        "features": pa.array(rows, pa.list_(pa.string())),
    })
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path, row_group_size=1000)
    return path, features


def _request(model_id: str, data: Path, out: Path | str, **kwargs: Any) -> InferenceRequest:
    return InferenceRequest(
        model_id, "parquet", str(out), kwargs.pop("spark_args", SparkArgs(master="local[2]")),
        provider_options={"path": str(data)}, batch_size=256, **kwargs,
    )


def _expected(model: Path, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    good = np.array(sorted(set(range(ROWS)) - set(BAD)), dtype=np.int64)
    return good, run_onnxruntime(model, {"input": features[good]})["output"]


def _run(engine: str, spark: Any, request: InferenceRequest) -> Any:
    if engine == "spark":
        return submit(request, spark=spark)
    return submit(request)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "spark"])
def test_bad_rows_within_the_budget_are_quarantined_and_the_rows_reconcile(
    engine: str, spark: Any, tmp_path: Path
) -> None:
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "quarantine")
    data, features = _bad_parquet(tmp_path)
    result = _run(engine, spark, _request(model_id, data, tmp_path / "out", max_bad_rows="0.1%",
                                          engine=engine))
    assert (result.rows_in, result.rows_written, result.rows_quarantined) == (ROWS, 9993, 7)
    table = read_output(tmp_path / "out")
    good, expected = _expected(model, features)
    np.testing.assert_array_equal(table.column("id").to_numpy(), good)
    np.testing.assert_allclose(np.array(table.column("output").to_pylist()), expected, rtol=1e-5)
    errors = load_errors(tmp_path / "out").sort_by("id").to_pylist()
    assert [(e["id"], e["stage"]) for e in errors] == sorted(
        (i, stage) for i, (stage, _v) in BAD.items()
    )
    assert load_errors(tmp_path / "out").schema.field("id").type == pa.int64()
    assert all(e["error"] for e in errors)
    if engine == "local":  # the executors' readers know the file and the row's offset
        read_rows = [e for e in errors if e["stage"] == "read"]
        assert all(e["source"] == str(data) and e["row_offset"] == e["id"] for e in read_rows)
    meta = json.loads((tmp_path / "out" / "_skil_job.json").read_text())
    assert (meta["rows_in"], meta["rows_written"], meta["rows_quarantined"]) == (ROWS, 9993, 7)
    assert meta["rows_in"] == meta["rows_written"] + meta["rows_quarantined"]
    assert load_results(tmp_path / "out").num_rows == 9993, "readers skip _errors/"
    details = JobStore().get(result.job_id).to_dict()
    assert (details["rows_in"], details["rows_written"], details["rows_quarantined"]) == (
        ROWS, 9993, 7)


@pytest.mark.parametrize(
    ("engine", "budget"),
    [("local", "0"), ("local", "6"), ("local", "0.05%"), ("spark", "0"), ("spark", "6")],
)
def test_past_the_budget_the_job_fails_naming_the_first_bad_row(
    engine: str, budget: str, spark: Any, tmp_path: Path
) -> None:
    """On Spark no task passes the budget alone (each holds at most 2 of the 7 bad rows):
    the driver's sum of the committed tasks' counts fails the job."""
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "q")
    data, _features = _bad_parquet(tmp_path)
    master = "local[1]" if engine == "local" else "local[2]"
    request = _request(model_id, data, tmp_path / "out", max_bad_rows=budget, engine=engine,
                       spark_args=SparkArgs(master=master))
    with pytest.raises(SkilError) as caught:
        _run(engine, spark, request)
    message = caught.value.message
    if budget == "0":  # the default: the first bad row fails the job, named by its id
        assert not isinstance(caught.value, BadRowsError)
        first = "the row with id 17" if engine == "local" else "the row with id "
        assert first in message and "--max-bad-rows N to quarantine" in message, message
    else:
        limit = 6 if budget == "6" else 5
        assert isinstance(caught.value, BadRowsError)
        assert f"rows could not be fed to the model, more than the job's budget of {limit}" in (
            message), message
        if engine == "local":  # one worker: the first bad row in the input comes first
            assert "the first is the row with id 17 (shape:" in message, message
        else:
            assert any(f"the first is the row with id {i} " in message for i in BAD), message
    visible = [p.name for p in (tmp_path / "out").iterdir()] if (tmp_path / "out").exists() else []
    assert [n for n in visible if not n.startswith("_")] == [], "no rows a reader sees"
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    assert JobStore().list()[0].state == FAILED


def test_rows_onnxruntime_refuses_are_found_by_bisecting(tmp_path: Path) -> None:
    model = models.gather_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "gather")
    index = (np.arange(1000, dtype=np.int64) % 3).reshape(-1, 1)
    bad = [5, 6, 400, 999]
    index[bad] = 7  # past the table: onnxruntime refuses any batch holding it
    table = pa.table({"id": pa.array(np.arange(1000, dtype=np.int64)),
                      "features": pa.array(index.tolist(), pa.list_(pa.int64()))})
    pq.write_table(table, tmp_path / "idx.parquet", row_group_size=250)
    request = _request(model_id, tmp_path / "idx.parquet", tmp_path / "out", max_bad_rows="10",
                       engine="local")
    result = submit(request)
    assert (result.rows_written, result.rows_quarantined) == (996, 4)
    errors = load_errors(tmp_path / "out").sort_by("id")
    assert errors.column("id").to_pylist() == bad
    assert set(errors.column("stage").to_pylist()) == {"model"}
    out = read_output(tmp_path / "out")
    good = np.setdiff1d(np.arange(1000), bad)
    np.testing.assert_array_equal(out.column("id").to_numpy(), good)
    expected = run_onnxruntime(model, {"index": index[good]})["value"]
    np.testing.assert_allclose(np.array(out.column("value").to_pylist()), expected)


def test_a_share_needs_a_known_row_count_and_remote_outputs_refuse_a_budget(
    tmp_path: Path,
) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "q")
    data, _features = _bad_parquet(tmp_path)
    for value, message in (("abc", "a count of rows"), ("101%", "more than the whole input")):
        with pytest.raises(InvalidValueError, match=message):
            submit(_request(model_id, data, tmp_path / "o", max_bad_rows=value))
    with pytest.raises(InvalidValueError, match="local or mounted output"):
        submit(_request(model_id, data, "s3a://bucket/out", max_bad_rows="5"))
    assert JobStore().list() == []


def test_the_cli_shows_quarantined_rows(tmp_path: Path) -> None:
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "q")
    data, _features = _bad_parquet(tmp_path)
    run = subprocess.run(
        [SKIL, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(tmp_path / "out"), "--max-bad-rows", "7", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    payload = json.loads(run.stdout)
    assert (payload["rows_in"], payload["rows_written"], payload["rows_quarantined"]) == (
        ROWS, 9993, 7)
    shown = subprocess.run([SKIL, "results", "errors", str(tmp_path / "out"), "--json"],
                           capture_output=True, text=True, timeout=120)
    errors = json.loads(shown.stdout)
    assert errors["rows_quarantined"] == 7
    assert sorted(row["id"] for row in errors["head"]) == sorted(BAD)
    human = subprocess.run([SKIL, "results", "errors", str(tmp_path / "out")],
                           capture_output=True, text=True, timeout=120)
    assert "7 quarantined rows" in human.stdout and "cast" in human.stdout


def test_a_job_past_its_budget_is_resumed_with_a_larger_one(tmp_path: Path) -> None:
    """One task holds every bad row, so nothing commits before the budget is passed: the
    plan is kept all the same, and the resume its error suggests works."""
    model_id = SkilContext().add_model_to_experiment(models.small_mlp_model(tmp_path), "q")
    data, _features = _bad_parquet(tmp_path)
    request = _request(model_id, data, tmp_path / "out", max_bad_rows="6", engine="local",
                       spark_args=SparkArgs(master="local[1]"), rows_per_task=ROWS)
    with pytest.raises(BadRowsError, match=r"jobs resume .* --max-bad-rows N") as caught:
        submit(request)
    job_id = JobStore().list()[0].id
    assert f"skil-sdk jobs resume {job_id}" in caught.value.message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_temporary"]
    assert SkilContext().resume(job_id, max_bad_rows=7) == job_id
    assert load_results(tmp_path / "out").num_rows == 9993
    assert load_errors(tmp_path / "out").num_rows == 7
