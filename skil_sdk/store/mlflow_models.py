"""Models from MLflow: ``models:/`` and ``runs:/`` URIs, and local MLflow model directories.

An MLflow model is a directory holding an ``MLmodel`` file. Only the ``onnx`` flavour is
taken: its ONNX file and every external-data file beside it (``mlflow.onnx.log_model``
saves the weights with ``save_as_external_data``) go into the model store together, each
with its sha256, as :func:`skil_sdk.store.models.add_model` stores any model. The
record's ``source`` is the URI (or the directory) and its ``input_shapes`` are the
per-row dims of the MLflow signature's tensor inputs.

URIs are read with MLflow's own client (the ``mlflow`` extra, ``mlflow-skinny``), which
takes the tracking server and credentials from MLflow's environment variables
(``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``, ``MLFLOW_TRACKING_TOKEN``...). A
local directory needs no MLflow at all.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from skil_sdk.errors import InvalidValueError, ModelError, NotFoundError, SkilError
from skil_sdk.home import skil_home
from skil_sdk.storage import ensure_dir, scratch_dir, sweep_stale
from skil_sdk.store.models import NAME_PATTERN, ModelRecord, add_model

MLMODEL_FILE = "MLmodel"
URI_PREFIXES = ("models:/", "runs:/")
INSTALL_HINT = "pip install 'skil-sdk[mlflow]'"


def is_mlflow_uri(source: str | Path) -> bool:
    """Whether ``source`` is an MLflow ``models:/`` or ``runs:/`` URI."""
    return isinstance(source, str) and source.startswith(URI_PREFIXES)


def is_mlflow_source(source: str | Path) -> bool:
    """Whether ``source`` names an MLflow model: a URI, or a directory (it must hold MLmodel)."""
    return is_mlflow_uri(source) or Path(source).is_dir()


def add_mlflow_model(source: str | Path, experiment: str, name: str | None = None) -> ModelRecord:
    """Store the ONNX flavour of an MLflow model; return its record.

    ``source`` is ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest``,
    ``runs:/RUN_ID/PATH`` or a local MLflow model directory. ``name`` defaults to the
    registered model's name (the last part of the path for ``runs:/``, the directory's
    name for a directory). Raises :class:`ModelError` for a model without the onnx
    flavour, :class:`NotFoundError` for a model, version, alias or run MLflow does not
    have, and :class:`InvalidValueError` when a URI is given but MLflow is not installed.
    Nothing is left in ``SKIL_HOME`` when it fails.
    """
    display = name or _default_name(source)
    if not is_mlflow_uri(source):
        directory = Path(source).expanduser().resolve()
        return _add_directory(directory, experiment, display, str(directory), str(source))
    uri = str(source)
    _require_mlflow(uri)
    downloads = ensure_dir(skil_home() / "tmp")
    sweep_stale(downloads)  # what a killed download left
    with scratch_dir(downloads, "mlflow") as work:
        _refuse_other_flavours(uri, work / "mlmodel")
        return _add_directory(_fetch(uri, work / "model"), experiment, display, uri, uri)


def signature_input_shapes(mlmodel: dict[str, Any], onnx_path: Path) -> dict[str, list[int]]:
    """Per-row dims of the MLflow signature's tensor inputs: ``{name: [dims]}``.

    The first dim of each ``tensor-spec`` shape is the batch; an input is left out when
    it has no per-row dims or one of them is ``-1``. An unnamed tensor input (MLflow's
    signature of a bare array) is the ONNX model's only input.
    """
    signature = mlmodel.get("signature") or {}
    raw = signature.get("inputs") if isinstance(signature, dict) else None
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    if not isinstance(specs, list):
        return {}
    shapes: dict[str, list[int]] = {}
    for spec in specs:
        if not isinstance(spec, dict) or spec.get("type") != "tensor":
            continue
        shape = (spec.get("tensor-spec") or {}).get("shape")
        if not isinstance(shape, list) or len(shape) < 2:
            continue
        dims = shape[1:]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
            continue
        input_name = spec.get("name")
        if input_name is None and len(specs) == 1:
            input_name = _only_onnx_input(onnx_path)
        if isinstance(input_name, str):
            shapes[input_name] = [int(d) for d in dims]
    return shapes


def _add_directory(
    directory: Path, experiment: str, display: str, source: str, shown: str
) -> ModelRecord:
    mlmodel_path = directory / MLMODEL_FILE
    if not mlmodel_path.is_file():
        raise NotFoundError(
            f"{shown} is not an MLflow model (it has no {MLMODEL_FILE} file); pass the folder "
            "that mlflow.onnx.save_model wrote, or a models:/ or runs:/ URI."
        )
    mlmodel = _read_mlmodel(mlmodel_path, shown)
    onnx_path = _onnx_file(directory, _onnx_flavour(mlmodel, shown), shown)
    return add_model(
        onnx_path,
        experiment,
        name=display,
        source=source,
        input_shapes=signature_input_shapes(mlmodel, onnx_path),
    )


def _read_mlmodel(path: Path, shown: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(
            f"The {MLMODEL_FILE} file of {shown} cannot be read ({_first_sentence(exc)}); "
            "pass a model saved by MLflow."
        ) from exc
    if not isinstance(data, dict):
        raise ModelError(
            f"The {MLMODEL_FILE} file of {shown} is not an MLflow model description; pass a "
            "model saved by MLflow."
        )
    return data


def _onnx_flavour(mlmodel: dict[str, Any], shown: str) -> dict[str, Any]:
    flavours = mlmodel.get("flavors")
    names = sorted(str(f) for f in flavours) if isinstance(flavours, dict) else []
    if not isinstance(flavours, dict) or "onnx" not in flavours:
        which = f"flavours {', '.join(names)}" if names else "no flavours"
        raise ModelError(
            f"{shown} is an MLflow model with {which}, not onnx; convert the model to ONNX "
            "and log it with mlflow.onnx.log_model."
        )
    onnx_flavour = flavours["onnx"]
    return onnx_flavour if isinstance(onnx_flavour, dict) else {}


def _onnx_file(directory: Path, flavour: dict[str, Any], shown: str) -> Path:
    data = str(flavour.get("data") or "model.onnx")
    pure = PurePosixPath(data.replace("\\", "/"))
    path = directory.joinpath(*pure.parts)
    if pure.is_absolute() or ".." in pure.parts or not path.is_file():
        raise ModelError(
            f"The onnx flavour of {shown} names its model file {data!r:.80}, which is not a "
            "file inside the model's folder; log the model again with mlflow.onnx.log_model."
        )
    return path


def _only_onnx_input(onnx_path: Path) -> str | None:
    import onnx

    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # add_model refuses the file with its own sentence
        return None
    initializers = {t.name for t in proto.graph.initializer}
    names = [i.name for i in proto.graph.input if i.name not in initializers]
    return names[0] if len(names) == 1 else None


def _require_mlflow(uri: str) -> None:
    try:
        import mlflow.artifacts  # noqa: F401
    except ImportError as exc:
        raise InvalidValueError(
            f"Reading {uri} needs MLflow's client, which is not installed; run `{INSTALL_HINT}`."
        ) from exc


def _refuse_other_flavours(uri: str, destination: Path) -> None:
    """Fetch MLmodel alone, so that a model of another flavour is refused before its download."""
    try:
        mlmodel = _fetch(f"{uri.rstrip('/')}/{MLMODEL_FILE}", destination, shown=uri)
    except NotFoundError:
        return  # a URI without sub-paths (models:/m-<id>); the whole model is fetched next
    if mlmodel.is_file():
        _onnx_flavour(_read_mlmodel(mlmodel, uri), uri)


def _fetch(uri: str, destination: Path, *, shown: str | None = None) -> Path:
    """Download ``uri`` with MLflow's client into ``destination``; the local path."""
    import mlflow.artifacts

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(destination))
    except Exception as exc:  # MlflowException, and the artifact clients' connection errors
        raise _mlflow_error(shown or uri, exc) from exc
    return Path(local)


