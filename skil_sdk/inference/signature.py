"""Model signatures: input and output names, element types, shapes and kinds.

A signature is plain JSON data, read from an onnxruntime session (so executors need no
``onnx`` package)::

    {"inputs":  [{"name": "input", "type": "float32", "shape": ["N", 784], "kind": "tensor"}],
     "outputs": [{"name": "label", "type": "int64", "shape": ["N"], "kind": "tensor"},
                 {"name": "probabilities", "type": null, "shape": null,
                  "kind": "seq(map(int64,float))"}]}

``shape`` holds ints for fixed dims, strings for symbolic dims and ``null`` for unknown
ones; it is ``null`` for non-tensor values, whose ``kind`` spells their type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: onnxruntime element type names -> numpy-style names.
ELEM_TYPES: dict[str, str] = {
    "float": "float32",
    "double": "float64",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "string": "string",
}

Dim = int | str | None


def parse_ort_type(ort_type: str) -> tuple[str | None, str]:
    """Split an onnxruntime type string into (element type, kind).

    ``tensor(float)`` -> ``("float32", "tensor")``;
    ``seq(map(int64,tensor(float)))`` -> ``(None, "seq(map(int64,float))")``.
    """
    if ort_type.startswith("tensor(") and ort_type.endswith(")"):
        return _elem(ort_type[len("tensor(") : -1]), "tensor"
    return None, _kind(ort_type)


def _elem(name: str) -> str:
    return ELEM_TYPES.get(name, name)


def _kind(ort_type: str) -> str:
    if ort_type.startswith("tensor(") and ort_type.endswith(")"):
        return ort_type[len("tensor(") : -1]
    for wrapper in ("seq", "map", "optional", "sparse_tensor"):
        prefix = wrapper + "("
        if ort_type.startswith(prefix) and ort_type.endswith(")"):
            inner = ort_type[len(prefix) : -1]
            parts = _split_top_level(inner)
            if wrapper == "map" and len(parts) == 2:
                return f"map({parts[0]},{_kind(parts[1])})"
            return f"{wrapper}({','.join(_kind(p) for p in parts)})"
    return ort_type


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return parts


def _arg(node_arg: Any) -> dict[str, Any]:
    elem, kind = parse_ort_type(str(node_arg.type))
    shape: list[Dim] | None = None
    if kind == "tensor":
        raw = node_arg.shape
        shape = None if raw is None else [_dim(d) for d in raw]
    return {"name": node_arg.name, "type": elem, "shape": shape, "kind": kind}


def _dim(value: Any) -> Dim:
    if isinstance(value, int):
        return value
    if value is None or value == "":
        return None
    return str(value)


def signature_from_session(session: Any) -> dict[str, list[dict[str, Any]]]:
    """The signature of an ``onnxruntime.InferenceSession``."""
    return {
        "inputs": [_arg(a) for a in session.get_inputs()],
        "outputs": [_arg(a) for a in session.get_outputs()],
    }


def format_shape(shape: Sequence[Dim] | None) -> str:
    """A shape as users read it: ``[N, 1, 28, 28]`` (``?`` for unknown dims)."""
    if shape is None:
        return "[?]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def feeding_hint(spec: dict[str, Any]) -> str | None:
    """How to feed an input whose per-row dims are dynamic (None when they are all fixed)."""
    shape = spec.get("shape")
    if spec.get("kind", "tensor") != "tensor" or shape is None:
        return None
    row = list(shape[1:])
    dynamic = [i for i, d in enumerate(row) if not isinstance(d, int)]
    if not dynamic:
        return None
    example = ",".join(str(d) if isinstance(d, int) else "224" for d in row)
    if len(dynamic) == 1 and len(row) > 1:
        return (
            f"dynamic dim at position {dynamic[0] + 1}: flat rows set it from their length; or "
            f"store rows already shaped, or pass --input-shape {spec['name']}={example}"
        )
    if len(row) == 1:
        return "dynamic length: rows of any length (rows of one length per batch run together)"
    return (
        f"{len(dynamic)} dynamic dims: store rows already shaped (nested lists), or pass "
        f"--input-shape {spec['name']}={example} for flat rows"
    )
