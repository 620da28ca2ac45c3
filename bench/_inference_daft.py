"""Daft as a peer of ``bench/local_engine.py``: one whole batch-inference process.

Run with the Python of the benchmark's own Daft environment (``bench/work/daft-venv``)::

    python bench/_inference_daft.py DATA_DIR MODEL OUT_DIR --outputs 10 [--batch-size 1024]
        [--workers 2] [--use-process auto|true|false]

``daft.read_parquet`` of every Parquet file under ``DATA_DIR``, a ``@daft.cls`` that
loads the ONNX model once per instance (onnxruntime, one intra-op thread) and runs it
over the ``features`` column in batches (``@daft.method.batch``), ``--workers``
instances at most (``max_concurrency``) on a native runner of as many threads, then
``write_parquet`` of ``id`` and ``output`` to ``OUT_DIR``. Prints one JSON line: the
rows, the files written and the seconds spent importing Daft and running the query.
It needs only daft, onnxruntime, pyarrow and numpy, so nothing of skil-sdk or bench/. The
process ends with ``os._exit`` once its report is printed (see the end of this file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

import daft  # noqa: E402 (timed)
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

IMPORTED = time.perf_counter()


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--outputs", type=int, required=True, help="width of the model output")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--use-process", choices=("auto", "true", "false"), default="auto")
    return parser.parse_args()


def _features(series: daft.Series) -> np.ndarray:
    """A ``list<float32>`` Series as a 2-D float32 array (every row the same width)."""
    column = series.to_arrow()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), -1)


def make_model_class(outputs: int, batch_size: int, workers: int, use_process: bool | None) -> Any:
    """The ``@daft.cls`` of the model: one onnxruntime session per instance."""

    @daft.cls(max_concurrency=workers, use_process=use_process)
    class OnnxModel:
        """One onnxruntime session (1 intra-op thread), loaded when Daft builds an instance."""

        def __init__(self, path: str) -> None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
            self.input = self.session.get_inputs()[0].name

        @daft.method.batch(
            return_dtype=daft.DataType.fixed_size_list(daft.DataType.float32(), outputs),
            batch_size=batch_size,
        )
        def predict(self, features: daft.Series) -> pa.Array:
            """The model's first output for a batch of rows, one fixed-size list per row."""
            output = self.session.run(None, {self.input: _features(features)})[0]
            return pa.FixedSizeListArray.from_arrays(pa.array(output.reshape(-1)), outputs)

    return OnnxModel


def main() -> None:
    """Read, infer, write; print the counts and timings."""
    args = _parse()
    use_process = {"auto": None, "true": True, "false": False}[args.use_process]
    daft.set_runner_native(num_threads=args.workers)
    model = make_model_class(args.outputs, args.batch_size, args.workers, use_process)(
        str(args.model)
    )
    df = daft.read_parquet(str(args.data / "*.parquet"))
    df = df.select(df["id"], model.predict(df["features"]).alias("output"))
    query_started = time.perf_counter()
    written = df.write_parquet(str(args.out)).to_pydict()
    finished = time.perf_counter()
    paths = next(iter(written.values())) if written else []
    files = sorted(args.out.rglob("*.parquet"))
    rows = sum(pq.read_metadata(p).num_rows for p in files)
    report = {
        "daft": daft.__version__,
        "rows": rows,
        "files": len(files),
        "paths_reported": len(paths),
        "import_s": round(IMPORTED - STARTED, 3),
        "query_s": round(finished - query_started, 3),
        "in_process_s": round(finished - STARTED, 3),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
    # Daft 0.7's native threads can abort the interpreter's finalization ("PyGILState_Release:
    # thread state ... must be current when releasing", SIGABRT, about 1 run in 10) after
    # the output is complete and checked; end the process without finalizing.
    sys.stderr.flush()
    os._exit(0)
