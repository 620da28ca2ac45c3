"""The bad-input matrix (quick part): command lines, model files, SparkArgs and server requests.

Each case states exactly what the user sees (exit code or HTTP status, and a message
substring) and checks that nothing stored changed (every file of ``SKIL_HOME`` with its
sha256, before and after) and that no output directory was marked ``_SUCCESS``. The
data cases run a real Spark job and live in ``tests/spark/test_bad_data.py``.
``docs/reliability.md`` has one row per case id; ``test_every_case_has_a_row`` keeps
them in step.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import _model_fixtures as models
import httpx
import onnx
import pytest

from skil_sdk.server.config import ServerConfig
from skil_sdk.server.embedded import EmbeddedServer
from skil_sdk.store.jobs import JobStore
from skil_sdk.store.models import add_model

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
DOCS = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def snapshot(home: Path) -> dict[str, str]:
    """Every file under ``home`` (lock files aside) with its sha256."""
    state: dict[str, str] = {}
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.suffix == ".lock" or path.name.endswith("-shm"):
            continue
        state[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def success_markers(root: Path) -> list[Path]:
    """Every ``_SUCCESS`` file under ``root``."""
    return sorted(root.rglob("_SUCCESS"))


@dataclass(frozen=True)
class CliCase:
    """A command line (``{model}``, ``{tmp}`` and ``{data}`` are filled in) and its outcome."""

    id: str
    area: str
    argv: tuple[str, ...]
    exit_code: int
    message: str


_INFER = ("infer", "--model", "{model}", "--provider", "parquet", "--output", "{tmp}/out",
          "--provider-option", "path={data}")
_NO_PATH = ("infer", "--model", "{model}", "--provider", "parquet", "--output", "{tmp}/out")

CLI_CASES = [
    CliCase("cli-missing-model", "CLI", ("infer", "--provider", "parquet", "--output", "{tmp}/o"),
            2, "Missing option '--model'"),
    CliCase("cli-unknown-option", "CLI", (*_INFER, "--no-such-flag"), 2,
            "No such option '--no-such-flag'"),
    CliCase("cli-model-id-not-an-id", "CLI",
            ("infer", "--model", "../etc", "--provider", "parquet", "--output", "{tmp}/o"),
            1, "'../etc' is not a model id"),
    CliCase("cli-unknown-model", "CLI",
            ("infer", "--model", "nosuch-0123", "--provider", "parquet", "--output", "{tmp}/o"),
            1, "No model 'nosuch-0123'; run `skil-sdk models list`"),
    CliCase("cli-batch-size-zero", "CLI", (*_INFER, "--batch-size", "0"), 1,
            "batch_size must be at least 1, not 0"),
    CliCase("cli-batch-size-not-int", "CLI", (*_INFER, "--batch-size", "ten"), 2,
            "'ten' is not a valid integer"),
    CliCase("cli-output-exists", "CLI",
            ("infer", "--model", "{model}", "--provider", "parquet", "--output", "{data}"),
            1, "already exists; choose another or pass --overwrite"),
    CliCase("cli-execution-provider", "CLI", (*_INFER, "--execution-provider", "tpu"), 2,
            "'tpu' is not one of 'cpu', 'cuda'"),
    CliCase("cli-plugin-not-a-project", "CLI", (*_INFER, "--plugin", "{tmp}"), 1,
            "is not a provider project (no pyproject.toml)"),
    CliCase("cli-conf-not-key-value", "CLI", (*_INFER, "--conf", "spark.x"), 1,
            "--conf 'spark.x' is not key=value; write e.g. --conf spark.executor.cores=2"),
    CliCase("cli-models-show-traversal", "CLI", ("models", "show", "../../etc/passwd"), 1,
            "is not a model id"),
    CliCase("cli-jobs-show-unknown", "CLI", ("jobs", "show", "job-nope"), 1,
            "No job 'job-nope'"),
    CliCase("option-not-key-value", "provider options", (*_INFER, "--provider-option", "path"),
            1, "--provider-option 'path' is not key=value"),
    CliCase("option-empty-key", "provider options", (*_INFER, "--provider-option", "=data"),
            1, "--provider-option '=data' is not key=value"),
    CliCase("option-missing-required", "provider options", _NO_PATH, 1,
            "The parquet provider needs the option 'path'"),
    CliCase("option-unknown-name", "provider options",
            (*_INFER, "--provider-option", "colour=red"), 1,
            "has no option 'colour'; it takes: anonymous, features, id, path, s3_endpoint"),
    CliCase("option-misspelt-name", "provider options",
            (*_INFER, "--provider-option", "feature=x"), 1,
            "has no option 'feature' (did you mean 'features'?)"),
    CliCase("option-path-not-found", "provider options",
            (*_NO_PATH, "--provider-option", "path={tmp}/absent.parquet"), 1,
            "absent.parquet, which does not exist on this machine"),
    CliCase("option-bad-bool", "provider options",
            (*_INFER, "--provider-option", "anonymous=maybe"), 1,
            "option 'anonymous' must be true or false, not 'maybe'"),
    CliCase("option-bad-int", "provider options",
            ("infer", "--model", "{model}", "--provider", "numpy", "--output", "{tmp}/out",
             "--provider-option", "path={tmp}", "--provider-option", "rows_per_split=many"), 1,
            "option 'rows_per_split' must be a whole number, not 'many'"),
    CliCase("option-unknown-provider", "provider options",
            ("infer", "--model", "{model}", "--provider", "parqet", "--output", "{tmp}/out"), 1,
            "No provider named 'parqet' (did you mean 'parquet'?)"),
    CliCase("output-not-skil-output", "CLI",
            ("infer", "--model", "{model}", "--provider", "parquet", "--provider-option",
             "path={data}", "--output", "{tmp}", "--overwrite"), 1,
            "that are not a skil-sdk output"),
    CliCase("sparkargs-master-unreachable", "SparkArgs",
            (*_INFER, "--master", "spark://127.0.0.1:1"), 1,
            "The Spark master spark://127.0.0.1:1 did not answer"),
    CliCase("model-not-onnx", "model files",
            ("models", "add", "{tmp}/not-a-model.onnx", "--experiment", "e"), 1,
            "is not an ONNX model"),
    CliCase("model-truncated", "model files",
            ("models", "add", "{tmp}/truncated.onnx", "--experiment", "e"), 1,
            "is not an ONNX model"),
    CliCase("model-empty-file", "model files",
            ("models", "add", "{tmp}/empty.onnx", "--experiment", "e"), 1,
            "is not an ONNX model (it has no graph)"),
    CliCase("model-opset-too-new", "model files",
            ("models", "add", "{tmp}/opset99.onnx", "--experiment", "e"), 1,
            "cannot load opset99.onnx"),
    CliCase("model-unsupported-op", "model files",
            ("models", "add", "{tmp}/unsupported.onnx", "--experiment", "e"), 1,
            "cannot load unsupported.onnx"),
    CliCase("model-missing-file", "model files",
            ("models", "add", "{tmp}/absent.onnx", "--experiment", "e"), 1,
            "No model file at"),
    CliCase("model-bad-experiment", "model files",
            ("models", "add", "{tmp}/good.onnx", "--experiment", "a/b"), 1,
            "Experiment name 'a/b' is not valid"),
    CliCase("sparkargs-bad-master", "SparkArgs", (*_INFER, "--master", "bogus"), 1,
            "master 'bogus' is not a Spark master URL"),
    CliCase("sparkargs-bad-memory", "SparkArgs", (*_INFER, "--executor-memory", "12gigs"), 1,
            "executor_memory '12gigs' is not a memory size"),
    CliCase("sparkargs-negative-executors", "SparkArgs", (*_INFER, "--num-executors", "-1"), 1,
            "num_executors must be at least 1, not -1"),
    CliCase("sparkargs-zero-cores", "SparkArgs", (*_INFER, "--total-executor-cores", "0"), 1,
            "total_executor_cores must be at least 1, not 0"),
    CliCase("sparkargs-cluster-mode-local", "SparkArgs",
            (*_INFER, "--master", "local[2]", "--deploy-mode", "cluster"), 1,
            "deploy_mode 'cluster' does not work with master 'local[2]'"),
]


@pytest.fixture
def inputs(tmp_path: Path, skil_home: Path) -> dict[str, str]:
    """A stored model, bad model files and an existing data file under ``tmp_path``."""
    good = models.small_mlp_model(tmp_path, name="good.onnx")
    record = add_model(good, "stored")
    JobStore()
    models.not_onnx_file(tmp_path)
    models.truncated_model(tmp_path)
    models.unsupported_op_model(tmp_path)
    (tmp_path / "empty.onnx").write_bytes(b"")
    newer = onnx.load(str(good))
    newer.opset_import[0].version = 99
    onnx.save(newer, str(tmp_path / "opset99.onnx"))
    data = tmp_path / "data.parquet"
    data.write_bytes(b"PAR1")
    return {"model": record.id, "tmp": str(tmp_path), "data": str(data)}


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_case(case: CliCase, inputs: dict[str, str], skil_home: Path, tmp_path: Path) -> None:
    argv = [part.format(**inputs) for part in case.argv]
    before = snapshot(skil_home)
    completed = subprocess.run(
        [SKIL, *argv], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert completed.returncode == case.exit_code, completed.stderr
    assert case.message in completed.stderr, completed.stderr
    assert "Traceback" not in completed.stderr
    assert snapshot(skil_home) == before
    assert success_markers(tmp_path) == []


def test_cli_case_with_json_prints_one_error_document(
    inputs: dict[str, str], skil_home: Path
) -> None:
    """``--json`` gives exactly one JSON document with the same message on stdout."""
    argv = [p.format(**inputs) for p in (*_INFER, "--batch-size", "0", "--json")]
    completed = subprocess.run([SKIL, *argv], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    error = json.loads(completed.stdout)["error"]
    assert error["code"] == "invalid_value" and "batch_size" in error["message"]


# ---------------------------------------------------------------------------- server


@dataclass(frozen=True)
class HttpCase:
    """A request to the server (``{model}`` filled in) and its status and message."""

    id: str
    method: str
    path: str
    status: int
    message: str
    content: bytes = b""
    content_type: str = "application/json"
    auth: bool = True


def _wheel(name: str = "demo_plugin", version: str = "0.1.0", extra: str | None = None) -> bytes:
    buffer = io.BytesIO()
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 9\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        archive.writestr(f"{info}/entry_points.txt", f"[skil_sdk]\ndemo = {name}\n")
        if extra:
            archive.writestr(extra, "x")
    return buffer.getvalue()


_PREDICT = "/models/{model}/predict"
HTTP_CASES = [
    HttpCase("http-malformed-json", "POST", _PREDICT, 400, "The request body is not JSON",
             b'{"instances": [[1, 2'),
    HttpCase("http-json-without-instances", "POST", _PREDICT, 400,
             "exactly one of 'instances' or 'inputs'", b'{"rows": []}'),
    HttpCase("http-empty-instances", "POST", _PREDICT, 400,
             "'instances' must be a non-empty list", b'{"instances": []}'),
    HttpCase("http-wrong-feature-length", "POST", _PREDICT, 400, "expects 4 values per row",
             b'{"instances": [[1.0, 2.0, 3.0]]}'),
    HttpCase("http-wrong-element-type", "POST", _PREDICT, 400,
             "could not be read as float32 rows",
             b'{"instances": [["a", "b", "c", "d"]]}'),
    HttpCase("http-wrong-content-type", "POST", _PREDICT, 415,
             "Predict reads application/json or", b"1,2,3,4", "text/csv"),
    HttpCase("http-huge-body", "POST", _PREDICT, 413, "over the server's limit of 8388608 bytes",
             b'{"instances": [' + b"[0, 0, 0, 0], " * 700_000 + b"[0, 0, 0, 0]]}"),
    HttpCase("http-too-many-rows", "POST", _PREDICT, 413, "over the server's limit of 2048 rows",
             json.dumps({"instances": [[0, 0, 0, 0]] * 2049}).encode()),
    HttpCase("http-bad-model-id", "GET", "/models/Not_An_Id", 422,
             "path.model_id: String should match"),
    HttpCase("http-unknown-model", "POST", "/models/nosuch-0123/predict", 404,
             "No model 'nosuch-0123'", b'{"instances": [[0, 0, 0, 0]]}'),
    HttpCase("http-model-file-traversal", "GET", "/models/{model}/files/..%2Fmodel.json", 404,
             "has no file"),
    HttpCase("http-no-token", "GET", "/models", 401, "This request needs a bearer token",
             auth=False),
    HttpCase("http-upload-not-onnx", "POST", "/models", 400,
             "is not an ONNX model", b"not a model", "application/octet-stream"),
    HttpCase("http-plugin-not-a-wheel", "POST", "/plugins", 400, "is not a wheel file name",
             b"hello", "text/plain"),
    HttpCase("http-plugin-zip-slip", "POST", "/plugins", 400, "has an entry outside the wheel",
             _wheel(extra="../../escape.py"), "application/zip"),
    HttpCase("http-progress-bad-json", "POST", "/jobs/job-nope/progress", 422,
             "JSON decode error", b"{nope"),
]


@pytest.fixture
def running_server(
    skil_home: Path, tmp_path: Path
) -> Iterator[tuple[EmbeddedServer, dict[str, str]]]:
    """A server with one stored model, and the fill-ins of the cases."""
    record = add_model(models.small_mlp_model(tmp_path), "stored")
    config = ServerConfig(max_upload_bytes=8 * 1024 * 1024, max_rows=2048)
    with EmbeddedServer(config=config) as server:
        yield server, {"model": record.id}


def _send(server: EmbeddedServer, case: HttpCase, fill: dict[str, str]) -> httpx.Response:
    headers = {"Content-Type": case.content_type}
    if case.auth:
        headers["Authorization"] = f"Bearer {server.admin_token}"
    path = case.path.format(**fill)
    if case.path == "/plugins":
        files = {"file": ("upload.txt" if "text" in case.content_type else
                          "demo_plugin-0.1.0-py3-none-any.whl", case.content, case.content_type)}
        headers.pop("Content-Type")
        return httpx.post(server.url + path, files=files, headers=headers, timeout=60)
    if case.path == "/models":
        files = {"file": ("bad.onnx", case.content, case.content_type)}
        headers.pop("Content-Type")
        return httpx.post(
            server.url + path, files=files, data={"experiment": "e"}, headers=headers, timeout=60
        )
    return httpx.request(
        case.method, server.url + path, content=case.content or None, headers=headers, timeout=60
    )


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.id for c in HTTP_CASES])
def test_http_case(
    case: HttpCase, running_server: tuple[EmbeddedServer, dict[str, str]], skil_home: Path
) -> None:
    server, fill = running_server
    before = snapshot(skil_home)
    response = _send(server, case, fill)
    assert response.status_code == case.status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert case.message in body["error"]["message"], body
    assert snapshot(skil_home) == before
    assert httpx.get(server.url + "/healthz", timeout=60).status_code == 200


def test_every_case_has_a_row() -> None:
    """docs/reliability.md has a row for every case of this module and of the data cases."""
    text = DOCS.read_text()
    data_cases = (Path(__file__).parent / "spark" / "test_bad_data.py").read_text()
    ids = [c.id for c in CLI_CASES] + [c.id for c in HTTP_CASES]
    ids += re.findall(r'DataCase\("([^"]+)"', data_cases)
    missing = [i for i in ids if f"`{i}`" not in text]
    assert not missing, f"docs/reliability.md lacks rows for {missing}"
