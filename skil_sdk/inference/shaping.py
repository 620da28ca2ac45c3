"""Turning rows of flat features into the tensors a model expects (reshape and cast)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from skil_sdk.errors import ModelError
from skil_sdk.inference.signature import format_shape

#: signature element type -> numpy dtype.
NUMPY_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "string": object,
}


def numpy_dtype(elem_type: str | None) -> Any:
    """The numpy dtype for a signature element type (``float32`` when unknown)."""
    return NUMPY_DTYPES.get(elem_type or "float32", np.float32)


def to_array(spec: dict[str, Any], values: Any) -> np.ndarray:
    """``values`` as a numpy array of the input's element type (not yet reshaped)."""
    dtype = numpy_dtype(spec.get("type"))
    name = spec["name"]
    try:
        if dtype is object:
            array = np.asarray(values, dtype=object)
            return np.vectorize(str, otypes=[object])(array) if array.size else array
        return np.asarray(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ModelError(
            f"Input '{name}' could not be read as {spec.get('type')} rows of equal length "
            f"({exc}); send rows shaped {format_shape(spec.get('shape'))}.",
            stage="cast",
        ) from exc


def shape_input(
    spec: dict[str, Any], values: Any, row_shape: Sequence[int] | None = None
) -> np.ndarray:
    """Cast ``values`` (N rows) to the input's type and reshape each row to its shape.

    Rows may already have the model's per-row shape, or be flat: 784 values become
    ``[1, 28, 28]`` for an input shaped ``[N, 1, 28, 28]``. One symbolic per-row dim
    is inferred from the row length; ``row_shape`` (``--input-shape``, or the model's
    recorded input shape) gives them all, for flat rows. Rows already shaped are never
    rearranged into another layout: ``8x8x3`` rows for a model taking ``3x8x8`` are
    refused (only size-1 dims may differ).
    """
    array = to_array(spec, values)
    name = spec["name"]
    if array.ndim == 0:
        raise ModelError(
            f"Input '{name}' got a single value, not rows; send rows shaped "
            f"{format_shape(spec.get('shape'))}.",
            stage="shape",
        )
    if row_shape and (array.ndim <= 2 or list(array.shape[1:]) == list(row_shape)):
        return _given_shape(name, array, [int(d) for d in row_shape])
    shape = spec.get("shape")
    if not shape:
        return array
    rows = array.shape[0]
    row = list(shape[1:])
    if _matches(array.shape[1:], row):
        return array
    if array.ndim > 2:
        _refuse_other_layout(name, array, row, shape)
    flat = array.reshape(rows, -1)
    size = flat.shape[1]
    known = math.prod(d for d in row if isinstance(d, int))
    unknown = [i for i, d in enumerate(row) if not isinstance(d, int)]
    if len(unknown) > 1:
        raise ModelError(
            f"Input '{name}' has {len(unknown)} variable dims per row (shape "
            f"{format_shape(shape)}), so a flat row of {size} values is ambiguous; send rows "
            f"already in that shape, or pass --input-shape {name}=D1,D2,...",
            stage="shape",
        )
    if (not unknown and size != known) or (unknown and (known == 0 or size % known)):
        raise ModelError(
            f"Input '{name}' expects {known} values per row (shape {format_shape(shape)}), "
            f"but got rows of {size} values; send rows of {known} values.",
            stage="shape",
        )
    target = [d if isinstance(d, int) else size // max(known, 1) for d in row]
    return flat.reshape([rows, *target])


def _refuse_other_layout(name: str, array: np.ndarray, row: list[Any], shape: Any) -> None:
    """Rows already shaped must be the model's shape, up to dims of size 1."""
    actual = [d for d in array.shape[1:] if d != 1]
    wanted = [d for d in row if d != 1]
    if len(actual) == len(wanted) and all(
        not isinstance(w, int) or w == a for a, w in zip(actual, wanted, strict=True)
    ):
        return
    got = "x".join(map(str, array.shape[1:]))
    raise ModelError(
        f"Input '{name}' rows are shaped {got} but the model takes {format_shape(shape)}; "
        "store them in that layout (for images: layout=nchw or nhwc), or flat.",
        stage="shape",
    )


def _given_shape(name: str, array: np.ndarray, row: list[int]) -> np.ndarray:
    if list(array.shape[1:]) == row:
        return array
    size = math.prod(row)
    flat = array.reshape(array.shape[0], -1)
    if flat.shape[1] != size:
        raise ModelError(
            f"Input '{name}' rows were given the shape {','.join(map(str, row))} "
            f"(--input-shape or the model's recorded input shape: {size} values) but hold "
            f"{flat.shape[1]} values; fix the rows or pass another --input-shape.",
            stage="shape",
        )
    return flat.reshape([array.shape[0], *row])


def _matches(actual: tuple[int, ...], row: list[Any]) -> bool:
    if len(actual) != len(row):
        return False
    return all(not isinstance(d, int) or d == a for a, d in zip(actual, row, strict=True))
