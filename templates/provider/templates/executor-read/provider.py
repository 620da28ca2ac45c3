"""The ``{{ cookiecutter.name }}`` keyed data-set provider and its plugin hook.

The provider reads its files on the executors. On the driver, ``data()`` only lists the
files, reads the first line or two of each (the columns, the type of the ids) and cuts
big files into byte ranges; it returns a :class:`RowFilesSource`, and every executor (or
local engine worker) reads its own splits in batches. It never uses Spark, so its jobs
run on the local engine (``--engine local``: worker processes, no JVM) as well as on
Spark. Keep pyspark out of this module.

skil-sdk finds this module through the entry point in ``pyproject.toml`` and calls
:func:`register_providers`; jobs then pick the provider with ``--provider {{ cookiecutter.name }}``.
"""

from __future__ import annotations

import bz2
import csv
import glob
import gzip
import json
import lzma
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import skil_sdk
from skil_sdk import ExecutorSource, KeyedDataSetProvider, ProviderOption, SkilError

#: File extensions (after an optional compression suffix) and the format they mean.
EXTENSIONS = {".csv": "csv", ".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: Compressed files and how to open them; each is read whole, as one split.
COMPRESSION: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
#: The types ids can have (Spark SQL names) and their Arrow types.
ID_TYPES = {"bigint": pa.int64(), "string": pa.string()}
#: A column left out of the default features: evaluation jobs read their labels from it.
LABEL = "label"
MIB = 1 << 20


class {{ cookiecutter.class_name }}(KeyedDataSetProvider):
    """{{ cookiecutter.description|replace('\\', '\\\\')|replace('"', '\\"') }}

    Reads JSON-lines or CSV files (a file, a directory or a glob of them) on the
    executors: one line is one row, its ``id`` column (a whole number or a string) and
    its ``features`` as float32, the feature columns in the order given. In JSON lines a
    feature column may hold an array of numbers; its elements are appended in order.
    """

    PLUGIN_NAME = "{{ cookiecutter.name }}"
    #: data() returns an ExecutorSource and never touches ``spark`` (it may be None), so
    #: jobs can run on the local engine.
    READS_ON_EXECUTORS = True
    OPTIONS = (
        ProviderOption(
            "path",
            "a .jsonl/.json/.csv file (.gz, .bz2, .xz too), a directory or a glob",
            required=True,
            type="path",
        ),
        ProviderOption(
            "format",
            "jsonl or csv (default: from the files' extension)",
            type="choice",
            choices=("jsonl", "csv"),
        ),
        ProviderOption("id", "the id column", default="id"),
        ProviderOption(
            "features",
            f"the feature columns, comma-separated (default: every column but the id and {LABEL})",
        ),
        ProviderOption(
            "id_type",
            "bigint or string (default: bigint when the first id is a whole number)",
            type="choice",
            choices=tuple(ID_TYPES),
        ),
        ProviderOption(
            "split_mb",
            "files bigger than this many MiB are read in ranges of this size (0: whole files)",
            default="64",
            type="float",
            minimum=0,
        ),
    )

    def data(self, spark: Any, **options: str) -> RowFilesSource:
        """The files of ``path`` as a :class:`RowFilesSource` (``spark`` is not used)."""
        values = self.checked_options(options)
        files = list_files(values["path"])
        file_format = values.get("format") or format_of(files)
        split_bytes = int(float(values["split_mb"]) * MIB)
        return RowFilesSource(
            files,
            file_format,
            values["id"],
            split_columns(values.get("features", "")),
            values.get("id_type"),
            split_bytes,
        )

    def checked_options(self, options: dict[str, str]) -> dict[str, str]:
        """``options`` with the defaults filled in, checked as a job checks them (jobs
        check them before data() is called; calls from tests and notebooks get this)."""
        declared = {option.name: option for option in self.OPTIONS}
        for name, value in options.items():
            option = declared.get(name)
            if option is None:
                raise SkilError(
                    f"The {self.PLUGIN_NAME} provider has no option {name!r}; use one of: "
                    f"{', '.join(declared)}."
                )
            if option.choices and value not in option.choices:
                raise SkilError(
                    f"The {self.PLUGIN_NAME} provider's option {name!r} must be one of "
                    f"{', '.join(option.choices)}, not {value!r}."
                )
        if not options.get("path"):
            raise SkilError(
                f"The {self.PLUGIN_NAME} provider needs files to read; pass "
                "--provider-option path=FILE (a file, a directory or a glob)."
            )
        values = {o.name: o.default for o in self.OPTIONS if o.default is not None}
        values.update(options)
        try:
            split_mb = float(values["split_mb"])
        except ValueError:
            split_mb = -1.0
        if not split_mb >= 0:
            raise SkilError(
                f"The {self.PLUGIN_NAME} provider's option 'split_mb' must be a number of MiB "
                f"(0 or more), not {values['split_mb']!r}; e.g. split_mb=64."
            )
        return values


@dataclass(frozen=True)
class FileSplit:
    """The lines of one file that start at a byte in ``[start, stop)``.

    ``stop`` is None for the rest of the file (a compressed file is always one whole
    split). ``header`` is a CSV file's column names, read on the driver.
    """

    path: str
    start: int = 0
    stop: int | None = None
    header: tuple[str, ...] = ()


class RowFilesSource(ExecutorSource):
    """JSON-lines or CSV files, read by the executors in splits of files or byte ranges.

    The driver reads the first line or two of each file (a CSV header, a first row) to
    check the columns and to tell the type of the ids; the rows are read only by
    :meth:`read`, one batch at a time.
    """

    def __init__(
        self,
        files: list[str],
        file_format: str,
        id_column: str,
        features: list[str],
        id_type: str | None,
        split_bytes: int,
    ) -> None:
        self.file_format = file_format
        self.id_column = id_column
        peeked = [(path, *peek(path, file_format)) for path in files]
        # the first file with columns, and the first row of any file
        columns = next((list(h or r or {}) for _p, h, r in peeked if h or r), [])
        first = next((row for _p, _h, row in peeked if row is not None), None)
        if not columns:
            raise SkilError(
                f"The files {describe(files)} are empty; point the path option at files with rows."
            )
        self.columns = columns
        self.features = features or default_features(columns, id_column, file_format)
        self._id_type = id_type or guess_id_type(first, id_column, file_format)
        self._splits: list[FileSplit] = []
        for path, header, row in peeked:
            if not header and row is None:
                continue  # an empty file
            present = list(header or row or {})
            missing = [c for c in [id_column, *self.features] if c not in present]
            if missing:
                raise SkilError(
                    f"{path} has no column {missing[0]!r} (it has: {', '.join(present)}); "
                    "set the id and features options to existing columns."
                )
            self._splits += byte_ranges(path, split_bytes, header)

    def splits(self) -> list[FileSplit]:
        return list(self._splits)

    def id_type(self) -> str:
        return self._id_type

    def count_hint(self) -> int | None:
        # Counting the rows would mean reading every file on the driver; progress is
        # then shown by tasks instead of rows.
        return None

    def fingerprint(self) -> str:
        # each file's path, size and modification time: `skil-sdk jobs resume` continues a
        # failed job only when the files did not change
        from skil_sdk.providers.fingerprint import files_fingerprint

        return files_fingerprint(sorted({split.path for split in self._splits}))

    def read(self, split: FileSplit, batch_size: int) -> Iterator[tuple[Any, Any]]:
        for ids, features, _labels in self.batches(split, batch_size, None):
            yield ids, features

    def has_labels(self, label_column: str) -> bool:
        """Whether the files have the column ``label_column`` (``--label-column``)."""
        if label_column in self.features:
            others = ",".join(name for name in self.features if name != label_column)
            raise SkilError(
                f"The label column {label_column!r} is one of the features; pass "
                f"--provider-option features={others or 'COLUMNS'} without it."
            )
        return label_column in self.columns and label_column != self.id_column

    def read_labelled(
        self, split: FileSplit, batch_size: int, label_column: str
    ) -> Iterator[tuple[Any, Any, np.ndarray]]:
        """``(ids, features, labels)`` batches, the labels from ``label_column``."""
        yield from self.batches(split, batch_size, label_column)

    def batches(
        self, split: FileSplit, batch_size: int, label_column: str | None
    ) -> Iterator[tuple[pa.Array, np.ndarray, np.ndarray]]:
        """The split's rows, ``batch_size`` at a time: ids, features and (with a label
        column) labels; without one the labels are an empty array."""
        id_arrow = ID_TYPES[self._id_type]
        ids: list[Any] = []
        rows: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for where, record in records(split, self.file_format):
            ids.append(id_value(record, self.id_column, self._id_type, where))
            rows.append(numbers(record, self.features, where))
            if label_column is not None:
                labels.append(numbers(record, [label_column], where))
            if len(ids) == batch_size:
                yield pa.array(ids, id_arrow), stack(rows, ids), stack(labels, ids)
                ids, rows, labels = [], [], []
        if ids:
            yield pa.array(ids, id_arrow), stack(rows, ids), stack(labels, ids)

    def __getstate__(self) -> dict[str, Any]:
        # The source is pickled to the executors; each task gets its own splits, so
        # leave the list of every split behind.
        return {**self.__dict__, "_splits": []}


def list_files(path: str) -> list[str]:
    """The files ``path`` names (absolute): a file, a directory's visible files, or the
    files a glob matches."""
    if "://" in path and not path.startswith("file://"):
        raise SkilError(
            f"{path!r} is not a local path: this provider reads with Python's open() on "
            "each executor. Mount the data (NFS, a bucket mounted on every node) or read it "
            "through pyarrow.fs in list_files() and open_lines()."
        )
    local = os.path.expanduser(path.removeprefix("file://"))
    if any(c in local for c in "*?["):
        found = [f for f in glob.glob(local, recursive=True) if os.path.isfile(f)]
    elif os.path.isdir(local):
        found = [
            os.path.join(local, name)
            for name in os.listdir(local)
            if not name.startswith((".", "_")) and os.path.isfile(os.path.join(local, name))
        ]
    elif os.path.isfile(local):
        found = [local]
    else:
        raise SkilError(f"There is no file or directory {path!r}; check the path option.")
    if not found:
        raise SkilError(f"{path!r} names no files; check the path option.")
    return sorted(os.path.abspath(f) for f in found)


def format_of(files: list[str]) -> str:
    """The one format (``csv`` or ``jsonl``) that the files' extensions name."""
    formats = set()
    for path in files:
        name = path.lower()
        for suffix in COMPRESSION:
            name = name.removesuffix(suffix)
        found = [f for extension, f in EXTENSIONS.items() if name.endswith(extension)]
        if not found:
            raise SkilError(
                f"Cannot tell the format of {path!r} from its name; pass "
                "--provider-option format=csv or format=jsonl."
            )
        formats.add(found[0])
    if len(formats) > 1:
        raise SkilError(
            f"The files {describe(files)} mix CSV and JSON lines; point the path option at "
            "one kind."
        )
    return formats.pop()


def split_columns(raw: str) -> list[str]:
    """``a, b,c`` as ``["a", "b", "c"]``."""
    return [name.strip() for name in raw.split(",") if name.strip()]


def default_features(columns: list[str], id_column: str, file_format: str) -> list[str]:
    """Every column but the id and the label, in the file's order."""
    others = [name for name in columns if name not in (id_column, LABEL)]
    if not others:
        raise SkilError(f"There is no feature column besides {id_column!r}; check the file.")
    if file_format == "jsonl" and len(others) > 1:
        # The keys of a JSON object have no order to rely on: ask for it.
        raise SkilError(
            f"JSON lines have no column order and there are {len(others)} candidate "
            f"feature columns; pass --provider-option features={','.join(others)} in the "
            "order the model expects."
        )
    return others


def open_lines(path: str, start: int = 0) -> IO[bytes]:
    """``path`` opened for reading bytes at ``start`` (decompressed, for a compressed file)."""
    opener = COMPRESSION.get(os.path.splitext(path)[1].lower())
    if opener is not None:
        compressed: IO[bytes] = opener(path, "rb")
        return compressed
    handle = open(path, "rb")  # noqa: SIM115 (the caller closes it)
    handle.seek(start)
    return handle


def byte_ranges(path: str, split_bytes: int, header: tuple[str, ...]) -> list[FileSplit]:
    """One split for a small or compressed file, else one per ``split_bytes`` bytes."""
    size = os.path.getsize(path)
    compressed = os.path.splitext(path)[1].lower() in COMPRESSION
    if compressed or split_bytes <= 0 or size <= split_bytes:
        return [FileSplit(path, header=header)]
    return [
        FileSplit(path, start, min(size, start + split_bytes), header)
        for start in range(0, size, split_bytes)
    ]


def lines(split: FileSplit) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` for each line that starts inside the split.

    A range that starts in the middle of a line skips to the next one: a line belongs
    to the split it starts in, so every line is read once.
    """
    start = max(0, split.start - 1)
    with open_lines(split.path, start) as handle:
        position = start
        if split.start > 0:
            position += len(handle.readline())  # the end of the line before the range
        while split.stop is None or position < split.stop:
            line = handle.readline()
            if not line:
                return
            yield position, line
            position += len(line)


def records(split: FileSplit, file_format: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for each row of the split: ``where`` names the line for errors,
    ``row`` maps column names to values (strings, for CSV)."""
    for position, raw in lines(split):
        where = f"{split.path}, the line at byte {position}"
        if file_format == "csv" and position == 0:
            continue  # the header
        try:
            text = raw.decode("utf-8-sig" if position == 0 else "utf-8").strip("\r\n")
        except UnicodeDecodeError:
            raise SkilError(f"{where} is not UTF-8 text; convert the file to UTF-8.") from None
        if not text.strip():
            continue
        if file_format == "jsonl":
            yield where, parse_json(text, where)
            continue
        fields = next(csv.reader([text]))
        if len(fields) != len(split.header):
            raise SkilError(
                f"{where} has {len(fields)} fields and the header {len(split.header)}; fix "
                "the line (one line is one row: a quoted field cannot hold a line break)."
            )
        yield where, dict(zip(split.header, fields, strict=True))


def parse_json(text: str, where: str) -> dict[str, Any]:
    """One JSON-lines row: a JSON object."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SkilError(f"{where} is not JSON ({exc.msg}); fix or remove it.") from None
    if not isinstance(row, dict):
        raise SkilError(f"{where} is not a JSON object; give every line one object.")
    return row


def peek(path: str, file_format: str) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """A file's CSV header (empty for JSON lines) and its first row (None: no rows)."""
    whole = FileSplit(path)
    header: tuple[str, ...] = ()
    if file_format == "csv":
        for _position, raw in lines(whole):
            header = tuple(next(csv.reader([raw.decode("utf-8-sig")])))
            break
        whole = FileSplit(path, header=header)
    for _where, row in records(whole, file_format):
        return header, row
    return header, None


def guess_id_type(row: dict[str, Any] | None, id_column: str, file_format: str) -> str:
    """``bigint`` when the first id is a whole number (in CSV, its text), else ``string``."""
    value = None if row is None else row.get(id_column)
    if isinstance(value, int) and not isinstance(value, bool):
        return "bigint"
    if file_format == "csv" and isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return "bigint"
    return "string"


def id_value(row: dict[str, Any], id_column: str, id_type: str, where: str) -> Any:
    """The row's id as an ``int`` (``bigint``) or a ``str`` (``string``)."""
    value = row.get(id_column)
    if value is None or value == "":
        raise SkilError(f"{where} has no {id_column!r}; give every row an id.")
    if id_type == "string":
        return value if isinstance(value, str) else json.dumps(value)
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    except (TypeError, ValueError):
        raise SkilError(
            f"{where} has the id {value!r}, which is not a whole number; pass "
            "--provider-option id_type=string."
        ) from None


def numbers(row: dict[str, Any], columns: list[str], where: str) -> np.ndarray:
    """The values of ``columns`` in one row as one flat float32 array (a missing value,
    or an empty CSV field, is NaN: :func:`stack` refuses it naming the row)."""
    values = [row.get(name) for name in columns]
    try:
        return np.array(values, dtype=np.float32).reshape(-1)  # the common case, at once
    except (TypeError, ValueError):
        pass  # an empty field, arrays of different lengths, or not a number
    parts = []
    for name, value in zip(columns, values, strict=True):
        try:
            parts.append(np.asarray(None if value == "" else value, dtype=np.float32).ravel())
        except (TypeError, ValueError):
            raise SkilError(
                f"{where} has {value!r} in the column {name!r}, which is not a number (or an "
                "array of numbers); fix the file or leave the column out of the features "
                "option."
            ) from None
    return np.concatenate(parts)


def stack(rows: list[np.ndarray], ids: list[Any]) -> np.ndarray:
    """Rows of one width as a 2-D float32 array, with no missing value (NaN)."""
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        other = next(i for i, row in enumerate(rows) if len(row) != len(rows[0]))
        raise SkilError(
            f"The row with id {ids[0]!r} has {len(rows[0])} values and the row with id "
            f"{ids[other]!r} {len(rows[other])}; give every row the width the model takes."
        )
    matrix = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    if np.isnan(matrix).any():
        row = int(np.flatnonzero(np.isnan(matrix).any(axis=1))[0])
        raise SkilError(
            f"The row with id {ids[row]!r} has a missing value (empty, null or NaN); fill "
            "it in the file or drop the row."
        )
    return matrix


def describe(files: list[str]) -> str:
    """A short name for a list of files, for errors."""
    return repr(files[0]) if len(files) == 1 else f"{files[0]!r} and {len(files) - 1} more"


@skil_sdk.hookimpl
def register_providers(register: Any) -> None:
    """Register this plugin's provider with skil-sdk."""
    register({{ cookiecutter.class_name }})
