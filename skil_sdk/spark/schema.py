"""The output schema of a job: ``id`` plus one column per model output.

Each column is described by a :class:`ColumnSpec` that gives both its Spark SQL type
(for the DataFrame written) and its Arrow type (for the batches executors produce).
Tensor outputs of shape ``[N]`` become scalar columns, ``[N, K]`` arrays, and ``[N, T,
C, ...]`` nested arrays that keep each row's shape (``array<array<float>>``); an output
whose rank the model does not state is flattened per row. ``seq(map(K, V))`` outputs such
as scikit-learn's ZipMap become map columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from skil_sdk.errors import ModelError

#: element type name -> (Spark SQL type, Arrow type)
ELEMENT_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "float32": ("float", pa.float32()),
    "float16": ("float", pa.float32()),
    "float64": ("double", pa.float64()),
    "int8": ("tinyint", pa.int8()),
    "int16": ("smallint", pa.int16()),
    "int32": ("int", pa.int32()),
    "int64": ("bigint", pa.int64()),
    "uint8": ("smallint", pa.int16()),
    "uint16": ("int", pa.int32()),
    "uint32": ("bigint", pa.int64()),
    "uint64": ("bigint", pa.int64()),
    "bool": ("boolean", pa.bool_()),
    "string": ("string", pa.string()),
}

#: ONNX element type names that appear inside non-tensor kinds -> ours.
_ALIASES = {"float": "float32", "double": "float64", "float16": "float16"}
_MAP_KIND = re.compile(r"^seq\(map\((\w+),(\w+)\)\)$")
_SPARK_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class ColumnSpec:
    """One output column: ``container`` is ``scalar``, ``array`` or ``map``.

    An array column has ``rank`` nesting levels (a row of an output ``[N, T, C]`` has
    rank 2); ``row_shape`` is the per-row shape the model states (``None`` for dynamic
    dims), recorded in ``_skil_job.json``.
    """

    name: str
    container: str
    element: str
    key: str | None = None
    rank: int = 1
    row_shape: tuple[Any, ...] | None = None

    @property
    def spark_type(self) -> str:
        """Spark SQL DDL type of the column."""
        elem = ELEMENT_TYPES[self.element][0]
        if self.container == "scalar":
            return elem
        if self.container == "array":
            return "array<" * self.rank + elem + ">" * self.rank
        assert self.key is not None
        return f"map<{ELEMENT_TYPES[self.key][0]},{elem}>"

    @property
    def arrow_type(self) -> pa.DataType:
        """Arrow type of the column."""
        elem = ELEMENT_TYPES[self.element][1]
        if self.container == "scalar":
            return elem
        if self.container == "array":
            nested = elem
            for _level in range(self.rank):
                nested = pa.list_(nested)
            return nested
        assert self.key is not None
        return pa.map_(ELEMENT_TYPES[self.key][1], elem)

    def to_arrow(self, value: Any, rows: int) -> pa.Array:
        """Convert one batch of this output (N rows) to an Arrow array."""
        if self.container == "map":
            items = [list(d.items()) if d is not None else None for d in value]
            return pa.array(items, type=self.arrow_type)
        array = np.asarray(value)
        if array.shape[:1] != (rows,):
            raise ModelError(
                f"Output {self.name!r} has {array.shape[0] if array.ndim else 0} rows for "
                f"{rows} inputs; the model's first dimension must be the batch."
            )
        elem_type = ELEMENT_TYPES[self.element][1]
        if self.container == "scalar":
            flat = array.reshape(rows)
            if self.element == "string":
                return pa.array([str(v) for v in flat], type=pa.string())
            return pa.array(flat, type=elem_type)
        if self.rank == 1:
            dims = [int(np.prod(array.shape[1:], dtype=np.int64))]
        elif array.ndim - 1 == self.rank:
            dims = list(array.shape[1:])
        else:
            raise ModelError(
                f"Output {self.name!r} has rows of shape {list(array.shape[1:])}, not of rank "
                f"{self.rank} as the model's signature says; fix the model's output shape."
            )
        flat = np.ascontiguousarray(array).reshape(-1)
        if self.element == "string":
            nested: pa.Array = pa.array([str(v) for v in flat], type=pa.string())
        else:
            nested = pa.array(flat, type=elem_type)
        for level in reversed(range(len(dims))):
            lists = rows * int(np.prod(dims[:level], dtype=np.int64))
            offsets = pa.array(np.arange(lists + 1, dtype=np.int64) * dims[level], pa.int32())
            nested = pa.ListArray.from_arrays(offsets, nested)
        return nested

    def to_dict(self) -> dict[str, Any]:
        """JSON form recorded in ``_skil_job.json`` (with the per-row shape when known)."""
        data: dict[str, Any] = {"name": self.name, "type": self.spark_type}
        if self.container == "array" and self.row_shape is not None:
            data["shape"] = list(self.row_shape)
        return data


def spark_column_name(name: str) -> str:
    """A model output name made safe as a Parquet/Spark column name."""
    cleaned = _SPARK_NAME.sub("_", name)
    return cleaned or "output"


def columns_from_signature(outputs: list[dict[str, Any]]) -> list[ColumnSpec]:
    """Column specs of a model's outputs, from its signature."""
    specs = []
    for output in outputs:
        name = spark_column_name(output["name"])
        kind = output.get("kind", "tensor")
        if kind == "tensor":
            element = output.get("type") or "float32"
            if element not in ELEMENT_TYPES:
                raise ModelError(
                    f"Output {output['name']!r} has element type {element}, which cannot be "
                    "written to Parquet; cast it in the model."
                )
            shape = output.get("shape")
            if shape is not None and len(shape) == 1:
                specs.append(ColumnSpec(name, "scalar", element))
            elif shape is None:
                specs.append(ColumnSpec(name, "array", element))
            else:
                row = tuple(d if isinstance(d, int) else None for d in shape[1:])
                specs.append(ColumnSpec(name, "array", element, rank=len(row), row_shape=row))
            continue
        match = _MAP_KIND.match(kind)
        key_type = _ALIASES.get(match.group(1), match.group(1)) if match else None
        value_type = _ALIASES.get(match.group(2), match.group(2)) if match else None
        if key_type not in ELEMENT_TYPES or value_type not in ELEMENT_TYPES:
            raise ModelError(
                f"Output {output['name']!r} is a {kind}, which skil-sdk cannot write; "
                "make the model output tensors or a sequence of maps."
            )
        assert key_type is not None and value_type is not None
        specs.append(ColumnSpec(name, "map", value_type, key=key_type))
    return specs


