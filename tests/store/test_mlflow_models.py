"""Models from MLflow: a real file-based tracking store and registry, the real CLI.

The store is MLflow's file store (``MLFLOW_ALLOW_FILE_STORE=true``), which the
``mlflow-skinny`` client reads and writes without a database driver.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import mlflow.onnx
import mlflow.pyfunc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from _model_fixtures import mlp_model, multi_io_model
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from skil_sdk.inference.runner import ModelRunner
from skil_sdk.storage import sha256_file
from skil_sdk.store.mlflow_models import signature_input_shapes
from skil_sdk.store.models import verify_model

SKIL = str(Path(sys.executable).with_name("skil-sdk"))
NO_MLFLOW = "import sys; sys.modules['mlflow'] = None; from skil_sdk.cli.main import main; main()"
SIZES = (16, 64, 4)


@dataclass(frozen=True)
class Tracking:
    """The MLflow store the tests read: its URI and where each version's bytes lie."""

    uri: str
    versions: dict[int, Path]
    run_ids: dict[int, str]


class Doubler(mlflow.pyfunc.PythonModel):
    """A python_function-only model: not ONNX."""

    def predict(self, context: Any, model_input: list[float], params: Any = None) -> list[float]:
        return [2 * x for x in model_input]


def _mlp_signature(name: str | None = "input") -> ModelSignature:
    spec = TensorSpec(np.dtype("float32"), (-1, SIZES[0]), name)
    out = TensorSpec(np.dtype("float32"), (-1, SIZES[-1]), "output" if name else None)
    return ModelSignature(inputs=Schema([spec]), outputs=Schema([out]))


def _stored_dir(model_id: str) -> Path:
    location = mlflow.get_logged_model(model_id).artifact_location
    return Path(url2pathname(urlparse(location).path))


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    root = tmp_path_factory.mktemp("mlruns")
    sources = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        patch.setenv("MLFLOW_TRACKING_URI", root.as_uri())
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("e")
        versions: dict[int, Path] = {}
        run_ids: dict[int, str] = {}
        for version, seed in ((1, 0), (2, 1)):
            proto = onnx.load(str(mlp_model(sources, SIZES, seed, name=f"mlp{seed}.onnx")))
            with mlflow.start_run(experiment_id=experiment) as run:
                logged = mlflow.onnx.log_model(
                    proto, name="model", signature=_mlp_signature(), registered_model_name="mlp"
                )
            assert logged.registered_model_version == version
            versions[version] = _stored_dir(logged.model_id)
            run_ids[version] = run.info.run_id
        client.set_registered_model_alias("mlp", "champion", "1")
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Doubler(),
                registered_model_name="notonnx",
                pip_requirements=[],
            )
        yield Tracking(root.as_uri(), versions, run_ids)


def _skil(tracking: Tracking | None, *args: str, python: str | None = None) -> Any:
    env = dict(os.environ)
    if tracking is not None:
        env.update(MLFLOW_TRACKING_URI=tracking.uri, MLFLOW_ALLOW_FILE_STORE="true")
    argv = [sys.executable, "-c", python] if python else [SKIL]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def _add(tracking: Tracking | None, source: str, *extra: str) -> dict[str, Any]:
    done = _skil(tracking, "models", "add", source, "--experiment", "e", "--json", *extra)
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _onnx_files(directory: Path) -> dict[str, str]:
    """The onnx part of an MLflow model folder: model.onnx and its external data."""
    names = ["model.onnx", *sorted(p.name for p in directory.glob("*.data"))]
    return {name: sha256_file(directory / name) for name in names}


def _assert_nothing_stored(home: Path) -> None:
    """No model, work directory or download left in SKIL_HOME (locks may stay)."""
    left = [p for p in home.rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert [p.relative_to(home).as_posix() for p in left if p.name != "home.json"] == []


def test_a_registered_version_is_stored_with_every_onnx_file(
    tracking: Tracking, skil_home: Path
) -> None:
    record = _add(tracking, "models:/mlp/1")
    stored = _onnx_files(tracking.versions[1])
    assert len(stored) == 2  # the weights are external data beside model.onnx
    assert {f["name"]: f["sha256"] for f in record["files"]} == stored
    assert record["files"][0]["name"] == "model.onnx"
    assert record["sha256"] == stored["model.onnx"]
    assert record["source"] == "models:/mlp/1"
    assert record["input_shapes"] == {"input": [16]}
    assert (record["name"], record["experiment"]) == ("mlp", "e")
    assert verify_model(record["id"]).id == record["id"]
    shown = _skil(tracking, "models", "show", record["id"], "--json")
    assert json.loads(shown.stdout)["source"] == "models:/mlp/1"
    assert json.loads(shown.stdout)["input_shapes"] == {"input": [16]}

    rows = np.random.default_rng(7).standard_normal((5, 16)).astype(np.float32)
    ours = ModelRunner(Path(record["path"])).run(rows)["output"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    reference = ort.InferenceSession(
        str(tracking.versions[1] / "model.onnx"), options, providers=["CPUExecutionProvider"]
    ).run(["output"], {"input": rows})[0]
    assert ours.shape == (5, 4)
    np.testing.assert_array_equal(ours, reference)
    assert not list((skil_home / "tmp").iterdir())


def test_aliases_and_latest_resolve_to_their_versions(tracking: Tracking) -> None:
    champion = _add(tracking, "models:/mlp@champion")
    latest = _add(tracking, "models:/mlp/latest")
    first, second = _onnx_files(tracking.versions[1]), _onnx_files(tracking.versions[2])
    assert first["model.onnx"] != second["model.onnx"]
    assert {f["name"]: f["sha256"] for f in champion["files"]} == first
    assert {f["name"]: f["sha256"] for f in latest["files"]} == second
    assert (champion["source"], latest["source"]) == ("models:/mlp@champion", "models:/mlp/latest")
    assert champion["id"] != latest["id"]


def test_a_runs_uri_and_a_name(tracking: Tracking) -> None:
    uri = f"runs:/{tracking.run_ids[2]}/model"
    record = _add(tracking, uri, "--name", "From run")
    assert {f["name"]: f["sha256"] for f in record["files"]} == _onnx_files(tracking.versions[2])
    assert (record["source"], record["name"]) == (uri, "From run")
    assert record["id"].startswith("from-run-")


def test_a_local_model_directory_needs_no_mlflow(tmp_path: Path) -> None:
    directory = tmp_path / "multi-model"
    signature = ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype("float32"), (-1, 3), "a"),
                TensorSpec(np.dtype("int64"), (-1, -1), "b"),  # a -1 per-row dim: no default
            ]
        ),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3), "scaled")]),
    )
    mlflow.onnx.save_model(onnx.load(str(multi_io_model(tmp_path))), directory, signature=signature)
    done = _skil(
        None, "models", "add", str(directory), "--experiment", "e", "--json", python=NO_MLFLOW
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["input_shapes"] == {"a": [3]}
    assert (record["source"], record["name"]) == (str(directory.resolve()), "multi-model")
    assert {f["name"]: f["sha256"] for f in record["files"]} == _onnx_files(directory)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[1, 2], [3, 4]], dtype=np.int64)
    outputs = ModelRunner(Path(record["path"])).run({"a": a, "b": b})
    np.testing.assert_array_equal(outputs["scaled"], a * 2)
    np.testing.assert_array_equal(outputs["total"], [[3.0], [7.0]])


