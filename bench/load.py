"""Load test of the predict API: 32 concurrent clients against ``skil-sdk serve`` on loopback.

Run from the repository root::

    .venv/bin/python bench/load.py [--clients 32] [--seconds 20] [--rows 16]

Starts ``skil-sdk serve`` in a subprocess (auth on, a fresh SKIL_HOME in
``bench/work-load``), adds the 784-512-512-10 MLP, and runs ``--clients`` threads, each
with its own keep-alive httpx client, sending ``POST /models/{id}/predict`` with
``--rows`` rows per request for ``--seconds`` seconds: half of the clients send JSON,
half Arrow IPC streams. Every response is checked (status 200, one output row per input
row); any other outcome counts as an error. Writes ``bench/results/load.json`` and the
"## Load" section of ``docs/performance.md``; exits 1 if there was any error.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
from _docsection import replace_section
from _served_mlp import ARROW, arrow_body, served_mlp

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work-load"
RESULTS = ROOT / "bench" / "results" / "load.json"
DOC = ROOT / "docs" / "performance.md"
FORMATS = ("json", "arrow")


def _rows_in(response: httpx.Response, arrow: bool) -> int:
    if arrow:
        table = pa.ipc.open_stream(io.BytesIO(response.content)).read_all()
        return int(table.num_rows)
    return len(response.json()["outputs"]["output"])


class _Client(threading.Thread):
    """One client: sends the same request until the deadline, timing each one."""

    def __init__(
        self, url: str, token: str, path: str, fmt: str, body: bytes, rows: int, start: Any
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.path, self.fmt, self.body = url, token, path, fmt, body
        self.rows = rows
        self.start_event = start
        self.deadline = 0.0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        arrow = self.fmt == "arrow"
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": ARROW if arrow else "application/json",
        }
        with httpx.Client(base_url=self.url, headers=headers, timeout=120) as client:
            self.start_event.wait()
            while time.perf_counter() < self.deadline:
                began = time.perf_counter()
                try:
                    response = client.post(self.path, content=self.body)
                    if response.status_code != 200:
                        self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                        continue
                    if _rows_in(response, arrow) != self.rows:
                        self.errors.append("wrong number of output rows")
                        continue
                except (httpx.HTTPError, ValueError, pa.ArrowException) as exc:
                    self.errors.append(repr(exc)[:200])
                    continue
                self.latencies.append(time.perf_counter() - began)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {"p50_ms": 0.0, "p99_ms": 0.0}
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32, help="Concurrent clients.")
    parser.add_argument("--seconds", type=float, default=20.0, help="How long to send.")
    parser.add_argument("--rows", type=int, default=16, help="Rows per request.")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with served_mlp(WORK) as served:
        url, token = served.url, served.token
        rows = np.random.default_rng(0).random((args.rows, 784), dtype=np.float32)
        bodies = {
            "json": json.dumps({"instances": rows.tolist()}).encode(),
            "arrow": arrow_body(rows),
        }
        start = threading.Event()
        path = f"/models/{served.model_id}/predict"
        clients = [
            _Client(url, token, path, FORMATS[i % 2], bodies[FORMATS[i % 2]], args.rows, start)
            for i in range(args.clients)
        ]
        for client in clients:
            client.start()
        httpx.post(url + path, content=bodies["arrow"], timeout=120,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": ARROW})
        began = time.perf_counter()
        for client in clients:
            client.deadline = began + args.seconds
        start.set()
        for client in clients:
            client.join(args.seconds + 180)
        elapsed = time.perf_counter() - began
    import onnxruntime

    every = [lat for c in clients for lat in c.latencies]
    errors = [e for c in clients for e in c.errors]
    per_format = []
    for fmt in FORMATS:
        mine = [lat for c in clients if c.fmt == fmt for lat in c.latencies]
        per_format.append(
            {
                "format": fmt,
                "clients": sum(1 for c in clients if c.fmt == fmt),
                "requests": len(mine),
                "errors": sum(len(c.errors) for c in clients if c.fmt == fmt),
                **_percentiles(mine),
                "request_bytes": len(bodies[fmt]),
            }
        )
    results = {
        "command": "python bench/load.py"
        + (f" --clients {args.clients}" if args.clients != 32 else "")
        + (f" --seconds {args.seconds:g}" if args.seconds != 20 else "")
        + (f" --rows {args.rows}" if args.rows != 16 else ""),
        "model": "MLP 784-512-512-10, float32, symbolic batch dim",
        "clients": args.clients,
        "rows_per_request": args.rows,
        "seconds": round(elapsed, 2),
        "requests": len(every),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "requests_per_s": round(len(every) / elapsed, 1),
        "rows_per_s": round(len(every) * args.rows / elapsed),
        **_percentiles(every),
        "by_format": per_format,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results)
    shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 1 if errors else 0


def write_doc(r: dict[str, Any]) -> None:
    """Write (or replace) the "## Load" section of docs/performance.md."""
    m = r["machine"]
    rows = [
        f"| {f['format']} | {f['clients']} | {f['requests']:,} | {f['errors']} | "
        f"{f['p50_ms']} | {f['p99_ms']} | {f['request_bytes']:,} |"
        for f in r["by_format"]
    ]
    rows.append(
        f"| all | {r['clients']} | {r['requests']:,} | {r['errors']} | {r['p50_ms']} | "
        f"{r['p99_ms']} | |"
    )
    table = "\n".join(
        [
            "| Body | Clients | Requests | Errors | p50 ms | p99 ms | Request bytes |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    section = textwrap.dedent(
        f"""\
        ## Load

        {r["clients"]} concurrent clients (threads, one keep-alive httpx client each, half
        JSON, half Arrow) sending `POST /models/{{id}}/predict` with
        {r["rows_per_request"]} rows per request to one `skil-sdk serve` over loopback for
        {r["seconds"]:g} s. Model: {r["model"]}. Measured with `{r["command"]}` on
        {m["platform"]}, Python {m["python"]}, {m["cpus"]} CPUs, onnxruntime
        {m["onnxruntime"]}; 1-minute load average {m["load_average_1m"]} when it finished.

        Throughput: **{r["requests_per_s"]:g} requests/s, {r["rows_per_s"]:,} rows/s**, with
        **{r["errors"]} errors** in {r["requests"]:,} requests (every response is checked:
        status 200 and one output row per input row).

        {{table}}

        Latency here includes the wait for the server's threads: with 32 clients on
        {m["cpus"]} CPUs most of a request's time is queueing, so p50 is roughly the
        number of clients times the cost of one request (see "## Serve") divided by the
        CPUs, and p99 shows how evenly the server shares them. Nothing is refused under
        this load; a request that would wait past `--request-timeout` gets a 503 in the
        error shape rather than hanging.
        """
    )
    section = section.replace("{table}", table)
    replace_section(DOC, "Load", section, gap="\n")


if __name__ == "__main__":
    raise SystemExit(main())