def dummy_outputs(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """One zero row per output, shaped as the signature says (to learn post-processors' types)."""
    result: dict[str, Any] = {}
    for output in outputs:
        if output.get("kind", "tensor") != "tensor":
            result[output["name"]] = [{}]
            continue
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in (output.get("shape") or [1, 1])]
        dims[0] = 1
        element = output.get("type") or "float32"
        dtype = object if element == "string" else np.dtype(element)
        result[output["name"]] = np.zeros(dims, dtype=dtype)
    return result


def columns_from_values(values: dict[str, Any]) -> list[ColumnSpec]:
    """Column specs inferred from one batch of (post-processed) outputs."""
    specs = []
    for name, value in values.items():
        if isinstance(value, list):
            specs.append(ColumnSpec(spark_column_name(name), "map", "float32", key="int64"))
            continue
        array = np.asarray(value)
        element = "string" if array.dtype.kind in "OUS" else array.dtype.name
        if element not in ELEMENT_TYPES:
            raise ModelError(f"Post-processed output {name!r} has unsupported type {element}.")
        if array.ndim <= 1:
            specs.append(ColumnSpec(spark_column_name(name), "scalar", element))
        else:
            specs.append(ColumnSpec(spark_column_name(name), "array", element, rank=array.ndim - 1))
    return specs


def output_columns(
    signature: dict[str, Any], postprocess: Any | None = None, options: dict[str, str] | None = None
) -> list[ColumnSpec]:
    """The output columns of a job (after the post-processor, if any)."""
    outputs = signature["outputs"]
    if postprocess is None:
        return columns_from_signature(outputs)
    processed = postprocess(dummy_outputs(outputs), **(options or {}))
    by_signature = {c.name: c for c in columns_from_signature(outputs)}
    specs = []
    for spec in columns_from_values(processed):
        original = by_signature.get(spec.name)
        specs.append(original if original is not None and original.container == "map" else spec)
    return specs
