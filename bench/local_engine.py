"""Benchmark of the local engine: whole ``skil-sdk infer`` processes, Daft and the limit.

Run from the repository root::

    .venv/bin/python bench/local_engine.py [--rows 300000] [--files 4000] [--repeat 3]
        [--skip-spark-small]

Two jobs, 2 workers each (``--master local[2]``; onnxruntime with one intra-op thread,
batches of 1,024):

1. one file: the data and model of ``bench/inference.py`` (N rows x 784 float32, row
   groups of 16,384, the MLP 784-512-512-10);
2. small files: ``--files`` Parquet files x 250 rows of ``id`` (int64) and ``features``
   (16 float32), one row group each, and an MLP 16-64-10.

Timed from outside as whole processes, interleaved ``--repeat`` times: ``skil-sdk infer
--engine local`` and (job 1 only) ``--engine spark`` (a bundle already built, so the
first Spark run also lays it out on this machine), Daft (``bench/_inference_daft.py``
run by the Python of its own virtualenv, ``bench/work/daft-venv``, which this script
creates with pip when it is missing) and the limit (bare pyarrow + onnxruntime, one
process per core, ``bench/_inference_limit.py``). ``--engine spark`` runs job 2 once,
after the loop, unless ``--skip-spark-small``. Writes ``bench/results/local_engine.json``
and the "## Local engine" section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _docsection import replace_section
from _inference_limit import run_limit
from inference import DATA_SEED, MODEL_SEED, make_data, make_model

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "local_engine.json"
DOC = ROOT / "docs" / "performance.md"
CLI = str(Path(sys.executable).parent / "skil-sdk")
COMMAND = ".venv/bin/python bench/local_engine.py"
DAFT_SCRIPT = ROOT / "bench" / "_inference_daft.py"
DAFT_VENV = WORK / "daft-venv"
DAFT_PACKAGES = ("daft", "onnxruntime", "pyarrow", "numpy")
MASTER = "local[2]"
WORKERS = 2
BATCH = 1024
OUTPUTS = 10
ROWS = 300_000
FILES = 4_000
ROWS_PER_FILE = 250
SMALL_SIZES = (16, 64, OUTPUTS)
LOCAL_VS_DAFT = 1.0
STEADY_VS_LIMIT = 0.9


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs


def make_small_files(files: int, rows_per_file: int, directory: Path) -> Path:
    """``files`` Parquet files of ``rows_per_file`` rows (``id``, 16 float32 ``features``).

    The layout of :func:`inference.make_data` (``features`` a ``list<float32>``), one row
    group per file, ids running on across the files; an existing complete set is reused.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = directory.parent / f"{directory.name}.complete"
    if marker.exists() and directory.is_dir():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    width = SMALL_SIZES[0]
    rng = np.random.default_rng(DATA_SEED)
    schema = pa.schema([("id", pa.int64()), ("features", pa.list_(pa.float32()))])
    offsets = pa.array(np.arange(rows_per_file + 1, dtype=np.int32) * width)
    for index in range(files):
        values = rng.standard_normal((rows_per_file, width), dtype=np.float32)
        column = pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))
        start = index * rows_per_file
        ids = pa.array(np.arange(start, start + rows_per_file, dtype=np.int64))
        table = pa.table({"id": ids, "features": column}, schema=schema)
        pq.write_table(table, directory / f"part-{index:05d}.parquet")
    marker.write_text(json.dumps({"files": files, "rows_per_file": rows_per_file}))
    return directory


def make_small_model(directory: Path) -> Path:
    """The MLP 16-64-10, built as :func:`inference.make_model` builds its MLP (seed 0)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from _model_fixtures import mlp_model

    return Path(mlp_model(directory, SMALL_SIZES, MODEL_SEED, name="mlp-16-64-10.onnx"))


def daft_python(venv: Path = DAFT_VENV) -> Path:
    """The Python of the benchmark's Daft virtualenv; created (pip) unless it imports Daft."""
    python = venv / "bin" / "python"
    probe = "import daft, numpy, onnxruntime, pyarrow"
    if python.exists() and subprocess.run([python, "-c", probe], check=False).returncode == 0:
        return python
    log(f"creating {venv} (pip install {' '.join(DAFT_PACKAGES)})")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *DAFT_PACKAGES],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if installed.returncode != 0:
        raise SystemExit(f"pip install into {venv} failed:\n{installed.stderr[-3000:]}")
    return python


