"""Benchmark of the local engine: whole ``skil-sdk infer`` processes against the limit.

Run from the repository root::

    .venv/bin/python bench/local_engine.py [--rows 300000] [--repeat 3]

The data and model of ``bench/inference.py`` (N rows x 784 float32, MLP 784-512-512-10,
row groups of 16,384), 2 worker processes (``local[2]``). Timed from outside, interleaved
``--repeat`` times: ``skil-sdk infer --engine local`` and ``--engine spark`` (a bundle
already built, so the first Spark run also lays it out on this machine), and the limit
(bare pyarrow + onnxruntime, one process per core, ``bench/_inference_limit.py``). Writes
``bench/results/local_engine.json`` and the "## Local engine" section of
``docs/performance.md``.
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
from inference import make_data, make_model

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "local_engine.json"
DOC = ROOT / "docs" / "performance.md"
CLI = str(Path(sys.executable).parent / "skil-sdk")
COMMAND = ".venv/bin/python bench/local_engine.py"


def infer(model_id: str, data: Path, engine: str, env: dict[str, str]) -> dict[str, Any]:
    """One whole ``skil-sdk infer`` process; its wall time and its own report."""
    out = Path(tempfile.mkdtemp(dir=WORK)) / "out"
    started = time.perf_counter()
    completed = subprocess.run(
        [CLI, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(out), "--master", "local[2]", "--engine", engine,
         "--json"],
        capture_output=True, text=True, env=env, check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-3000:])
    result = json.loads(completed.stdout)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"wall_s": round(wall, 3), "rows": result["rows"], "job_s": round(result["seconds"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = make_data(args.rows, WORK / f"local-data-{args.rows}")
    model = make_model(WORK)
    home = WORK / "local-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "SKIL_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    added = subprocess.run(
        [CLI, "models", "add", str(model), "--experiment", "bench", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )
    model_id = json.loads(added.stdout)["id"]
    subprocess.run([CLI, "build", "--json"], capture_output=True, env=env, check=True)
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "spark": [], "limit": []}
    for _ in range(args.repeat):
        runs["local"].append(infer(model_id, data, "local", env))
        runs["spark"].append(infer(model_id, data, "spark", env))
        limit = run_limit(data, model, WORK / "local-limit-out", 2, 1024)
        shutil.rmtree(WORK / "local-limit-out", ignore_errors=True)
        runs["limit"].append({"wall_s": limit["start_to_end_s"], "rows_per_s": limit["rows_per_s"]})
    median = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    result = {
        "command": COMMAND + (f" --rows {args.rows}" if args.rows != 300_000 else ""),
        "rows": args.rows,
        "repeat": args.repeat,
        "median_wall_s": {k: round(v, 3) for k, v in median.items()},
        "limit_rows_per_s": statistics.median(r["rows_per_s"] for r in runs["limit"]),
        "local_rows_per_s": round(args.rows / median["local"]),
        "runs": runs,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    write_doc(result)
    print(json.dumps(result["median_wall_s"], indent=2))


def write_doc(r: dict[str, Any]) -> None:
    """Replace (or add) the "## Local engine" section of docs/performance.md."""
    m, w = r["machine"], r["median_wall_s"]
    section = (
        "## Local engine\n\n"
        f"Whole `skil-sdk infer` processes over {r['rows']:,} rows x 784 float32 (the MLP "
        "784-512-512-10 of the inference benchmark), `--master local[2]`, measured with "
        f"`{r['command']}` on {m['platform']}, Python {m['python']}, {m['cpus']} CPUs (1-minute "
        f"load average {m['load_average_1m']}); medians of {r['repeat']} interleaved runs. The "
        "limit is bare pyarrow + onnxruntime in one process per core, from its processes' "
        "start to their last row (it starts no CLI and checks nothing).\n\n"
        "| Run | wall s | vs limit |\n|---|---:|---:|\n"
        f"| limit (bare pyarrow + onnxruntime) | {w['limit']:.2f} | 1.00 |\n"
        f"| `skil-sdk infer --engine local` | {w['local']:.2f} | {w['local'] / w['limit']:.2f} |\n"
        f"| `skil-sdk infer --engine spark` | {w['spark']:.2f} | {w['spark'] / w['limit']:.2f} |\n"
    )
    replace_section(DOC, "Local engine", section)


if __name__ == "__main__":
    main()
