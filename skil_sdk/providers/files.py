"""Built-in file providers: ``parquet``, ``csv`` and ``numpy``.

``parquet`` and ``numpy`` return an :class:`ExecutorSource`: the driver only lists
splits (Parquet row groups, ranges of ``.npy`` rows); the executors read them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skil_sdk.errors import InvalidValueError
from skil_sdk.providers.interface import ExecutorSource, KeyedDataSetProvider, ProviderOption


def _require(options: dict[str, str], name: str, provider: str) -> str:
    """An option ``data()`` needs (jobs check it before Spark; direct calls get this)."""
    value = options.get(name)
    if not value:
        raise InvalidValueError(
            f"The {provider} provider needs the option {name!r}; pass "
            f"--provider-option {name}=PATH."
        )
    return value


def _split_columns(raw: str) -> list[str]:
    return [c.strip() for c in raw.split(",") if c.strip()]


def _s3_filesystem(path: str, endpoint: str, anonymous: bool) -> tuple[Any, str]:
    """An S3 file system for an S3-compatible endpoint (MinIO, Ceph, a local test server)."""
    import pyarrow.fs as pafs

    scheme, _, address = endpoint.rpartition("://")
    filesystem = pafs.S3FileSystem(
        endpoint_override=address or endpoint,
        scheme=scheme or "https",
        anonymous=anonymous,
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )
    return filesystem, path.split("://", 1)[1].split("?", 1)[0].rstrip("/")


def _parquet_files(
    path: str, s3_endpoint: str | None = None, anonymous: bool = False
) -> tuple[Any, list[str]]:
    """The file system of ``path`` and the Parquet files it names (a file or a tree)."""
    import pyarrow.fs as pafs

    try:
        if s3_endpoint or (anonymous and path.startswith(("s3://", "s3a://"))):
            if not path.startswith(("s3://", "s3a://")):
                raise InvalidValueError(
                    f"s3_endpoint and anonymous apply to s3:// paths, not {path!r}."
                )
            filesystem, root = _s3_filesystem(path, s3_endpoint or "", anonymous)
        elif "://" in path:
            filesystem, root = pafs.FileSystem.from_uri(
                "s3://" + path[len("s3a://") :] if path.startswith("s3a://") else path
            )
        else:
            filesystem, root = pafs.LocalFileSystem(), str(Path(path).expanduser().resolve())
        info = filesystem.get_file_info(root)
    except (ValueError, OSError) as exc:
        raise InvalidValueError(f"Cannot open {path!r} ({exc}); check the path option.") from exc
    if info.type == pafs.FileType.File:
        return filesystem, [root]
    if info.type != pafs.FileType.Directory:
        raise InvalidValueError(f"No Parquet data at {path!r}; check the provider's path option.")
    selector = pafs.FileSelector(root, recursive=True)
    visible = sorted(
        f.path
        for f in filesystem.get_file_info(selector)
        if f.type == pafs.FileType.File
        and not any(part.startswith(("_", ".")) for part in f.path[len(root) :].split("/"))
    )
    # files named *.parquet when there are any (Spark's part files), else every visible file
    files = [f for f in visible if f.endswith((".parquet", ".parq"))] or visible
    return filesystem, files


@dataclass(frozen=True)
class ParquetSplit:
    """One row group of one Parquet file."""

    path: str
    row_group: int
    rows: int


class ParquetSource(ExecutorSource):
    """Parquet files read by the executors, one row group per split.

    The driver lists the files and reads their footers only (through pyarrow's file
    systems: local paths, ``s3://``, ``hdfs://``, ``gs://``).
    """

    def __init__(
        self,
        path: str,
        id_column: str,
        feature_columns: list[str],
        s3_endpoint: str | None = None,
        anonymous: bool = False,
    ) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.id_column = id_column
        self.feature_columns = feature_columns
        self._filesystem, files = _parquet_files(path, s3_endpoint, anonymous)
        self._splits: list[ParquetSplit] = []
        schema = None
        for file in files:
            with self._filesystem.open_input_file(file) as handle:
                metadata = pq.ParquetFile(handle).metadata
            if schema is None:
                schema = metadata.schema.to_arrow_schema()
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                if rows:
                    self._splits.append(ParquetSplit(file, group, rows))
        if schema is None:
            raise InvalidValueError(
                f"No Parquet files at {path!r}; check the provider's path option."
            )
        missing = [c for c in [id_column, *feature_columns] if c not in schema.names]
        if missing:
            raise InvalidValueError(
                f"The Parquet data at {path!r} has no column {missing[0]!r} (columns: "
                f"{', '.join(schema.names)}); set --provider-option id=... / features=..."
            )
        self._id_arrow_type = schema.field(id_column).type
        self._column_names = list(schema.names)

    def splits(self) -> list[ParquetSplit]:
        return list(self._splits)

    def count_hint(self) -> int:
        return sum(s.rows for s in self._splits)

    def split_rows(self, split: ParquetSplit) -> int:
        return split.rows

    def id_type(self) -> str:
        from skil_sdk.providers.arrays import spark_type_of

        return spark_type_of(self._id_arrow_type)

    def read(self, split: ParquetSplit, batch_size: int) -> Iterator[Any]:
        """``(ids, features)`` batches of the split's rows; rows that cannot be read (nulls,
        rows that are not regular tensors) come as :class:`~skil_sdk.BadRows`."""
        from skil_sdk.providers.arrays import runs_keeping_bad_rows

        seen = 0
        for batch in self.record_batches(split, batch_size, []):
            rows = batch.num_rows
            batch, runs, bad = runs_keeping_bad_rows(
                batch, self.feature_columns, self.id_column, split.path
            )
            if bad is not None:  # offsets in the file, looked up only for bad rows
                first = self._row_group_offset(split) + seen
                yield bad._replace(offsets=[first + int(o) for o in bad.offsets or ()])
            seen += rows
            ids = batch.column(self.id_column)
            for start, stop, features in runs:
                yield ids.slice(start, stop - start), features

    def _row_group_offset(self, split: ParquetSplit) -> int:
        """The offset in its file of the split's first row."""
        import pyarrow.parquet as pq

        with self._filesystem.open_input_file(split.path) as handle:
            metadata = pq.ParquetFile(handle).metadata
        return sum(metadata.row_group(g).num_rows for g in range(split.row_group))

    def fingerprint(self) -> str:
        """Each file's path, size and modification time (the footers were read already)."""
        from skil_sdk.providers.fingerprint import files_fingerprint

        return files_fingerprint(sorted({s.path for s in self._splits}), self._filesystem)

    def has_labels(self, label_column: str) -> bool:
        """Whether the files have the column ``label_column``."""
        return label_column in self._column_names

    def read_labelled(
        self, split: ParquetSplit, batch_size: int, label_column: str
    ) -> Iterator[tuple[Any, Any, np.ndarray]]:
        """``(ids, features, labels)`` read in one pass, the labels from ``label_column``."""
        from skil_sdk.providers.arrays import column_to_matrix, feature_runs

        for batch in self.record_batches(split, batch_size, [label_column]):
            ids = batch.column(self.id_column)
            labels = column_to_matrix(batch.column(label_column), label_column, ids)
            for start, stop, features in feature_runs(batch, self.feature_columns, ids):
                yield ids.slice(start, stop - start), features, labels[start:stop]

    @property
    def filesystem(self) -> Any:
        """The pyarrow file system the files are read through."""
        return self._filesystem

    def record_batches(
        self, split: ParquetSplit, batch_size: int, extra: list[str]
    ) -> Iterator[Any]:
        """Arrow batches of the split: the id, feature and ``extra`` columns."""
        import pyarrow.parquet as pq

        columns = [self.id_column, *self.feature_columns, *extra]
        with self._filesystem.open_input_file(split.path) as handle:
            parquet = pq.ParquetFile(handle)
            yield from parquet.iter_batches(
                batch_size=batch_size, row_groups=[split.row_group], columns=columns
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_splits"] = []
        return state


class ParquetProvider(KeyedDataSetProvider):
    """Parquet files or directories with an id column and feature column(s)."""

    PLUGIN_NAME = "parquet"
    READS_ON_EXECUTORS = True
    OPTIONS = (
        ProviderOption(
            "path",
            "a Parquet file or directory (local, s3://, hdfs://)",
            required=True,
            type="path",
        ),
        ProviderOption("id", "the id column", default="id"),
        ProviderOption(
            "features",
            "the feature column(s), comma-separated (one per model input)",
            default="features",
        ),
        ProviderOption(
            "s3_endpoint", "an S3-compatible endpoint for s3:// paths, e.g. http://minio:9000"
        ),
        ProviderOption(
            "anonymous", "true: read s3:// without credentials", default="false", type="bool"
        ),
    )

    def data(self, spark: Any, **options: str) -> ParquetSource:
        path = _require(options, "path", self.PLUGIN_NAME)
        anonymous = options.get("anonymous", "false").lower()
        return ParquetSource(
            path,
            options.get("id", "id"),
            _split_columns(options.get("features", "features")),
            s3_endpoint=options.get("s3_endpoint"),
            anonymous=anonymous == "true",
        )


class CsvProvider(KeyedDataSetProvider):
    """CSV files with a header: an id column and numeric feature columns."""

    PLUGIN_NAME = "csv"
    OPTIONS = (
        ProviderOption("path", "a CSV file, directory or glob", required=True, type="path"),
        ProviderOption("id", "the id column", default="id"),
        ProviderOption(
            "features",
            "the feature columns, comma-separated (default: every column but id and label)",
        ),
        ProviderOption("separator", "the field separator", default=","),
        ProviderOption(
            "label",
            "the label column, kept as 'label' for evaluation jobs (used when present)",
            default="label",
        ),
    )

    def data(self, spark: Any, **options: str) -> Any:
        from pyspark.sql import functions as F

        path = _require(options, "path", self.PLUGIN_NAME)
        id_column = options.get("id", "id")
        frame = (
            spark.read.option("header", "true")
            .option("sep", options.get("separator", ","))
            .option("inferSchema", "true")
            .csv(path)
        )
        if id_column not in frame.columns:
            raise InvalidValueError(
                f"The CSV data at {path!r} has no column {id_column!r} (columns: "
                f"{', '.join(frame.columns)}); set --provider-option id=COLUMN."
            )
        label = options.get("label", "label")
        if label not in frame.columns:
            if "label" in options and options["label"] != "label":
                raise InvalidValueError(
                    f"The CSV data at {path!r} has no label column {label!r} (columns: "
                    f"{', '.join(frame.columns)}); set --provider-option label=COLUMN."
                )
            label = ""
        if options.get("features"):
            features = _split_columns(options["features"])
        else:
            features = [c for c in frame.columns if c not in (id_column, label)]
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise InvalidValueError(
                f"The CSV data at {path!r} has no column {missing[0]!r}; check the features option."
            )
        selected = [
            F.col(id_column).alias("id"),
            F.array(*[F.col(c).cast("float") for c in features]).alias("features"),
        ]
        if label:
            selected.append(F.col(label).alias("label"))
        return frame.select(*selected)


@dataclass(frozen=True)
class NumpySplit:
    """A range of rows of one ``.npy`` file (and its labels file); ids start at ``first_id``."""

    path: str
    start: int
    stop: int
    first_id: int
    labels: str | None = None


def _npy_files(path: str) -> list[Path]:
    root = Path(path).expanduser()
    if root.is_dir():
        return sorted(root.glob("*.npy"))
    return [root] if root.is_file() else []


class NumpySource(ExecutorSource):
    """``.npy`` files read by the executors (memory-mapped, in ranges of rows).

    ``labels`` names a ``.npy`` file (or a directory of them, one per features file, in
    the same order) holding one label per row, for evaluation jobs.
    """

    def __init__(self, path: str, rows_per_split: int, labels: str | None = None) -> None:
        files = _npy_files(path)
        if not files:
            raise InvalidValueError(
                f"No .npy files at {path!r}; point the path option at a .npy file or a "
                "directory of them."
            )
        label_files: list[Path | None] = [None] * len(files)
        if labels:
            found = _npy_files(labels)
            if len(found) != len(files):
                raise InvalidValueError(
                    f"The labels option names {len(found)} .npy file(s) for {len(files)} "
                    "features file(s); give one labels file per features file."
                )
            label_files = list(found)
        self._splits: list[NumpySplit] = []
        first_id = 0
        for file, label_file in zip(files, label_files, strict=True):
            rows = _npy_rows(file)
            if label_file is not None and _npy_rows(label_file) != rows:
                raise InvalidValueError(
                    f"{label_file} has {_npy_rows(label_file)} labels for the {rows} rows of "
                    f"{file}; give one label per row."
                )
            for start in range(0, rows, rows_per_split):
                stop = min(rows, start + rows_per_split)
                self._splits.append(
                    NumpySplit(
                        str(file),
                        start,
                        stop,
                        first_id + start,
                        str(label_file) if label_file else None,
                    )
                )
            first_id += rows
        self._labelled = labels is not None

    def splits(self) -> list[NumpySplit]:
        return list(self._splits)

    def count_hint(self) -> int:
        return sum(s.stop - s.start for s in self._splits)

    def split_rows(self, split: NumpySplit) -> int:
        return split.stop - split.start

    def fingerprint(self) -> str:
        """Each ``.npy`` file's path, size and modification time (labels too)."""
        from skil_sdk.providers.fingerprint import files_fingerprint

        paths = {s.path for s in self._splits} | {s.labels for s in self._splits if s.labels}
        return files_fingerprint(sorted(paths))

    def read(self, split: NumpySplit, batch_size: int) -> Iterator[tuple[Any, Any]]:
        array = np.load(split.path, mmap_mode="r")
        for start in range(split.start, split.stop, batch_size):
            stop = min(split.stop, start + batch_size)
            chunk = np.asarray(array[start:stop])
            offset = split.first_id - split.start
            ids = np.arange(offset + start, offset + stop, dtype=np.int64)
            yield ids, chunk.reshape(len(chunk), -1)

    def has_labels(self, label_column: str) -> bool:
        """Whether a labels file was given (``label_column`` does not apply to .npy)."""
        return self._labelled

    def labels(self, split: NumpySplit, batch_size: int) -> Iterator[tuple[Any, np.ndarray]]:
        if split.labels is None:
            raise InvalidValueError(
                "The numpy provider has no labels; pass --provider-option labels=LABELS.npy."
            )
        array = np.load(split.labels, mmap_mode="r")
        offset = split.first_id - split.start
        for start in range(split.start, split.stop, batch_size):
            stop = min(split.stop, start + batch_size)
            ids = np.arange(offset + start, offset + stop, dtype=np.int64)
            yield ids, np.asarray(array[start:stop]).reshape(stop - start, -1)

    def __getstate__(self) -> dict[str, Any]:
        return {"_splits": [], "_labelled": self._labelled}


def _npy_rows(path: Path) -> int:
    try:
        shape = np.load(path, mmap_mode="r").shape
    except (ValueError, OSError) as exc:
        raise InvalidValueError(f"{path} is not a readable .npy file ({exc}).") from exc
    if not shape:
        raise InvalidValueError(f"{path} holds a scalar, not rows of features.")
    return int(shape[0])


class NumpyProvider(KeyedDataSetProvider):
    """A ``.npy`` file or a directory of them; ids are row numbers across the files."""

    PLUGIN_NAME = "numpy"
    READS_ON_EXECUTORS = True
    OPTIONS = (
        ProviderOption(
            "path", "a .npy file or a directory of .npy files", required=True, type="path"
        ),
        ProviderOption(
            "rows_per_split",
            "rows per split (splits are packed into tasks)",
            default="16384",
            type="int",
            minimum=1,
        ),
        ProviderOption(
            "labels",
            "a .npy file (or directory of them) of labels, one per row, for evaluation jobs",
            type="path",
        ),
    )

    def data(self, spark: Any, **options: str) -> NumpySource:
        path = _require(options, "path", self.PLUGIN_NAME)
        rows_per_split = int(options.get("rows_per_split", "16384"))
        if rows_per_split < 1:
            raise InvalidValueError(
                "The numpy provider's rows_per_split must be a positive integer, e.g. 16384."
            )
        return NumpySource(path, rows_per_split, options.get("labels"))