def daft_version(python: Path) -> str:
    """The version of Daft that ``python`` imports."""
    probe = "import daft; print(daft.__version__)"
    return subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip()


def machine_brief() -> dict[str, Any]:
    """The platform, Python, CPU count and the 1-minute load average now."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def register(model: Path, env: dict[str, str]) -> str:
    """``skil-sdk models add``; the model's id."""
    added = subprocess.run(
        [CLI, "models", "add", str(model), "--experiment", "bench", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(added.stdout)["id"]


# ---------------------------------------------------------------- the runners


def output_files(out: Path) -> int:
    """How many ``*.parquet`` files a run wrote (at any depth)."""
    return sum(1 for _ in out.rglob("*.parquet"))


def after_first_tasks(out: Path, workers: int = WORKERS) -> int | None:
    """Rows/s after the first ``workers`` tasks were committed (the part files' mtimes).

    The rows of the later part files over the time from the ``workers``-th file to the
    last: a steady state without the workers' start and first tasks (None with too few
    files).
    """
    import pyarrow.parquet as pq

    parts = sorted(
        (p.stat().st_mtime, pq.read_metadata(p).num_rows) for p in out.glob("part-*.parquet")
    )
    if len(parts) <= workers or parts[-1][0] <= parts[workers - 1][0]:
        return None
    rows = sum(count for _, count in parts[workers:])
    return round(rows / (parts[-1][0] - parts[workers - 1][0]))


def infer(model_id: str, data: Path, engine: str, env: dict[str, str]) -> dict[str, Any]:
    """One whole ``skil-sdk infer`` process; its wall time, its own report, its output."""
    out = Path(tempfile.mkdtemp(dir=WORK)) / "out"
    try:
        return _infer(model_id, data, engine, env, out)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def _infer(
    model_id: str, data: Path, engine: str, env: dict[str, str], out: Path
) -> dict[str, Any]:
    """:func:`infer` writing to ``out``."""
    started = time.perf_counter()
    completed = subprocess.run(
        [CLI, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(out), "--master", MASTER, "--engine", engine,
         "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-3000:])
    result = json.loads(completed.stdout)
    record = json.loads((out / "_skil_job.json").read_text())
    compute = record["timings"]["compute_seconds"]
    return {
        "wall_s": round(wall, 3),
        "rows": result["rows"],
        "job_s": round(result["seconds"], 3),
        "compute_s": round(compute, 3),
        "steady_rows_per_s": round(result["rows"] / compute),
        "after_first_tasks_rows_per_s": after_first_tasks(out),
        "output_files": output_files(out),
    }


def daft_env() -> dict[str, str]:
    """This environment without the SDK's variables, Daft's telemetry off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("SKIL_")
    }
    return {**env, "DO_NOT_TRACK": "1", "DAFT_ANALYTICS_ENABLED": "0"}


def run_daft(python: Path, data: Path, model: Path) -> dict[str, Any]:
    """One whole Daft process (``bench/_inference_daft.py``); its wall time and report."""
    out = Path(tempfile.mkdtemp(dir=WORK)) / "out"
    try:
        return _run_daft(python, data, model, out)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def _run_daft(python: Path, data: Path, model: Path, out: Path) -> dict[str, Any]:
    """:func:`run_daft` writing to ``out``."""
    started = time.perf_counter()
    completed = subprocess.run(
        [python, str(DAFT_SCRIPT), str(data), str(model), str(out), "--outputs", str(OUTPUTS),
         "--batch-size", str(BATCH), "--workers", str(WORKERS)],
        capture_output=True, text=True, env=daft_env(), check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"Daft failed:\n{completed.stderr[-3000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(wall, 3),
        "rows": report["rows"],
        "query_s": report["query_s"],
        "import_s": report["import_s"],
        "output_files": report["files"],
    }


def limit(data: Path, model: Path) -> dict[str, Any]:
    """The limit over ``data`` (a file or a directory of files), its output removed."""
    out = WORK / "local-limit-out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        result = run_limit(data, model, out, WORKERS, BATCH)
        files = output_files(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "wall_s": result["start_to_end_s"],
        "rows": result["rows"],
        "rows_per_s": result["rows_per_s"],
        "output_files": files,
    }


def check_rows(runs: dict[str, list[dict[str, Any]]], rows: int) -> None:
    """Every run processed every row."""
    for name, results in runs.items():
        for run in results:
            if run["rows"] != rows:
                raise SystemExit(f"{name} wrote {run['rows']} rows, not {rows}")


# ---------------------------------------------------------------- the jobs


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median wall times, the steady states, and the output file counts of each runner."""
    median = {k: round(statistics.median(r["wall_s"] for r in v), 3) for k, v in runs.items()}
    return {
        "median_wall_s": median,
        "limit_rows_per_s": round(statistics.median(r["rows_per_s"] for r in runs["limit"])),
        "local_steady_rows_per_s": round(
            statistics.median(r["steady_rows_per_s"] for r in runs["local"])
        ),
        "local_after_first_tasks_rows_per_s": _median_or_none(
            [r["after_first_tasks_rows_per_s"] for r in runs["local"]]
        ),
        "output_files": {k: v[-1]["output_files"] for k, v in runs.items()},
    }


def _median_or_none(values: list[int | None]) -> int | None:
    """The median of the values that are not None (None when none is)."""
    known = [v for v in values if v is not None]
    return round(statistics.median(known)) if known else None


def job_one(
    rows: int, repeat: int, model_id: str, model: Path, python: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Job 1 (one file), interleaved: local, spark, Daft, limit."""
    data = make_data(rows, WORK / f"local-data-{rows}")
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "spark": [], "daft": [], "limit": []}
    for index in range(repeat):
        log(f"job 1 ({rows:,} rows), run {index + 1} of {repeat}")
        runs["local"].append(infer(model_id, data, "local", env))
        runs["spark"].append(infer(model_id, data, "spark", env))
        runs["daft"].append(run_daft(python, data.parent, model))
        runs["limit"].append(limit(data, model))
    check_rows(runs, rows)
    return {**summary(runs), "runs": runs}


def job_two(
    files: int,
    repeat: int,
    skip_spark: bool,
    model_id: str,
    model: Path,
    python: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """Job 2 (small files), interleaved: local, Daft, limit; then Spark once."""
    data = make_small_files(files, ROWS_PER_FILE, WORK / f"local-small-{files}x{ROWS_PER_FILE}")
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "daft": [], "limit": []}
    for index in range(repeat):
        log(f"job 2 ({files:,} files), run {index + 1} of {repeat}")
        runs["local"].append(infer(model_id, data, "local", env))
        runs["daft"].append(run_daft(python, data, model))
        runs["limit"].append(limit(data, model))
    if not skip_spark:
        log(f"job 2 ({files:,} files), --engine spark once")
        runs["spark"] = [infer(model_id, data, "spark", env)]
    check_rows(runs, files * ROWS_PER_FILE)
    return {
        "files": files,
        "rows_per_file": ROWS_PER_FILE,
        "rows": files * ROWS_PER_FILE,
        "model": "MLP " + "-".join(map(str, SMALL_SIZES)),
        "spark_runs": 0 if skip_spark else 1,
        **summary(runs),
        "runs": runs,
    }


def targets(one: dict[str, Any], two: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: local <= 1.0x Daft (whole processes), steady >= 0.9x limit."""
    found = []
    for name, job in (("one file", one), ("small files", two)):
        w = job["median_wall_s"]
        vs_daft = w["local"] / w["daft"]
        found.append({
            "target": f"`--engine local` whole process <= {LOCAL_VS_DAFT:.1f}x Daft's, {name}",
            "measured": round(vs_daft, 3),
            "met": vs_daft <= LOCAL_VS_DAFT,
        })  # fmt: skip
        # like the limit's steady state, from every worker warm (its first task done) to
        # the last row; rows over the compute seconds where a job has too few tasks to say
        warm = job["local_after_first_tasks_rows_per_s"] or job["local_steady_rows_per_s"]
        steady = warm / job["limit_rows_per_s"]
        found.append({
            "target": f"`--engine local` steady state >= {STEADY_VS_LIMIT:.1f}x the limit, {name}",
            "measured": round(steady, 3),
            "met": steady >= STEADY_VS_LIMIT,
        })  # fmt: skip
    return found


# ---------------------------------------------------------------- main


def command(args: argparse.Namespace) -> str:
    """The command line of this run (the options that differ from their defaults)."""
    parts = [COMMAND]
    if args.rows != ROWS:
        parts.append(f"--rows {args.rows}")
    if args.files != FILES:
        parts.append(f"--files {args.files}")
    if args.repeat != 3:
        parts.append(f"--repeat {args.repeat}")
    if args.skip_spark_small:
        parts.append("--skip-spark-small")
    return " ".join(parts)


def parse() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of job 1")
    parser.add_argument("--files", type=int, default=FILES, help="files of job 2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--skip-spark-small", action="store_true", help="no --engine spark run of job 2"
    )
    return parser.parse_args()


def main() -> None:
    """Prepare the models, the SKIL_HOME and Daft; run both jobs; write the results."""
    args = parse()
    WORK.mkdir(parents=True, exist_ok=True)
    python = daft_python()
    model = make_model(WORK)
    small_model = make_small_model(WORK)
    home = WORK / "local-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "SKIL_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    model_id, small_id = register(model, env), register(small_model, env)
    subprocess.run([CLI, "build", "--json"], capture_output=True, env=env, check=True)
    one = job_one(args.rows, args.repeat, model_id, model, python, env)
    two = job_two(
        args.files, args.repeat, args.skip_spark_small, small_id, small_model, python, env
    )
    result = {
        "command": command(args),
        "rows": args.rows,
        "repeat": args.repeat,
        **one,
        "local_rows_per_s": round(args.rows / one["median_wall_s"]["local"]),
        "small_files": two,
        "targets": targets(one, two),
        "daft": {"version": daft_version(python), "venv": str(DAFT_VENV.relative_to(ROOT))},
        "machine": machine_brief(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    write_doc(result)
    print(json.dumps({"one_file": one["median_wall_s"], "small_files": two["median_wall_s"]}))


# ---------------------------------------------------------------- the doc


def _cells(job: dict[str, Any], name: str) -> str:
    """Wall s, vs Daft, vs limit and output files of one runner in one job (or n/a)."""
    w = job["median_wall_s"]
    if name not in w:
        return "n/a | n/a | n/a | n/a"
    files = job["output_files"][name]
    return f"{w[name]:.2f} | {w[name] / w['daft']:.2f} | {w[name] / w['limit']:.2f} | {files:,}"


def _table(r: dict[str, Any]) -> list[str]:
    """The whole-process table, both jobs side by side."""
    two = r["small_files"]
    spark_note = " (small files: 1 run)" if two["spark_runs"] else ""
    runners = (
        ("limit", "limit (bare pyarrow + onnxruntime)"),
        ("local", "`skil-sdk infer --engine local`"),
        ("spark", f"`skil-sdk infer --engine spark`{spark_note}"),
        ("daft", f"Daft {r['daft']['version']}"),
    )
    return [
        "| Run | one file: wall s | vs Daft | vs limit | output files | small files: wall s "
        "| vs Daft | vs limit | output files |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {label} | {_cells(r, key)} | {_cells(two, key)} |" for key, label in runners),
    ]


def _steady(r: dict[str, Any]) -> list[str]:
    """The steady-state table: the limit's rows/s and the local engine's."""
    two = r["small_files"]

    def share(job: dict[str, Any]) -> str:
        return f"{job['local_steady_rows_per_s'] / job['limit_rows_per_s']:.2f}"

    def after(job: dict[str, Any]) -> str:
        value = job["local_after_first_tasks_rows_per_s"]
        if value is None:
            return "n/a"
        return f"{value:,} ({value / job['limit_rows_per_s']:.2f})"

    return [
        "| Steady state, rows/s | one file | small files |",
        "|---|---:|---:|",
        f"| limit | {r['limit_rows_per_s']:,} | {two['limit_rows_per_s']:,} |",
        f"| `skil-sdk infer --engine local`, rows / compute seconds | "
        f"{r['local_steady_rows_per_s']:,} | {two['local_steady_rows_per_s']:,} |",
        f"| share of the limit | {share(r)} | {share(two)} |",
        f"| `--engine local` after the first task of each worker (share) | {after(r)} | "
        f"{after(two)} |",
    ]


def write_doc(r: dict[str, Any]) -> None:
    """Replace (or add) the "## Local engine" section of docs/performance.md."""
    m, two = r["machine"], r["small_files"]
    met = [t for t in r["targets"] if t["met"]]
    verdict = (
        "All targets are met."
        if len(met) == len(r["targets"])
        else "Targets not met: "
        + "; ".join(f"{t['target']} ({t['measured']:.2f})" for t in r["targets"] if not t["met"])
        + "."
    )
    spark_small = (
        "`--engine spark` ran job 2 once, after the interleaved runs"
        if two["spark_runs"]
        else "`--engine spark` did not run job 2 (`--skip-spark-small`)"
    )
    lines = [
        "## Local engine",
        "",
        "Whole processes, timed from outside, 2 workers (`--master local[2]`), onnxruntime "
        f"with one intra-op thread in batches of {BATCH:,}, measured with `{r['command']}` on "
        f"{m['platform']}, Python {m['python']}, {m['cpus']} CPUs (1-minute load average "
        f"{m['load_average_1m']} at the end); medians of {r['repeat']} interleaved runs. Two "
        f"jobs: one file of {r['rows']:,} rows x 784 float32 (row groups of 16,384; the MLP "
        "784-512-512-10 of the inference benchmark), and small files: "
        f"{two['files']:,} Parquet files x {two['rows_per_file']:,} rows of 16 float32 (one "
        f"row group each; an {two['model']}). {spark_small}.",
        "",
        *_table(r),
        "",
        *_steady(r),
        "",
        "The limit is bare pyarrow + onnxruntime in one process per core (a task per row "
        "group of the one file, per file of the small files; one output file per task), from "
        "its processes' start to their last row (it starts no CLI and checks nothing); its "
        "steady state is from every process having its session warm to the last row. Daft "
        f"{r['daft']['version']} runs in its own virtualenv (`{r['daft']['venv']}`) as one "
        "whole process (`bench/_inference_daft.py`): `daft.read_parquet`, a `@daft.cls` that "
        "loads the model once per instance with a `@daft.method.batch` over `features` "
        f"(`max_concurrency={WORKERS}`, a native runner of {WORKERS} threads), "
        "`write_parquet` of `id` and the output. The local engine's steady state is rows "
        "over the job's compute seconds (`_skil_job.json`: from the model's check to the "
        "last commit, so it includes the workers' start and their first batches); the last "
        "line takes the rows of the part files committed after each worker's first (by "
        "their mtimes) over the time from the last of those first files to the last part "
        "file: like the limit's, from warm workers to the last row, so the target uses it "
        "(rows over compute seconds where a job has no more tasks than workers).",
        "",
        "| Target | Measured | |",
        "|---|---:|---|",
        *(
            f"| {t['target']} | {t['measured']:.2f} | {'met' if t['met'] else 'not met'} |"
            for t in r["targets"]
        ),
        "",
        verdict,
        "",
    ]
    replace_section(DOC, "Local engine", "\n".join(lines))


if __name__ == "__main__":
    main()