def _mlflow_error(uri: str, exc: Exception) -> SkilError:
    text = _first_sentence(exc)
    server = (
        "check MLFLOW_TRACKING_URI"
        if os.environ.get("MLFLOW_TRACKING_URI")
        else "set MLFLOW_TRACKING_URI to your MLflow tracking server"
    )
    if "MLFLOW_ALLOW_FILE_STORE" in str(exc):
        return InvalidValueError(
            f"MLflow will not read {uri} from a file store ({text}); set "
            "MLFLOW_ALLOW_FILE_STORE=true or point MLFLOW_TRACKING_URI at a tracking server."
        )
    code = str(getattr(exc, "error_code", ""))
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
        return NotFoundError(
            f"MLflow has no model at {uri} ({text}); check the name, version, alias or run "
            f"id, or {server}."
        )
    return InvalidValueError(f"MLflow could not download {uri} ({text}); {server}.")


def _first_sentence(exc: BaseException) -> str:
    message = str(getattr(exc, "message", None) or exc).strip()
    first = re.split(r"(?<=[.!?])\s", message, maxsplit=1)[0] if message else ""
    first = " ".join(first.split()) or type(exc).__name__
    if len(first) <= 240:
        return first.rstrip(". ")
    return first[:240].rsplit(" ", 1)[0].rstrip(". ") + " ..."


def _default_name(source: str | Path) -> str:
    if isinstance(source, str) and source.startswith("models:/"):
        raw = re.split(r"[/@]", source.removeprefix("models:/"), maxsplit=1)[0]
    elif isinstance(source, str) and source.startswith("runs:/"):
        parts = [p for p in source.removeprefix("runs:/").split("/") if p]
        raw = parts[-1] if parts else "model"
    else:
        raw = Path(source).expanduser().resolve().name
    label = re.sub(r"[^A-Za-z0-9 ._-]+", "-", raw).strip(" ._-")[:128]
    return label if NAME_PATTERN.match(label) else "model"


__all__ = [
    "add_mlflow_model",
    "is_mlflow_source",
    "is_mlflow_uri",
    "signature_input_shapes",
]
