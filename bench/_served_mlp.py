"""The benchmark MLP served by a real ``skil-sdk serve`` on loopback, for the serve benches."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
ARROW = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True)
class Served:
    """A running server: its base URL, admin token, and the MLP's model id and file."""

    url: str
    token: str
    model_id: str
    model_path: Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def arrow_body(rows: np.ndarray) -> bytes:
    """``rows`` as an Arrow IPC stream with one fixed-size-list column ``input``."""
    column = pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), rows.shape[1])
    table = pa.Table.from_arrays([column], names=["input"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@contextlib.contextmanager
def served_mlp(work: Path, *serve_args: str) -> Iterator[Served]:
    """Add the MLP to a fresh SKIL_HOME under ``work`` and serve it until the block ends."""
    home = work / "home"
    os.environ["SKIL_HOME"] = str(home)
    sys.path.insert(0, str(ROOT / "tests"))
    from _model_fixtures import mlp_model

    from skil_sdk.store.models import add_model

    record = add_model(mlp_model(work / "model"), "bench", name="mlp")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from skil_sdk.cli import main; main()", "serve",
         "--port", str(port), *serve_args],
        env={**os.environ, "SKIL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = (home / "server.token").read_text().strip()
        yield Served(url, token, record.id, Path(record.path))
    finally:
        server.terminate()
        server.wait(30)
