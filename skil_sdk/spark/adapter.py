"""The one provider adapter: whatever ``data()`` returned, as the form executors consume.

A provider returns a Spark DataFrame, an RDD of ``(key, ndarray)`` pairs (``(key,
(features, label))`` for evaluation), or an :class:`~skil_sdk.ExecutorSource`.
:func:`adapt` turns each into a :class:`KeyedInput`: a DataFrame that Spark maps over
with ``mapInArrow`` and a reader that, on the executors, turns its Arrow batches into
:class:`Batch` es of ids, features, kept columns and (for evaluation) labels. Batch
inference and evaluation are two sinks of that one form.
"""

from __future__ import annotations

import logging
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from skil_sdk.errors import InvalidValueError, ProviderError, SkilError
from skil_sdk.job.packing import Packing
from skil_sdk.job.plan import TaskPlan

_LOG = logging.getLogger("skil_sdk")


class Batch(NamedTuple):
    """Rows as the executors consume them."""

    ids: Any
    features: Any
    kept: list[Any]
    labels: Any = None


Reader = Callable[[Iterable[Any]], Iterator[Batch]]


@dataclass(frozen=True)
class KeyedInput:
    """A provider's data in the one form: ``frame`` mapped by ``reader`` on the executors."""

    frame: Any
    reader: Reader
    #: The Spark SQL type of the ids (``bigint``, ``string``...).
    id_type: str
    #: Kept columns as ``(name, Spark SQL type)``, and their Arrow types.
    keep: tuple[tuple[str, str], ...] = ()
    keep_arrow: tuple[Any, ...] = ()
    #: The number of input rows when the provider knows it cheaply.
    rows_total: int | None = None
    #: An executor-read provider's tasks (None otherwise): partition ``p`` of ``frame``
    #: runs task ``plan.todo[p]``.
    plan: TaskPlan | None = None

    @property
    def packing(self) -> Packing | None:
        """How an executor-read provider's splits were packed into tasks (None otherwise)."""
        return self.plan.packing if self.plan is not None else None


def call_provider(info: Any, spark: Any, options: dict[str, str], job_id: str) -> Any:
    """``info.cls().data(spark, **options)``; a failure of the provider's own code becomes
    a :class:`ProviderError` naming its type and file:line (traceback on stderr, the log)."""
    try:
        return info.cls().data(spark, **options)
    except SkilError:
        raise
    except Exception as exc:
        raise provider_failure(exc, info.name, "data()", _package_dir(info.cls), job_id) from exc


def provider_failure(
    exc: BaseException, provider: str, where: str, package_dir: str | None, job_id: str
) -> ProviderError:
    """The one-sentence error for an exception raised by a provider's code; the traceback
    is logged (``skil_sdk`` logger: the job's log for a submitted job). ``job_id`` is
    empty for a job run in the caller's own SparkSession."""
    _LOG.error("The %s provider failed in %s", provider, where, exc_info=exc)
    location = _location(exc, package_dir)
    logs = (
        f"`skil-sdk jobs logs {job_id}`" if job_id else "this process's log (the 'skil_sdk' logger)"
    )
    return ProviderError(
        f"The {provider} provider failed in {where}: {type(exc).__name__}: {exc}"
        f"{f' (at {location})' if location else ''}; the full traceback is in {logs}."
    )


def _package_dir(cls: type) -> str | None:
    module = sys.modules.get(cls.__module__)
    top = sys.modules.get(cls.__module__.split(".")[0])
    source = getattr(top, "__file__", None) or getattr(module, "__file__", None)
    return str(Path(source).parent) if source else None


