"""The CUDA execution provider against the CPU one, on the benchmark MLP.

Run it where onnxruntime-gpu and an NVIDIA GPU are::

    python bench/gpu.py [--rows 200000] [--out bench/results/gpu.json]

It builds the benchmark model (MLP 784-512-512-10, seed 0) and N rows of features
(seed 1), runs them through :class:`skil_sdk.inference.runner.ModelRunner` (what every
executor runs) with ``CPUExecutionProvider`` and with ``CUDAExecutionProvider``,
compares the outputs, and measures rows/s per batch size after a warm-up. On a machine
without a usable CUDA provider it stops with the one-sentence error a job would give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _model_fixtures import mlp_model  # noqa: E402

from skil_sdk.errors import SkilError  # noqa: E402
from skil_sdk.inference.runner import ModelRunner  # noqa: E402

CPU = ("CPUExecutionProvider",)
CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")


def rows_per_s(runner: ModelRunner, features: np.ndarray, batch: int, seconds: float) -> float:
    """Steady-state rows/s: one warm-up pass over a batch, then whole batches for ``seconds``."""
    runner.run(features[:batch])
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for offset in range(0, len(features) - batch + 1, batch):
            runner.run(features[offset : offset + batch])
            done += batch
            if time.perf_counter() - start >= seconds:
                break
    return done / (time.perf_counter() - start)


def gpu_name() -> str:
    """The GPU's name as nvidia-smi reports it (empty when there is none)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout
    except OSError:
        return ""
    return out.strip()


def main() -> int:
    """Compare the providers; write the JSON results; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-sizes", default="1024,8192,65536")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu.json")
    args = parser.parse_args()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        model = mlp_model(Path(tmp))
        features = np.random.default_rng(1).random((args.rows, 784), dtype=np.float32)
        threads = os.cpu_count() or 1
        try:
            cuda = ModelRunner(model, providers=CUDA)
        except SkilError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        cpu_one = ModelRunner(model, intra_op_threads=1, providers=CPU)
        cpu_all = ModelRunner(model, intra_op_threads=threads, providers=CPU)
        check = features[:8192]
        expected = cpu_all.run(check)["output"]
        got = cuda.run(check)["output"]
        agreement = float(np.mean(expected.argmax(1) == got.argmax(1)))
        table: dict[str, dict[str, float]] = {}
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            table[str(batch)] = {
                "cuda": round(rows_per_s(cuda, features, batch, args.seconds)),
                "cpu_1_thread": round(rows_per_s(cpu_one, features, batch, args.seconds)),
                f"cpu_{threads}_threads": round(
                    rows_per_s(cpu_all, features, batch, args.seconds)
                ),
            }
    result: dict[str, Any] = {
        "command": "python bench/gpu.py " + " ".join(sys.argv[1:]),
        "machine": {
            "gpu": gpu_name(),
            "cpus": threads,
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "onnxruntime_package": "onnxruntime-gpu" if "CUDAExecutionProvider"
            in ort.get_available_providers() else "onnxruntime",
        },
        "model": "MLP 784-512-512-10, float32 (tests/_model_fixtures.mlp_model, seed 0)",
        "rows": args.rows,
        "session_providers": cuda._session.get_providers(),
        "outputs": {
            "rows_compared": len(check),
            "max_abs_diff": float(np.max(np.abs(expected - got))),
            "allclose_rtol_1e-3_atol_1e-4": bool(np.allclose(got, expected, 1e-3, 1e-4)),
            "argmax_agreement": agreement,
        },
        "rows_per_s": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
