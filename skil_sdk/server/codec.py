"""Predict bodies in and out: JSON (``instances`` or ``inputs``) and Arrow IPC streams."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from skil_sdk.errors import InvalidValueError
from skil_sdk.server.shape_runs import ShapeRuns, json_runs

ARROW_STREAM = "application/vnd.apache.arrow.stream"

Features = np.ndarray | dict[str, Any] | list[Any] | ShapeRuns


def wants_arrow(content_type: str, accept: str) -> bool:
    """Whether to answer with an Arrow stream (asked for, or sent Arrow and not asked for JSON)."""
    if ARROW_STREAM in accept:
        return True
    return ARROW_STREAM in content_type and "application/json" not in accept


def decode_json(body: bytes, input_names: list[str]) -> tuple[Features, int]:
    """Features and row count from ``{"instances": [...]}`` or ``{"inputs": {name: [...]}}``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidValueError(
            'The request body is not JSON; send {"instances": [row, ...]} or '
            '{"inputs": {name: [row, ...]}}.'
        ) from exc
    if not isinstance(data, dict) or ("instances" in data) == ("inputs" in data):
        raise InvalidValueError(
            "The request body needs exactly one of 'instances' or 'inputs'; send "
            '{"instances": [row, ...]} or {"inputs": {name: [row, ...]}}.'
        )
    if "instances" in data:
        instances = data["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidValueError(
                "'instances' must be a non-empty list of rows; send one row per item."
            )
        if all(isinstance(row, dict) for row in instances):
            columns = {n: [row.get(n) for row in instances] for n in _names(instances)}
            return json_runs(columns) or columns, len(instances)
        runs = json_runs({"": instances})
        if runs is not None:
            return ShapeRuns([(rows, part[""]) for rows, part in runs.runs]), len(instances)
        return instances, len(instances)
    inputs = data["inputs"]
    if not isinstance(inputs, dict) or not inputs:
        raise InvalidValueError(
            f"'inputs' must map input names ({', '.join(input_names)}) to lists of rows; "
            "send one list per input."
        )
    counts = {k: len(v) if isinstance(v, list) else -1 for k, v in inputs.items()}
    if min(counts.values()) <= 0 or len(set(counts.values())) > 1:
        raise InvalidValueError(
            f"Every input needs a non-empty list with the same number of rows (got {counts}); "
            "send one row per item for every input."
        )
    return json_runs(dict(inputs)) or dict(inputs), next(iter(counts.values()))


def _names(instances: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in instances:
        for key in row:
            if key not in names:
                names.append(key)
    return names


def decode_arrow(body: bytes, input_names: list[str]) -> tuple[Features, int]:
    """Features from an Arrow IPC stream: one column per input, one row per instance.

    A single-input model takes any one column. Columns may be lists of values (flat
    rows, reshaped to the input's shape) or scalars.
    """
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(pa.BufferReader(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise InvalidValueError(
            "The request body is not an Arrow IPC stream; write it with "
            "pyarrow.ipc.new_stream, one column per model input."
        ) from exc
    if table.num_rows == 0 or table.num_columns == 0:
        raise InvalidValueError("The Arrow stream has no rows; send at least one row.")
    if len(set(table.column_names)) != table.num_columns:
        raise InvalidValueError(
            f"The Arrow stream repeats a column name ({table.column_names}); send one column "
            "per model input."
        )
    runs = _arrow_runs(table, input_names)
    if runs is not None:
        return runs, table.num_rows
    if len(input_names) == 1 and table.num_columns == 1:
        return _column(table.column(0), table.column_names[0]), table.num_rows
    return {name: _column(table.column(name), name) for name in table.column_names}, table.num_rows


def _arrow_runs(table: Any, input_names: list[str]) -> ShapeRuns | None:
    """Runs of one shape when the table's list columns hold rows of different shapes."""
    import pyarrow as pa

    from skil_sdk.errors import ModelError
    from skil_sdk.providers.arrays import feature_runs

    lists = [
        c for c in table.columns
        if pa.types.is_list(c.type) or pa.types.is_large_list(c.type)
    ]
    if not lists or table.column(0).null_count:
        return None
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        return None
    try:
        runs = list(feature_runs(batch, list(table.column_names)))
    except ModelError as exc:
        raise InvalidValueError(exc.message) from exc
    if len(runs) <= 1:
        return None
    single = len(input_names) == 1 and table.num_columns == 1
    return ShapeRuns(
        [(stop - start, values if single else dict(values)) for start, stop, values in runs]
    )


def _column(column: Any, name: str) -> np.ndarray:
    """A column as N rows: flat lists, nested lists (each row's own shape, read with Arrow's
    flatten and a reshape) or scalars."""
    from skil_sdk.errors import ModelError
    from skil_sdk.providers.arrays import column_to_matrix

    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if array.null_count:
        raise InvalidValueError(f"Column '{name}' has nulls; send a value in every row.")
    try:
        matrix = column_to_matrix(array, name)
    except ModelError as exc:
        raise InvalidValueError(exc.message) from exc
    import pyarrow as pa

    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)) and not (
        pa.types.is_fixed_size_list(array.type)
    ):
        return matrix.reshape(len(array))
    return matrix


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return _json_value(value.astype(object))
        if value.dtype == object:
            return [_json_value(v) for v in value]
        return value.tolist()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(_json_value(k)): _json_value(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def encode_json(outputs: dict[str, Any]) -> bytes:
    """``{"outputs": {name: [row, ...]}}`` (non-finite floats as null)."""
    data = {"outputs": {name: _json_value(value) for name, value in outputs.items()}}
    return json.dumps(data, allow_nan=False, separators=(",", ":")).encode()


def encode_arrow(outputs: dict[str, Any]) -> bytes:
    """An Arrow IPC stream: one column per output, one row per instance.

    Tensor rows of more than one value become ``fixed_size_list`` columns (the row
    shape is in the field metadata as ``shape``); ZipMap outputs become ``map`` columns.
    """
    import pyarrow as pa

    fields = []
    arrays = []
    for name, value in outputs.items():
        array, metadata = _arrow_column(pa, value)
        fields.append(pa.field(name, array.type, metadata=metadata))
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _arrow_column(pa: Any, value: Any) -> tuple[Any, dict[str, str]]:
    if isinstance(value, np.ndarray):
        row_shape = list(value.shape[1:])
        metadata = {"shape": json.dumps(row_shape)}
        if value.ndim <= 1:
            return pa.array(value.reshape(-1) if value.dtype != object else list(value)), metadata
        size = int(np.prod(row_shape))
        flat = value.reshape(-1)
        values = pa.array(flat if flat.dtype != object else list(flat))
        return pa.FixedSizeListArray.from_arrays(values, size), metadata
    rows = list(value)
    if rows and all(isinstance(r, np.ndarray) for r in rows):  # rows of different shapes
        return pa.array([r.tolist() for r in rows]), {}
    if rows and all(isinstance(r, dict) for r in rows):
        first_key = next((k for r in rows for k in r), 0)
        key_type = pa.string() if isinstance(first_key, str) else pa.int64()
        map_type = pa.map_(key_type, pa.float64())
        items = [[(k, float(v)) for k, v in r.items()] for r in rows]
        return pa.array(items, type=map_type), {"kind": "map"}
    return pa.array(_json_value(rows)), {}