def _location(exc: BaseException, package_dir: str | None) -> str:
    """``file:line`` of the deepest frame in the provider's package (else the deepest)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    inside = [f for f in frames if package_dir and f.filename.startswith(package_dir)]
    frame = (inside or frames)[-1]
    return f"{_short(frame.filename, package_dir)}:{frame.lineno}"


def _short(filename: str, package_dir: str | None) -> str:
    if package_dir and filename.startswith(package_dir):
        return str(Path(package_dir).name / Path(filename).relative_to(package_dir))
    return filename


def adapt(
    spark: Any,
    data: Any,
    provider: str,
    signature: Any,
    batch_size: int,
    keep: tuple[str, ...] = (),
    label_column: str | None = None,
    job_id: str = "",
    planner: Callable[[Any, list[Any]], TaskPlan] | None = None,
) -> KeyedInput:
    """``data`` (what the provider returned) as a :class:`KeyedInput`.

    ``label_column`` is the evaluation's label column (None for batch inference);
    ``planner`` gives an ExecutorSource's tasks from its splits
    (:func:`~skil_sdk.job.plan.plan_tasks`); it is needed for an ExecutorSource.
    """
    from pyspark.sql import DataFrame

    from skil_sdk.providers.interface import ExecutorSource

    if isinstance(data, ExecutorSource):
        return _from_source(
            spark,
            data,
            provider,
            batch_size,
            keep,
            label_column,
            job_id,
            planner,
        )
    if not isinstance(data, DataFrame):
        if not hasattr(data, "mapPartitions"):
            raise InvalidValueError(
                f"The {provider} provider's data() returned {type(data).__name__}; return a "
                "Spark DataFrame, an RDD of (key, ndarray) pairs, or an ExecutorSource."
            )
        data = _rdd_to_frame(spark, data, provider, label_column)
    return _from_frame(data, provider, signature, keep, label_column)


def _from_source(
    spark: Any,
    source: Any,
    provider: str,
    batch_size: int,
    keep: tuple[str, ...],
    label_column: str | None,
    job_id: str,
    planner: Callable[[Any, list[Any]], TaskPlan] | None,
) -> KeyedInput:
    if planner is None:
        raise TypeError("adapt() needs a planner for an ExecutorSource's tasks")
    if keep:
        raise InvalidValueError(
            f"The {provider} provider reads its data on the executors and has no columns to "
            "keep; drop --keep-column."
        )
    if label_column is not None:
        require_labels(source, provider, label_column)
    # Tasks scheduled without any Python on the JVM side: the task of partition p is
    # row p of spark.range, alone in its partition; its splits travel in the closure.
    splits = list(source.splits())
    plan = planner(source, splits)
    encoded = [pickle.dumps([splits[i] for i in plan.tasks[t]]) for t in plan.todo]
    package_dir = _package_dir(type(source))

    def reader(batches: Iterable[Any]) -> Iterator[Batch]:
        from skil_sdk.inference.readahead import read_ahead

        for batch in batches:
            for index in batch.column(0).to_pylist():
                task = pickle.loads(encoded[index])
                yield from read_ahead(
                    read_task(
                        source, task, batch_size, provider, package_dir, job_id, label_column
                    )
                )

    frame = spark.range(0, len(encoded), 1, max(1, len(encoded)))
    return KeyedInput(frame, reader, source.id_type(), rows_total=plan.rows_in, plan=plan)


def require_labels(source: Any, provider: str, label_column: str) -> None:
    """Refuse an evaluation of an :class:`~skil_sdk.ExecutorSource` that has no labels."""
    if not source.has_labels(label_column):
        raise InvalidValueError(
            f"The {provider} provider supplies no labels ({type(source).__name__} has no "
            f"label column {label_column!r} and implements no labels()); pass --label-column "
            "with the column holding labels, use the provider's labels option (`skil-sdk "
            "providers list`), or implement labels() in its source."
        )


def read_task(
    source: Any,
    splits: Iterable[Any],
    batch_size: int,
    provider: str,
    package_dir: str | None,
    job_id: str,
    label_column: str | None = None,
) -> Iterator[Batch]:
    """The :class:`Batch` es of one packed task: its splits read one after another."""
    for split in splits:
        yield from read_split(
            source, split, batch_size, provider, package_dir, job_id, label_column
        )


def read_split(
    source: Any,
    split: Any,
    batch_size: int,
    provider: str,
    package_dir: str | None,
    job_id: str,
    label_column: str | None = None,
) -> Iterator[Batch]:
    """The :class:`Batch` es of one split of an :class:`~skil_sdk.ExecutorSource` (the
    executors' and the local engine's workers' one reading path)."""
    from skil_sdk.inference.quarantine import BadRows

    try:
        if label_column is None:
            for item in source.read(split, batch_size):
                if isinstance(item, BadRows):
                    yield item  # type: ignore[misc]
                    continue
                ids, features = item
                yield Batch(ids, features, [])
        else:
            for ids, features, labels in source.read_labelled(split, batch_size, label_column):
                yield Batch(ids, features, [], labels)
    except SkilError:
        raise
    except Exception as exc:
        raise provider_failure(exc, provider, "read()", package_dir, job_id) from exc


def source_package_dir(source: Any) -> str | None:
    """The directory of the package of a source's class (for file:line in errors)."""
    return _package_dir(type(source))


def feature_columns(columns: list[str], signature: Any) -> list[str]:
    """The columns holding the model's inputs: one per input, or ``features``."""
    names = [i["name"] for i in signature["inputs"]]
    if len(names) > 1 and all(n in columns for n in names):
        return names
    if "features" in columns:
        return ["features"]
    if len(names) == 1 and names[0] in columns:
        return names
    raise InvalidValueError(
        f"The provider's data has no 'features' column nor columns named after the model's "
        f"inputs ({', '.join(names)}); its columns are {', '.join(columns)}."
    )


def _from_frame(
    frame: Any, provider: str, signature: Any, keep: tuple[str, ...], label: str | None
) -> KeyedInput:
    from pyspark.sql.pandas.types import to_arrow_type

    from skil_sdk.providers.arrays import column_to_matrix, runs_keeping_bad_rows

    columns = list(frame.columns)
    if "id" not in columns:
        raise InvalidValueError(
            f"The {provider} provider returned data without an 'id' column (columns: "
            f"{', '.join(columns)}); name the key column 'id'."
        )
    missing = [k for k in keep if k not in columns]
    if missing:
        raise InvalidValueError(
            f"--keep-column {missing[0]!r} is not a column of the provider's data (columns: "
            f"{', '.join(columns)})."
        )
    if label is not None and label not in columns:
        raise InvalidValueError(
            f"The {provider} provider's data has no label column {label!r} (columns: "
            f"{', '.join(columns)}); pass --label-column with the column holding labels."
        )
    features = feature_columns([c for c in columns if c != label], signature)
    keep_types = [frame.schema[k].dataType for k in keep]
    selected = ["id", *features, *keep, *([label] if label else [])]

    def reader(batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            batch, runs, bad = runs_keeping_bad_rows(batch, features, "id")
            if bad is not None:
                yield bad._replace(offsets=None)  # a DataFrame's rows have no file offsets
            ids = batch.column("id")
            labels = column_to_matrix(batch.column(label), label, ids) if label else None
            for start, stop, values in runs:
                count = stop - start
                yield Batch(
                    ids.slice(start, count),
                    values,
                    [batch.column(k).slice(start, count) for k in keep],
                    None if labels is None else labels[start:stop],
                )

    return KeyedInput(
        frame.select(*selected),
        reader,
        frame.schema["id"].dataType.simpleString(),
        keep=tuple((k, t.simpleString()) for k, t in zip(keep, keep_types, strict=True)),
        keep_arrow=tuple(to_arrow_type(t) for t in keep_types),
    )


_ID_TYPES = {bool: "boolean", int: "bigint", float: "double", str: "string", bytes: "binary"}


def _rdd_to_frame(spark: Any, rdd: Any, provider: str, label: str | None) -> Any:
    """An RDD of ``(key, features)`` (or ``(key, (features, label))``) pairs as a DataFrame."""
    first = rdd.take(1)
    if not first:
        empty = "id bigint, features array<float>"
        return spark.createDataFrame([], empty if label is None else f"{empty}, `{label}` double")
    key, value = _pair(first[0], provider, label)
    features, _label = value if label is not None else (value, None)
    kind = np.asarray(features).dtype
    element = {"f": "double" if kind.itemsize == 8 else "float", "i": "bigint", "u": "bigint"}
    spark_elem = element.get(kind.kind, "double")
    caster = float if kind.kind == "f" else int
    spark_id = _ID_TYPES.get(type(_scalar(key)), "string")

    def to_row(pair: Any) -> tuple[Any, ...]:
        k, v = _pair(pair, provider, label)
        if label is None:
            return _scalar(k), [caster(x) for x in np.asarray(v).reshape(-1)]
        row, target = v
        values = [float(x) for x in np.asarray(target, dtype=np.float64).reshape(-1)]
        return _scalar(k), [caster(x) for x in np.asarray(row).reshape(-1)], values

    schema = f"id {spark_id}, features array<{spark_elem}>"
    if label is not None:
        schema += f", `{label}` array<double>"
    return spark.createDataFrame(rdd.map(to_row), schema)


def _pair(pair: Any, provider: str, label: str | None) -> tuple[Any, Any]:
    try:
        key, value = pair
        if label is not None:
            if not isinstance(value, tuple | list):
                raise TypeError("no label beside the features")
            _features, _target = value
    except (TypeError, ValueError) as exc:
        shape = "(key, ndarray)" if label is None else "(key, (features, label))"
        what = "pairs without labels" if label is not None else f"{type(pair).__name__} items"
        raise InvalidValueError(
            f"The {provider} provider's RDD holds {what}, not {shape} pairs; return {shape} pairs."
        ) from exc
    return key, value


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
