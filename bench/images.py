"""Benchmark of the ``images`` provider against a bare Pillow + onnxruntime loop.

Run from the repository root::

    .venv/bin/python bench/images.py [--images 2000] [--repeat 3]

Both decode the same JPEG files (64x48, in ``bench/work/images``), resize them to 32x32,
scale and normalise them, and run the same CNN (dynamic H and W) in batches of 256 with
one onnxruntime thread, in this process. "provider" is what an executor runs for a job:
the provider's source reading its splits, and the executor's model runner and output
batches; "bare" is the loop a user would write by hand. Writes
``bench/results/images.json`` and the "## Images" section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _docsection import replace_section

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "images"
RESULTS = ROOT / "bench" / "results" / "images.json"
DOC = ROOT / "docs" / "performance.md"
COMMAND = ".venv/bin/python bench/images.py"
SIZE = (32, 32)
BATCH = 256
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def make_images(count: int) -> list[Path]:
    """``count`` random 64x48 JPEGs in ``WORK``, made once (deterministic content)."""
    from PIL import Image

    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = WORK / f"{i:06d}.jpg"
        if not path.exists():
            pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def bare_loop(paths: list[Path], model: Path) -> float:
    """Seconds for the hand-written loop: Pillow decode, numpy transform, onnxruntime."""
    import onnxruntime as ort
    from PIL import Image, ImageOps

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    mean, std = np.array(MEAN, np.float32), np.array(STD, np.float32)
    started = time.perf_counter()
    batch: list[np.ndarray] = []
    for path in paths:
        with Image.open(io.BytesIO(path.read_bytes())) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        image = image.resize((SIZE[1], SIZE[0]), Image.Resampling.BILINEAR)
        pixels = (np.asarray(image).astype(np.float32) / 255.0 - mean) / std
        batch.append(pixels.transpose(2, 0, 1))
        if len(batch) == BATCH:
            session.run(None, {"x": np.stack(batch)})
            batch = []
    if batch:
        session.run(None, {"x": np.stack(batch)})
    return time.perf_counter() - started


def provider_path(paths: list[Path], model: Path) -> float:
    """Seconds for what an executor runs: the provider's splits, the model runner, and the
    output record batches."""
    import pyarrow as pa

    from skil_sdk.inference.runner import ModelRunner
    from skil_sdk.providers.images import ImagesProvider
    from skil_sdk.spark.schema import columns_from_signature

    source = ImagesProvider().data(
        None,
        path=str(WORK),
        size=f"{SIZE[0]},{SIZE[1]}",
        mean=",".join(map(str, MEAN)),
        std=",".join(map(str, STD)),
        files_per_split="512",
    )
    runner = ModelRunner(model)
    columns = columns_from_signature(runner.signature["outputs"])
    started = time.perf_counter()
    rows = 0
    for split in source.splits():
        for ids, features in source.read(split, BATCH):
            outputs = runner.run(features)
            arrays = [pa.array(ids, pa.string())]
            arrays += [c.to_arrow(outputs[c.name], len(ids)) for c in columns]
            names = ["id", *[c.name for c in columns]]
            rows += pa.RecordBatch.from_arrays(arrays, names=names).num_rows
    assert rows == len(paths)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import _model_fixtures

    if WORK.exists() and len(list(WORK.glob("*.jpg"))) != args.images:
        shutil.rmtree(WORK)
    paths = make_images(args.images)
    model = _model_fixtures.dynamic_cnn_model(ROOT / "bench" / "work", name="images-cnn.onnx")
    bare, provider = [], []
    for _ in range(args.repeat):  # interleaved, so both see the same machine state
        bare.append(bare_loop(paths, model))
        provider.append(provider_path(paths, model))
    result = {
        "command": COMMAND + (f" --images {args.images}" if args.images != 2000 else ""),
        "images": args.images,
        "repeat": args.repeat,
        "bare_rows_per_s": round(args.images / statistics.median(bare)),
        "provider_rows_per_s": round(args.images / statistics.median(provider)),
        "bare_s": [round(v, 3) for v in bare],
        "provider_s": [round(v, 3) for v in provider],
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }
    result["ratio"] = round(result["provider_rows_per_s"] / result["bare_rows_per_s"], 3)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    write_doc(result)
    print(json.dumps(result, indent=2))


def write_doc(r: dict[str, Any]) -> None:
    """Replace (or add) the "## Images" section of docs/performance.md."""
    m = r["machine"]
    section = (
        "## Images\n\n"
        f"The `images` provider against a bare Pillow + onnxruntime loop over the same "
        f"{r['images']} JPEGs (64x48, resized to 32x32, normalised, a CNN with dynamic H and "
        f"W, batches of {BATCH}, one onnxruntime thread), measured with `{r['command']}` on "
        f"{m['platform']}, Python {m['python']}, {m['cpus']} CPUs (1-minute load average "
        f"{m['load_average_1m']}); medians of {r['repeat']} interleaved runs. The provider "
        "row is what one executor Python worker runs for a job (decode, transform, model, "
        "output batches), without Spark's scheduling around it.\n\n"
        "| Path | rows/s |\n|---|---:|\n"
        f"| bare Pillow + onnxruntime loop | {r['bare_rows_per_s']:,} |\n"
        f"| `images` provider, executor side | {r['provider_rows_per_s']:,} "
        f"({r['ratio']:.2f} of bare) |\n"
    )
    replace_section(DOC, "Images", section)


if __name__ == "__main__":
    main()
