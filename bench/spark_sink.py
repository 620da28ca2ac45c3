"""Benchmark of the Spark engine's output: two skil-sdk installations side by side.

Run from the repository root, with the ``skil-sdk`` of another checkout (an earlier
commit's virtualenv, say) as ``--before``::

    .venv/bin/python bench/spark_sink.py --before /path/to/other/.venv/bin/skil-sdk

Both run ``skil-sdk infer --engine spark --master local[2]`` over the 300,000 rows x 784
float32 of ``bench/inference.py`` and its MLP, interleaved ``--repeat`` times, each in
its own SKIL_HOME (bundle built first). Reports the median compute seconds (from
``_skil_job.json``: the Spark job, from its first task to its last commit) and whole
processes, and writes ``bench/results/spark_sink.json``.
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

from inference import make_data, make_model

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "spark_sink.json"
THIS = str(Path(sys.executable).parent / "skil-sdk")


def prepare(name: str, cli: str, model: Path) -> tuple[str, dict[str, str]]:
    """A SKIL_HOME for ``cli`` with the model added and the bundle built."""
    home = WORK / f"sink-home-{name}"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "SKIL_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    added = subprocess.run([cli, "models", "add", str(model), "--experiment", "bench",
                            "--json"], env=env, capture_output=True, text=True, check=True)
    subprocess.run([cli, "build", "--json"], env=env, capture_output=True, check=True)
    return json.loads(added.stdout)["id"], env


def run(name: str, cli: str, model_id: str, env: dict[str, str], data: Path) -> dict[str, Any]:
    """One whole Spark job; its wall and compute seconds and output files."""
    out = WORK / f"sink-out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [cli, "infer", "--model", model_id, "--provider", "parquet", "--provider-option",
         f"path={data}", "--output", str(out), "--master", "local[2]", "--engine", "spark",
         "--json"], env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    meta = json.loads((out / "_skil_job.json").read_text())
    files = len(list(out.glob("*.parquet")))
    shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": round(wall, 2), "compute_s": meta["timings"]["compute_seconds"],
            "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the other installation's skil-sdk")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = make_data(args.rows, WORK / f"local-data-{args.rows}")
    model = make_model(WORK)
    clis = {"before": args.before, "this": THIS}
    homes = {name: prepare(name, cli, model) for name, cli in clis.items()}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in clis}
    for _ in range(args.repeat):
        for name, cli in clis.items():
            runs[name].append(run(name, cli, *homes[name], data))
    medians = {
        name: {
            "compute_s": statistics.median(r["compute_s"] for r in rs),
            "wall_s": statistics.median(r["wall_s"] for r in rs),
            "rows_per_s": round(args.rows / statistics.median(r["compute_s"] for r in rs)),
        }
        for name, rs in runs.items()
    }
    result = {"rows": args.rows, "repeat": args.repeat, "medians": medians, "runs": runs}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(medians, indent=2))


if __name__ == "__main__":
    main()
