"""Conversions between Arrow columns and the numpy batches models take."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skil_sdk.errors import ModelError

_ARROW_TO_SPARK = {
    pa.int8(): "tinyint",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.uint8(): "smallint",
    pa.uint16(): "int",
    pa.uint32(): "bigint",
    pa.float16(): "float",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.string(): "string",
    pa.large_string(): "string",
    pa.binary(): "binary",
    pa.large_binary(): "binary",
    pa.date32(): "date",
}


def spark_type_of(arrow_type: pa.DataType) -> str:
    """The Spark SQL type name of an Arrow scalar type (for ids)."""
    if arrow_type in _ARROW_TO_SPARK:
        return _ARROW_TO_SPARK[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    raise ModelError(
        f"Ids of Arrow type {arrow_type} are not supported; use integer or string ids."
    )


_SPARK_TO_ARROW = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def arrow_type_of_spark_name(name: str) -> pa.DataType:
    """The Arrow type of a Spark SQL scalar type name (as :func:`spark_type_of` returns)."""
    if name in _SPARK_TO_ARROW:
        return _SPARK_TO_ARROW[name]
    if name.startswith("decimal("):
        precision, scale = name[len("decimal(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    raise ModelError(f"Ids of Spark type {name} are not supported; use integer or string ids.")


def _row_name(ids: Any, row: int) -> str:
    """How an error names row ``row``: by its id when the ids are known."""
    if ids is None:
        return f"row {row}"
    value = ids[row]
    value = value.as_py() if hasattr(value, "as_py") else value
    value = value.item() if isinstance(value, np.generic) else value
    return f"the row with id {value!r}"


def _refuse_null_values(
    column: pa.Array, flat: pa.Array, name: str, ids: Any
) -> None:
    """Refuse null values inside rows (numpy would turn them into NaN silently)."""
    if flat.null_count:
        offsets = column.offsets.to_numpy() if hasattr(column, "offsets") else None
        first = int(np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0])
        if offsets is not None:
            row = int(np.searchsorted(offsets - offsets[0], first, side="right")) - 1
        else:
            row = first // column.type.list_size
        raise ModelError(
            f"Column {name!r} has {flat.null_count} null values inside its rows (first in "
            f"{_row_name(ids, row)}); fill them (e.g. with NaN or 0) before inference."
        )


def column_to_matrix(
    column: pa.Array | pa.ChunkedArray, name: str = "features", ids: Any = None
) -> np.ndarray:
    """A list (or scalar) column of N rows as a 2-D numpy array of N rows.

    Every row must hold the same number of values and none may be null; an error names
    the offending row by its id when ``ids`` (the batch's id column) is given.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ModelError(
            f"Column {name!r} has {column.null_count} null rows (first: "
            f"{_row_name(ids, row)}); drop or fill them before inference."
        )
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if n and lengths.min() != lengths.max():
            row = int(np.argmax(lengths != lengths[0]))
            raise ModelError(
                f"Rows of column {name!r} have different feature lengths "
                f"({int(lengths[0])} in {_row_name(ids, 0)}, {int(lengths[row])} in "
                f"{_row_name(ids, row)}); every row must have the length the model expects."
            )
        flat = column.flatten()
        _refuse_null_values(column, flat, name, ids)
        values = flat.to_numpy(zero_copy_only=False)
        width = int(lengths[0]) if n else 0
        return values.reshape(n, width)
    if pa.types.is_fixed_size_list(column.type):
        flat = column.flatten()
        _refuse_null_values(column, flat, name, ids)
        values = flat.to_numpy(zero_copy_only=False)
        return values.reshape(n, column.type.list_size)
    return column.to_numpy(zero_copy_only=False).reshape(n, 1)


def features_from_batch(batch: pa.RecordBatch, columns: list[str], ids: Any = None) -> Any:
    """Features of a record batch: one matrix, or a dict of column name to matrix.

    ``ids`` (the batch's ids) lets an error name the offending row by its id.
    """
    if len(columns) == 1:
        return column_to_matrix(batch.column(columns[0]), columns[0], ids)
    return {c: column_to_matrix(batch.column(c), c, ids) for c in columns}
