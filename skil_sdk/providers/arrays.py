"""Conversions between Arrow columns and the numpy batches models take."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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


def _is_list(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    )


def _first_of_each_row(parents: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the index of its first element in ``parents`` and whether it has one."""
    starts = np.searchsorted(parents, np.arange(rows))
    clipped = np.minimum(starts, max(len(parents) - 1, 0))
    has = (starts < len(parents)) & (parents[clipped] == np.arange(rows)) if len(parents) else (
        np.zeros(rows, dtype=bool)
    )
    return clipped, has


def tensor_rows(
    column: pa.Array | pa.ChunkedArray, name: str = "features", ids: Any = None
) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The leaf values of a (nested) list column, each row's shape (``rows x depth``), and
    each row's offset into the leaf values (``rows + 1``).

    A row is a regular tensor: at each nesting level, every list of one row has the same
    length (Arrow's flatten level by level; no Python loop per value, and no array per
    value either). A scalar column has depth 0. Null rows, null values and rows that are
    not regular are refused, naming the row by its id when ``ids`` is given.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    rows = len(column)
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ModelError(
            f"Column {name!r} has {column.null_count} null rows (first: "
            f"{_row_name(ids, row)}); drop or fill them before inference.",
            stage="read",
        )
    parents = np.arange(rows)
    dims: list[np.ndarray] = []
    current: pa.Array = column
    while _is_list(current.type):
        if dims and current.null_count:
            nulls = np.flatnonzero(current.is_null().to_numpy(zero_copy_only=False))
            _null_values(name, current.null_count, ids, int(parents[int(nulls[0])]))
        if pa.types.is_fixed_size_list(current.type):
            lengths = np.full(len(current), current.type.list_size, dtype=np.int64)
        else:
            lengths = pc.list_value_length(current).to_numpy(zero_copy_only=False)
            lengths = lengths.astype(np.int64)
        if not dims:
            row_length = lengths  # the first level: one list per row
        else:
            first, has = _first_of_each_row(parents, rows)
            row_length = np.where(has, lengths[first] if len(lengths) else 0, 0)
            uneven = lengths != row_length[parents]
            if uneven.any():
                row = int(parents[int(np.argmax(uneven))])
                raise ModelError(
                    f"Column {name!r} holds a row that is not a regular tensor "
                    f"({_row_name(ids, row)} has lists of different lengths at one level); "
                    "give every row one shape.",
                    stage="read",
                )
        dims.append(row_length)
        child = current.flatten()
        if _is_list(child.type):  # only inner list levels need each element's row
            parents = np.repeat(parents, lengths)
        current = child
    shapes = np.stack(dims, axis=1) if dims else np.zeros((rows, 0), dtype=np.int64)
    sizes = np.prod(shapes, axis=1) if dims else np.ones(rows, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    if current.null_count:
        nulls = np.flatnonzero(current.is_null().to_numpy(zero_copy_only=False))
        row = int(np.searchsorted(offsets, int(nulls[0]), side="right")) - 1
        _null_values(name, current.null_count, ids, row)
    return current, shapes, offsets


def _null_values(name: str, count: int, ids: Any, row: int) -> None:
    """Refuse null values inside rows (numpy would turn them into NaN silently)."""
    raise ModelError(
        f"Column {name!r} has {count} null values inside its rows (first in "
        f"{_row_name(ids, row)}); fill them (e.g. with NaN or 0) before inference.",
        stage="read",
    )


def _tensor(
    leaf: pa.Array, shapes: np.ndarray, offsets: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Rows ``start..stop`` (all of one shape) as one numpy array ``[rows, *shape]``."""
    begin, end = int(offsets[start]), int(offsets[stop])
    values = leaf.slice(begin, end - begin).to_numpy(zero_copy_only=False)
    row_shape = [int(d) for d in shapes[start]] if shapes.shape[1] else [1]
    return values.reshape([stop - start, *row_shape])


def column_to_matrix(
    column: pa.Array | pa.ChunkedArray, name: str = "features", ids: Any = None
) -> np.ndarray:
    """A list (or scalar) column of N rows as one numpy array of N rows.

    A flat list column gives ``[N, width]``, a nested one ``[N, d1, d2, ...]`` (each row's
    own shape), a scalar column ``[N, 1]``. Every row must have the same shape and none
    may be null; an error names the offending row by its id when ``ids`` is given.
    """
    leaf, shapes, offsets = tensor_rows(column, name, ids)
    rows = len(shapes)
    if rows and shapes.shape[1]:
        differs = np.any(shapes != shapes[0], axis=1)
        if differs.any():
            row = int(np.argmax(differs))
            raise ModelError(
                f"Rows of column {name!r} have different feature lengths "
                f"({_dims(shapes[0])} in {_row_name(ids, 0)}, {_dims(shapes[row])} in "
                f"{_row_name(ids, row)}); every row must have the length the model expects.",
                stage="shape",
            )
    if not rows:
        return leaf.to_numpy(zero_copy_only=False).reshape([0, *([0] * max(1, shapes.shape[1]))])
    return _tensor(leaf, shapes, offsets, 0, rows)


def _dims(shape: np.ndarray) -> str:
    return "x".join(str(int(d)) for d in shape)


def features_from_batch(batch: pa.RecordBatch, columns: list[str], ids: Any = None) -> Any:
    """Features of a record batch: one array, or a dict of column name to array.

    ``ids`` (the batch's ids) lets an error name the offending row by its id.
    """
    if len(columns) == 1:
        return column_to_matrix(batch.column(columns[0]), columns[0], ids)
    return {c: column_to_matrix(batch.column(c), c, ids) for c in columns}


def feature_runs(
    batch: pa.RecordBatch, columns: list[str], ids: Any = None
) -> Iterator[tuple[int, int, Any]]:
    """``(start, stop, features)`` for each run of consecutive rows of one shape.

    Rows of different shapes (text lines of different widths, images of different
    sizes) run as sub-batches of equal shape, in the order given; a batch whose rows all
    have one shape is one run.
    """
    read = {c: tensor_rows(batch.column(c), c, ids) for c in columns}
    rows = batch.num_rows
    if not rows:
        return
    combined = np.concatenate([shapes for _leaf, shapes, _offsets in read.values()], axis=1)
    if combined.shape[1]:
        changes = np.flatnonzero(np.any(combined[1:] != combined[:-1], axis=1)) + 1
    else:
        changes = np.array([], dtype=np.int64)
    bounds = [0, *[int(c) for c in changes], rows]
    for start, stop in itertools.pairwise(bounds):
        arrays = {
            c: _tensor(leaf, shapes, offsets, start, stop)
            for c, (leaf, shapes, offsets) in read.items()
        }
        yield start, stop, arrays[columns[0]] if len(columns) == 1 else arrays


def runs_keeping_bad_rows(
    batch: pa.RecordBatch,
    columns: list[str],
    id_column: str,
    source: str | None = None,
    first_offset: int | None = None,
) -> tuple[pa.RecordBatch, list[tuple[int, int, Any]], Any]:
    """``(batch, runs, bad)``: :func:`feature_runs` of a record batch whose rows that cannot
    be read (nulls, rows that are not regular tensors) are taken out of ``batch`` and
    returned as :class:`~skil_sdk.BadRows` (None when every row reads), their offsets
    counted from ``first_offset``.

    Rows are checked one by one only when the batch as a whole does not read.
    """
    from skil_sdk.inference.quarantine import BadRows

    try:
        return batch, list(feature_runs(batch, columns, batch.column(id_column))), None
    except ModelError as exc:
        if exc.stage is None:
            raise
        failure = exc
    good = np.ones(batch.num_rows, dtype=bool)
    errors: list[str] = []
    for row in range(batch.num_rows):
        one = batch.slice(row, 1)
        try:
            for column in columns:
                tensor_rows(one.column(column), column, one.column(id_column))
        except ModelError as exc:
            good[row] = False
            errors.append(exc.message)
    if good.all():
        raise failure
    bad_rows = np.flatnonzero(~good)
    kept = batch.filter(pa.array(good))
    bad = BadRows(
        batch.column(id_column).take(pa.array(bad_rows)),
        errors,
        stage="read",
        source=source,
        offsets=[(first_offset or 0) + int(r) for r in bad_rows],
    )
    return kept, list(feature_runs(kept, columns, kept.column(id_column))), bad
