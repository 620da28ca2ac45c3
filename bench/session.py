"""Benchmark of the long-lived Spark session: warm jobs against cold ones, and the
session's memory over many jobs.

Run from the repository root (after ``./dev test`` has set up ``.venv``)::

    .venv/bin/python bench/session.py [--rows 300000] [--jobs 20] [--out PATH]

The data and model are ``bench/inference.py``'s (N rows of 784 float32, the MLP
784-512-512-10, both seeded; made under ``bench/work/inference`` and reused), every job
is ``skil-sdk infer --engine spark`` on ``local[2]`` at batch size 1024, timed as a whole
process, in this order:

1. a cold job (no session; bundle built, node cache warm from a first cold job);
2. ``skil-sdk session start`` (its wall time);
3. warm jobs over the N rows: the first (the session's Python workers start and load the
   model), then three more; the steady rate is the median write rate of those three;
4. ``--jobs`` warm jobs over 30k rows, the resident memory (RSS) of the session's whole
   process tree (spark-submit's JVM, the driver program, the Python workers) after each;
5. ``skil-sdk session stop``.

Targets: a warm job's whole process within its work at the steady rate + 1.5 s; the
session's RSS after the last small job within 10 % of its RSS after the second. Writes
``bench/results/session.json`` and the "## Warm session" section of
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import inference as bench
from _docsection import replace_section

ROOT = bench.ROOT
RESULTS = ROOT / "bench" / "results" / "session.json"
OVERHEAD_TARGET_S = 1.5
MEMORY_TARGET = 0.10


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, in MB."""
    table = bench._process_table()
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    total_kb = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        text = bench._read(f"/proc/{pid}/status")
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def _job(model_id: str, data: Path, name: str, env: dict[str, str]) -> dict[str, Any]:
    job = bench.infer_cli(model_id, data, bench.WORK / "out" / f"session-{name}", env, name)
    record = json.loads((bench.WORK / "out" / f"session-{name}" / "_skil_job.json").read_text())
    job["session"] = json.loads(
        bench.check_output([str(bench.BIN / "skil-sdk"), "jobs", "show", job["job_id"],
                            "--json"], env)
    )["details"].get("session")  # fmt: skip
    job["write_rows_per_s"] = round(job["rows"] / record["timings"]["compute_seconds"])
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the big jobs")
    parser.add_argument("--jobs", type=int, default=20, help="small jobs for the memory check")
    parser.add_argument(
        "--idle-gap", type=float, default=75.0,
        help="seconds without a job before the after-idle jobs (Spark stops Python workers "
        "idle for a minute)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results JSON")
    parser.add_argument(
        "--doc-only", action="store_true",
        help="measure nothing: rewrite the docs section from the results JSON (--out)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.doc_only:
        write_doc(json.loads(args.out.read_text()))
        return
    command = " ".join([".venv/bin/python", "bench/session.py", *sys.argv[1:]])
    load_start = bench.load_average()
    work = bench.WORK
    for stale in ("home", "out", "logs", "node-cache-session", "sdk-src"):
        shutil.rmtree(work / stale, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    env = bench.base_env(bench.snapshot_sdk(work / "sdk-src"))
    env["SKIL_NODE_CACHE"] = str(work / "node-cache-session")
    cli = str(bench.BIN / "skil-sdk")
    bench.log("model, data, bundle...")
    model = bench.make_model(work / "model")
    model_id = json.loads(
        bench.check_output([cli, "models", "add", str(model), "-e", "bench", "--json"], env)
    )["id"]
    data = bench.make_data(args.rows, work / f"data-{args.rows}")
    small = bench.make_data(bench.SMALL_ROWS, work / f"data-{bench.SMALL_ROWS}")
    build = json.loads(bench.check_output([cli, "build", "--json"], env))

    bench.log("cold jobs (the first warms the node cache)...")
    _job(model_id, data, "cold-first", env)
    cold = _job(model_id, data, "cold", env)
    bench.log(f"    {cold['cli_wall_s']} s")

    bench.log("session start...")
    started = time.time()
    state = json.loads(
        bench.check_output([cli, "session", "start", "--master", bench.MASTER, "--json"], env)
    )
    start_s = round(time.time() - started, 2)
    try:
        bench.log("warm jobs...")
        first_warm = _job(model_id, data, "warm-first", env)
        warm = [_job(model_id, data, f"warm-{n}", env) for n in range(1, 4)]
        by_rate = sorted(warm, key=lambda j: j["write_rows_per_s"])
        steady = by_rate[len(by_rate) // 2]
        bench.log(f"    {[j['cli_wall_s'] for j in warm]} s; {steady['write_rows_per_s']} rows/s")
        bench.log("the limit (a), right after the warm jobs...")
        from _inference_limit import run_limit

        limit = run_limit(data, model, work / "out" / "session-limit", bench.CORES, bench.BATCH)
        bench.log(f"{args.jobs} small warm jobs (session memory)...")
        memory: list[float] = []
        small_jobs: list[float] = []
        for n in range(args.jobs):
            small_jobs.append(_job(model_id, small, f"small-{n}", env)["cli_wall_s"])
            memory.append(_tree_rss_mb(int(state["submit_pid"])))
        bench.log(f"idle for {args.idle_gap:.0f} s (keep-warm on), then a warm job...")
        time.sleep(args.idle_gap)
        after_idle = _job(model_id, data, "warm-after-idle", env)
    finally:
        bench.check_output([cli, "session", "stop", "--force", "--json"], env)
    bench.log(f"a session with --keep-warm 0: a job, {args.idle_gap:.0f} s idle, a job...")
    start = [cli, "session", "start", "--master", bench.MASTER, "--keep-warm", "0", "--json"]
    bench.check_output(start, env)
    try:
        _job(model_id, small, "no-keep-warm-first", env)
        time.sleep(args.idle_gap)
        after_idle_cold_workers = _job(model_id, data, "no-keep-warm-after-idle", env)
    finally:
        bench.check_output([cli, "session", "stop", "--force", "--json"], env)

    rate = steady["write_rows_per_s"]
    work_s = args.rows / rate
    median_warm = sorted(j["cli_wall_s"] for j in warm)[1]
    # each warm job's time beyond its own write (whole process minus the write action)
    overheads = sorted(round(j["cli_wall_s"] - j["phases_s"]["write"], 2) for j in warm)
    overhead = overheads[len(overheads) // 2]
    growth = memory[-1] / memory[1] - 1 if len(memory) > 1 else 0.0
    sessions = {
        j["session"] for j in [first_warm, *warm, after_idle, after_idle_cold_workers]
    }
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "command": command,
        "machine": bench.machine(),
        "load_average_start": load_start,
        "load_average_end": bench.load_average(),
        "setup": {
            "rows": args.rows,
            "small_rows": bench.SMALL_ROWS,
            "master": bench.MASTER,
            "batch_size": bench.BATCH,
            "bundle_hash": build["hash"],
        },
        "limit": limit,
        "cold_job": cold,
        "session_start_s": start_s,
        "first_warm_job": first_warm,
        "warm_jobs": warm,
        "warm_sessions_seen": sorted(str(s) for s in sessions),
        "small_jobs_wall_s": small_jobs,
        "idle_gap_s": args.idle_gap,
        "warm_job_after_idle": after_idle,
        "warm_job_after_idle_without_keep_warm": after_idle_cold_workers,
        "session_rss_mb_after_each_small_job": memory,
        "summary": {
            "cold_job_s": cold["cli_wall_s"],
            "first_warm_job_s": first_warm["cli_wall_s"],
            "warm_job_s": median_warm,
            "steady_rows_per_s": rate,
            "work_at_steady_rate_s": round(work_s, 2),
            "warm_overheads_s": overheads,
            "warm_overhead_s": overhead,
            "limit_rows_per_s": limit["rows_per_s"],
            "steady_over_limit": round(rate / limit["rows_per_s"], 3),
            "warm_over_cold": round(median_warm / cold["cli_wall_s"], 3),
            "small_warm_job_median_s": sorted(small_jobs)[len(small_jobs) // 2],
            "after_idle_s": after_idle["cli_wall_s"],
            "after_idle_without_keep_warm_s": after_idle_cold_workers["cli_wall_s"],
            "session_rss_growth": round(growth, 3),
            "targets": [
                {
                    "target": f"warm job <= its work + {OVERHEAD_TARGET_S} s (median of 3)",
                    "measured": overhead,
                    "met": overhead <= OVERHEAD_TARGET_S,
                },
                {
                    "target": f"session RSS flat over {args.jobs} jobs (within 10 %)",
                    "measured": round(growth, 3),
                    "met": abs(growth) <= MEMORY_TARGET,
                },
            ],
        },
    }
    if sessions != {"warm"}:
        raise SystemExit(f"a warm job did not run in the session: {sorted(map(str, sessions))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.out.resolve() == RESULTS.resolve():
        write_doc(results)
    print(json.dumps(results["summary"], indent=2))


#: The phases of ``bench/inference.py``'s ``infer_cli``, as they read for a warm job.
_PHASES = {
    "cli_start_to_spark_submit": "command start to the hand-over (CLI, bundle check, job record)",
    "spark_submit_to_driver_program": "hand-over to the session's driver",
    "driver_program_to_write": "driver to the write (plugins, listing, plan)",
    "write": "the write",
    "write_end_to_success_seen": "write end to `_SUCCESS`",
    "success_to_cli_exit": "`_SUCCESS` to the command's exit",
}


def write_doc(r: dict[str, Any]) -> None:
    """Replace (or append) the "## Warm session" section of docs/performance.md."""
    s, setup = r["summary"], r["setup"]
    rows = setup["rows"]
    phases = r["warm_jobs"][1]["phases_s"]
    lines = [
        "## Warm session",
        "",
        f"`{r['command']}` ({r.get('date', '')} UTC) on {r['machine']['cpu_model']} "
        f"({r['machine']['nproc']} cores), {r['setup']['master']}, `--engine spark`, the "
        "data and model of [Inference](#inference); each job is a whole `skil-sdk infer` "
        f"process. Load averages {r['load_average_start']} at the start and "
        f"{r['load_average_end']} at the end: the machine was shared, so compare within "
        "this table only. See [the session](session.md).",
        "",
        "| | s |",
        "|---|---:|",
        f"| Cold job, {rows:,} rows (own spark-submit; bundle and node cache warm) | "
        f"{s['cold_job_s']:.2f} |",
        f"| `skil-sdk session start` | {r['session_start_s']:.2f} |",
        f"| First warm job, {rows:,} rows (workers start, model loads) | "
        f"{s['first_warm_job_s']:.2f} |",
        f"| Warm job, {rows:,} rows (median of 3) | {s['warm_job_s']:.2f} "
        f"({s['warm_over_cold']:.2f} of cold) |",
        f"| its write at the session's steady rate ({s['steady_rows_per_s']:,} rows/s, "
        f"{s['steady_over_limit']:.2f} of the limit's {s['limit_rows_per_s']:,} measured "
        f"right after) | {s['work_at_steady_rate_s']:.2f} |",
        "| each warm job's time beyond its write (the 3 jobs) | "
        + ", ".join(f"{v:.2f}" for v in s["warm_overheads_s"]) + " |",
        f"| Warm job, {setup['small_rows']:,} rows (median of "
        f"{len(r['small_jobs_wall_s'])}) | {s['small_warm_job_median_s']:.2f} |",
        f"| Warm job, {rows:,} rows, after {r['idle_gap_s']:.0f} s without a job "
        f"(keep-warm on, the default) | {s['after_idle_s']:.2f} |",
        f"| the same with `--keep-warm 0` (Spark stopped the idle Python workers) | "
        f"{s['after_idle_without_keep_warm_s']:.2f} |",
        "",
        "Where a warm job's time goes (the second of the three), s: "
        + ", ".join(f"{_PHASES[k]} {v:.2f}" for k, v in phases.items() if k in _PHASES)
        + ".",
        "",
        f"The session's resident memory (all its processes) after each of the "
        f"{len(r['session_rss_mb_after_each_small_job'])} small jobs, MB: "
        + ", ".join(f"{v:,.0f}" for v in r["session_rss_mb_after_each_small_job"])
        + ".",
        "",
        "| Target | Measured | |",
        "|---|---|---|",
    ]
    for t in s["targets"]:
        measured = (
            f"+{t['measured']:.2f} s" if "its work" in t["target"]
            else f"{t['measured'] * 100:+.1f} %"
        )
        lines.append(f"| {t['target']} | {measured} | {'met' if t['met'] else 'not met'} |")
    replace_section(bench.DOC, "Warm session", "\n".join(lines) + "\n", gap="\n")


if __name__ == "__main__":
    main()
