"""Benchmark of a data lake of small files on Spark: ``predict_batch_udf`` against
``skil-sdk infer --engine spark``, as whole jobs.

Run from the repository root (after ``./dev test`` has set up ``.venv``)::

    .venv/bin/python bench/small_files.py [--files 4000] [--repeat 3]

The data are ``--files`` Parquet files x 250 rows of ``id`` and 16 float32 ``features``
(``bench/local_engine.py``'s small files, reused when present), the model the MLP
16-64-10. Both runners are whole processes timed from outside on ``local[2]``:

(b) ``spark-submit`` of ``bench/_inference_udf.py`` (one pass): ``spark.read.parquet`` of
    the folder, ``predict_batch_udf`` with onnxruntime (one intra-op thread, batches of
    1024), ``write.parquet``;
(c) ``skil-sdk infer --provider parquet --engine spark`` (packed tasks, executors
    writing their own Parquet), in its own SKIL_HOME with the bundle built beforehand.

The runs are interleaved (b, c, b, c, ...) and the medians compared, with the output
files each left. Writes ``bench/results/small_files.json`` and the "## Small files on
Spark" section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _docsection import replace_section
from local_engine import (
    CLI,
    DOC,
    MASTER,
    ROOT,
    ROWS_PER_FILE,
    SMALL_SIZES,
    WORK,
    machine_brief,
    make_small_files,
    make_small_model,
    output_files,
    register,
)

RESULTS = ROOT / "bench" / "results" / "small_files.json"
BATCH = 1024
#: Targets of the Spark-engine issue, as ratios to (b).
WALL_VS_UDF = 0.5
FILES_VS_UDF = 2.0


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_udf(data: Path, model: Path, env: dict[str, str]) -> dict[str, Any]:
    """(b): one whole ``spark-submit`` of ``predict_batch_udf``; wall, rows, output files."""
    from skil_sdk.spark.sparkhome import spark_submit

    out = WORK / "small-files-out" / "udf"
    result_path = WORK / "small-files-udf.json"
    shutil.rmtree(out, ignore_errors=True)
    udf_env = {**env, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [
        str(spark_submit()), "--master", MASTER,
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.python.worker.reuse=true",
        str(ROOT / "bench" / "_inference_udf.py"),
        str(data), str(model), str(out), str(BATCH), str(result_path),
        str(SMALL_SIZES[0]), "1",
    ]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(cmd, env=udf_env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-3000:])
    detail = json.loads(result_path.read_text())
    return {
        "wall_s": round(wall, 3),
        "rows": detail["rows"],
        "input_partitions": detail["partitions"],
        "output_files": output_files(out / "cold"),
    }


def run_skil(model_id: str, data: Path, env: dict[str, str]) -> dict[str, Any]:
    """(c): one whole ``skil-sdk infer --engine spark``; wall, rows, tasks, output files."""
    out = WORK / "small-files-out" / "skil"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    completed = subprocess.run(
        [CLI, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(out), "--master", MASTER, "--engine", "spark",
         "--batch-size", str(BATCH), "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-3000:])
    result = json.loads(completed.stdout)
    return {
        "wall_s": round(wall, 3),
        "rows": result["rows"],
        "tasks": result.get("tasks"),
        "output_files": output_files(out),
    }


def summary(runs: dict[str, list[dict[str, Any]]], rows: int) -> dict[str, Any]:
    """Medians per runner, the row check, and the targets."""
    for name, results in runs.items():
        for result in results:
            if result["rows"] != rows:
                raise SystemExit(f"{name} wrote {result['rows']} rows, not {rows}")
    wall = {name: statistics.median(r["wall_s"] for r in rs) for name, rs in runs.items()}
    files = {name: rs[-1]["output_files"] for name, rs in runs.items()}
    wall_ratio = wall["skil"] / wall["udf"]
    files_ratio = files["skil"] / files["udf"]
    return {
        "median_wall_s": wall,
        "output_files": files,
        "udf_input_partitions": runs["udf"][-1]["input_partitions"],
        "skil_tasks": runs["skil"][-1]["tasks"],
        "targets": [
            {
                "target": f"skil-sdk whole job <= {WALL_VS_UDF} x predict_batch_udf's",
                "measured": round(wall_ratio, 2),
                "met": wall_ratio <= WALL_VS_UDF,
            },
            {
                "target": f"skil-sdk output files <= {FILES_VS_UDF:g} x predict_batch_udf's",
                "measured": round(files_ratio, 2),
                "met": files_ratio <= FILES_VS_UDF,
            },
        ],
    }


def write_doc(result: dict[str, Any]) -> None:
    """The "## Small files on Spark" section of docs/performance.md."""
    s, m = result["summary"], result["machine"]
    w, f = s["median_wall_s"], s["output_files"]
    lines = [
        "## Small files on Spark",
        "",
        f"{result['files']:,} Parquet files x {ROWS_PER_FILE} rows of 16 float32 (one row "
        f"group each), the MLP {'-'.join(map(str, SMALL_SIZES))}, `local[2]`, whole "
        f"processes timed from outside, measured with `{result['command']}` on "
        f"{m['platform']}, Python {m['python']}, {m['cpus']} CPUs (1-minute load average "
        f"{m['load_average_1m']} at the end); medians of {result['repeat']} interleaved "
        "runs.",
        "",
        "| Runner | whole job, s | vs `predict_batch_udf` | Spark tasks | output files |",
        "|---|---:|---:|---:|---:|",
        f"| (b) `spark-submit` + `predict_batch_udf` | {w['udf']:.2f} | 1.00 | "
        f"{s['udf_input_partitions']} | {f['udf']:,} |",
        f"| (c) `skil-sdk infer --engine spark` | {w['skil']:.2f} | "
        f"{w['skil'] / w['udf']:.2f} | {s['skil_tasks']} | {f['skil']:,} |",
        "",
        "(b) reads the folder with `spark.read.parquet` (Spark packs the files into "
        "partitions by `spark.sql.files.maxPartitionBytes` and `openCostInBytes`), applies "
        "`predict_batch_udf` (onnxruntime, one intra-op thread, batches of 1024) and writes "
        "Parquet; (c) packs the files into tasks itself (`--rows-per-task` or a few tasks "
        "per core), its executors write one Parquet file per task. Both include Spark's "
        "start (a JVM, a SparkContext); (c) also its CLI, bundle check and model server.",
        "",
        "| Target | Measured | |",
        "|---|---|---|",
    ]
    for target in s["targets"]:
        met = "met" if target["met"] else "not met"
        lines.append(f"| {target['target']} | {target['measured']:.2f} | {met} |")
    replace_section(DOC, "Small files on Spark", "\n".join(lines) + "\n", gap="\n")


def main() -> None:
    """Prepare the data, the model and the SKIL_HOME; run the interleaved jobs; report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=4000, help="files of 250 rows")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = make_small_files(args.files, ROWS_PER_FILE, WORK / f"local-small-{args.files}x250")
    model = make_small_model(WORK)
    home = WORK / "small-files-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIL_", "PYSPARK_", "PEX_"))}
    env.update({"SKIL_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"})
    model_id = register(model, env)
    subprocess.run([CLI, "build", "--json"], capture_output=True, env=env, check=True)
    log("warming the node cache (one skil-sdk job, not counted)")
    run_skil(model_id, data, env)
    runs: dict[str, list[dict[str, Any]]] = {"udf": [], "skil": []}
    for repeat in range(args.repeat):
        log(f"run {repeat + 1} of {args.repeat}: predict_batch_udf")
        runs["udf"].append(run_udf(data, model, env))
        log(f"run {repeat + 1} of {args.repeat}: skil-sdk infer --engine spark")
        runs["skil"].append(run_skil(model_id, data, env))
    command = ".venv/bin/python bench/small_files.py"
    if args.files != 4000 or args.repeat != 3:
        command += f" --files {args.files} --repeat {args.repeat}"
    result = {
        "command": command,
        "files": args.files,
        "rows": args.files * ROWS_PER_FILE,
        "repeat": args.repeat,
        "runs": runs,
        "summary": summary(runs, args.files * ROWS_PER_FILE),
        "machine": machine_brief(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    write_doc(result)
    shutil.rmtree(WORK / "small-files-out", ignore_errors=True)
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
