"""Checking that a file is a usable ONNX model: onnx checker, external data, onnxruntime."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from skil_sdk.errors import ModelError


@dataclass
class CheckedModel:
    """What checking a model found: its signature, external-data files and opsets."""

    signature: dict[str, list[dict[str, Any]]]
    external_files: list[str] = field(default_factory=list)
    opsets: dict[str, int] = field(default_factory=dict)


def check_model(path: Path) -> CheckedModel:
    """Check ``path`` with the onnx checker and an onnxruntime session.

    Raises :class:`ModelError` with one sentence when the file is not ONNX, is truncated
    or invalid, references missing external data, or cannot be loaded by onnxruntime.
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(
            f"{path.name} is not an ONNX model (it cannot be parsed: {_short(exc)}); pass a "
            "model exported to .onnx."
        ) from exc
    if not model.graph.node and not model.graph.output:
        raise ModelError(
            f"{path.name} is not an ONNX model (it has no graph); pass a model exported to .onnx."
        )
    external = _external_locations(model, path)
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ModelError(
            f"{path.name} is not a valid ONNX model ({_short(exc)}); re-export it or fix it "
            "so that onnx.checker accepts it."
        ) from exc
    from skil_sdk.inference.runner import ModelRunner

    runner = ModelRunner(path, intra_op_threads=1)
    opsets = {op.domain or "ai.onnx": int(op.version) for op in model.opset_import}
    return CheckedModel(signature=runner.signature, external_files=external, opsets=opsets)


def _external_locations(model: Any, path: Path) -> list[str]:
    from onnx import TensorProto

    locations: list[str] = []
    for tensor in _tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        pure = PurePosixPath(location.replace("\\", "/"))
        if not location or pure.is_absolute() or ".." in pure.parts or pure.name == "":
            raise ModelError(
                f"{path.name} references external data at {location!r}, outside its folder; "
                "save it with onnx's save_as_external_data and a relative location."
            )
        if not (path.parent / pure).is_file():
            raise ModelError(
                f"{path.name} references external data {location!r}, which is missing; keep "
                "the data file beside the model."
            )
        if str(pure) not in locations and str(pure) != "model.onnx":
            locations.append(str(pure))
    return locations


def _tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _short(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:240].rstrip(".")