def test_signature_shapes_from_mlmodel(tmp_path: Path) -> None:
    onnx_path = mlp_model(tmp_path, SIZES)
    directory = tmp_path / "unnamed"
    mlflow.onnx.save_model(onnx.load(str(onnx_path)), directory, signature=_mlp_signature(None))
    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    assert signature_input_shapes(mlmodel, directory / "model.onnx") == {"input": [16]}
    columns = ModelSignature(inputs=Schema([ColSpec("double", "x")]))
    assert signature_input_shapes({"signature": columns.to_dict()}, onnx_path) == {}
    image = ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype("float32"), (-1, 3, 8, 8), "image"),
                TensorSpec(np.dtype("float32"), (-1,), "scale"),  # no per-row dims
                TensorSpec(np.dtype("float32"), (-1, 3, -1, -1), "any"),
            ]
        )
    )
    assert signature_input_shapes({"signature": image.to_dict()}, onnx_path) == {"image": [3, 8, 8]}
    assert signature_input_shapes({}, onnx_path) == {}


def test_a_model_of_another_flavour_is_refused(tracking: Tracking, skil_home: Path) -> None:
    done = _skil(tracking, "models", "add", "models:/notonnx/1", "--experiment", "e", "--json")
    assert done.returncode == 1
    message = (
        "models:/notonnx/1 is an MLflow model with flavours python_function, not onnx; convert "
        "the model to ONNX and log it with mlflow.onnx.log_model."
    )
    assert json.loads(done.stdout) == {"error": {"code": "invalid_model", "message": message}}
    assert done.stderr.strip().splitlines()[-1] == f"Error: {message}"
    _assert_nothing_stored(skil_home)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("models:/nope/1", "Registered Model with name=nope not found"),
        ("models:/mlp/9", "Model Version (name=mlp, version=9) not found"),
        ("models:/mlp@nope", "Registered model alias nope not found"),
        (f"runs:/{'0' * 32}/model", f"Run '{'0' * 32}' not found"),
    ],
)
def test_a_missing_model_is_one_sentence(
    tracking: Tracking, skil_home: Path, uri: str, why: str
) -> None:
    done = _skil(tracking, "models", "add", uri, "--experiment", "e", "--json")
    assert done.returncode == 1
    message = (
        f"MLflow has no model at {uri} ({why}); check the name, version, alias or run id, or "
        "check MLFLOW_TRACKING_URI."
    )
    assert json.loads(done.stdout) == {"error": {"code": "not_found", "message": message}}
    _assert_nothing_stored(skil_home)


def test_a_uri_without_mlflow_names_the_extra(skil_home: Path) -> None:
    done = _skil(
        None, "models", "add", "models:/mlp/1", "--experiment", "e", "--json", python=NO_MLFLOW
    )
    assert done.returncode == 1
    message = (
        "Reading models:/mlp/1 needs MLflow's client, which is not installed; run "
        "`pip install 'skil-sdk[mlflow]'`."
    )
    assert json.loads(done.stdout) == {"error": {"code": "invalid_value", "message": message}}
    _assert_nothing_stored(skil_home)


def test_a_folder_without_mlmodel_is_refused(tmp_path: Path) -> None:
    done = _skil(None, "models", "add", str(tmp_path), "--experiment", "e")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path} is not an MLflow model (it has no MLmodel file); pass the folder "
        "that mlflow.onnx.save_model wrote, or a models:/ or runs:/ URI."
    )


def test_an_unreachable_tracking_server_is_one_sentence(skil_home: Path) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        done = subprocess.run(
            [SKIL, "models", "add", "models:/mlp/1", "--experiment", "e", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
            check=False,
        )
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "invalid_value"
    assert error["message"].startswith(
        f"MLflow could not download models:/mlp/1 (API request to {uri}"
    )
    assert error["message"].endswith("); check MLFLOW_TRACKING_URI.")
    _assert_nothing_stored(skil_home)
