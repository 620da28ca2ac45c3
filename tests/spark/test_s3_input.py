"""The executor-read path over s3://, against a local S3-compatible server (moto's server
mode, started by the test on 127.0.0.1: the real S3 cannot be reached from here)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _spark_helpers import read_output, run_onnxruntime

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.spark.submit import InferenceRequest, submit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("the local S3 server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _client(endpoint: str) -> Any:
    """A boto3 client of the local S3 server (the tests' own uploads go through it)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(request_checksum_calculation="when_required"),
    )


def test_parquet_over_s3_matches_onnxruntime(spark: Any, tmp_path: Path, s3_endpoint: str) -> None:
    import io

    # the test's own upload goes through boto3 (a public-read bucket, so executors read it
    # anonymously); the job reads with pyarrow's S3 file system
    client = _client(s3_endpoint)
    client.create_bucket(Bucket="skil-data", ACL="public-read")
    features = np.random.default_rng(31).standard_normal((90, 4)).astype(np.float32)
    for part, rows in enumerate((slice(0, 50), slice(50, 90))):
        ids = np.arange(90, dtype=np.int64)[rows]
        column = pa.array(features[rows].tolist(), pa.list_(pa.float32()))
        buffer = io.BytesIO()
        pq.write_table(pa.table({"id": ids, "features": column}), buffer, row_group_size=20)
        client.put_object(
            Bucket="skil-data",
            Key=f"rows/part-{part}.parquet",
            Body=buffer.getvalue(),
            ACL="public-read",
        )

    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "s3")
    request = InferenceRequest(
        model_id,
        "parquet",
        str(tmp_path / "out"),
        SparkArgs(master="local[2]"),
        provider_options={
            "path": "s3://skil-data/rows",
            "s3_endpoint": s3_endpoint,
            "anonymous": "true",
        },
    )
    result = submit(request, spark=spark)
    assert result.rows == 90
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(90))
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(
        np.array(table.column("output").to_pylist()), expected, rtol=1e-5, atol=1e-6
    )


def test_the_local_engine_reads_parquet_over_s3(tmp_path: Path, s3_endpoint: str) -> None:
    """No JVM: the local engine's workers (spawned, not forked, for a remote file system)
    read the row groups from the S3 server themselves."""
    import io
    import json

    client = _client(s3_endpoint)
    client.create_bucket(Bucket="skil-local", ACL="public-read")
    features = np.random.default_rng(32).standard_normal((120, 4)).astype(np.float32)
    for part in range(3):
        rows = slice(part * 40, (part + 1) * 40)
        column = pa.array(features[rows].tolist(), pa.list_(pa.float32()))
        table = pa.table({"id": np.arange(120, dtype=np.int64)[rows], "features": column})
        buffer = io.BytesIO()
        pq.write_table(table, buffer, row_group_size=20)
        client.put_object(Bucket="skil-local", Key=f"rows/part-{part}.parquet",
                          Body=buffer.getvalue(), ACL="public-read")
    model = models.small_mlp_model(tmp_path)
    model_id = SkilContext().add_model_to_experiment(model, "s3")
    request = InferenceRequest(
        model_id, "parquet", str(tmp_path / "out"), SparkArgs(master="local[2]"),
        provider_options={"path": "s3://skil-local/rows", "s3_endpoint": s3_endpoint,
                          "anonymous": "true"},
    )
    result = submit(request)
    assert result.engine == "local" and result.rows == 120
    table = read_output(tmp_path / "out")
    assert table.column("id").to_pylist() == list(range(120))
    expected = run_onnxruntime(model, {"input": features})["output"]
    np.testing.assert_allclose(
        np.array(table.column("output").to_pylist()), expected, rtol=1e-5, atol=1e-6
    )
    meta = json.loads((tmp_path / "out" / "_skil_job.json").read_text())
    assert meta["packing"]["splits"] == 6 and len(meta["executors"]) >= 1


def test_images_over_s3_equal_pillow_by_hand(tmp_path: Path, s3_endpoint: str) -> None:
    """The images provider lists and decodes s3:// images (a glob, ids relative to it)."""
    from test_images_provider import MEAN, STD, _by_hand, _write_images

    from skil_sdk.providers.images import ImagesProvider

    client = _client(s3_endpoint)
    client.create_bucket(Bucket="skil-images", ACL="public-read")
    paths = _write_images(tmp_path / "imgs")
    for name, path in paths.items():
        client.put_object(Bucket="skil-images", Key=f"photos/{name}", Body=path.read_bytes(),
                          ACL="public-read")
    source = ImagesProvider().data(
        None, path="s3://skil-images/photos/**/*.png", s3_endpoint=s3_endpoint,
        anonymous="true", size="10,10", mean=",".join(map(str, MEAN)),
        std=",".join(map(str, STD)),
    )
    read = [(i, t) for s in source.splits() for ids, ts in source.read(s, 8)
            for i, t in zip(ids, ts, strict=True)]
    assert [i for i, _t in read] == sorted(n for n in paths if n.endswith(".png"))
    for image_id, tensor in read:
        np.testing.assert_allclose(tensor, _by_hand(paths[image_id], (10, 10), None), atol=1e-6)
