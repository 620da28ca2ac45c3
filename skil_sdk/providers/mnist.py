"""The built-in ``mnist`` provider: the standard IDX files, read by the executors.

Each executor reads its own range of records straight from the file (gzipped or
not); nothing is collected on the driver. Pixels become 784 float32 values in
[0, 1]; the record index is the id; the labels file, when present, supplies labels
for evaluation jobs.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from skil_sdk.errors import InvalidValueError
from skil_sdk.providers.interface import ExecutorSource, KeyedDataSetProvider, ProviderOption

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_IMAGE_PREFIXES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
_LABEL_PREFIXES = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _find(directory: Path, prefix: str) -> Path | None:
    for candidate in (directory / prefix, directory / f"{prefix}.gz"):
        if candidate.exists():
            return candidate
    return None


def read_idx_header(path: Path, expected_magic: int) -> tuple[int, int]:
    """``(records, bytes per record)`` of an IDX file, checking its magic number."""
    with _open(path) as handle:
        head = handle.read(4)
        if len(head) < 4:
            raise InvalidValueError(f"{path} is empty or truncated; it is not an IDX file.")
        (magic,) = struct.unpack(">i", head)
        if magic != expected_magic:
            raise InvalidValueError(
                f"{path} is not an MNIST {'images' if expected_magic == IMAGES_MAGIC else 'labels'}"
                f" IDX file (magic {magic}, expected {expected_magic})."
            )
        dims = magic & 0xFF
        sizes = struct.unpack(f">{dims}i", handle.read(4 * dims))
    per_record = int(np.prod(sizes[1:])) if len(sizes) > 1 else 1
    return int(sizes[0]), per_record


@dataclass(frozen=True)
class MnistSplit:
    """Records ``start`` (inclusive) to ``stop`` (exclusive)."""

    start: int
    stop: int


class MnistSource(ExecutorSource):
    """An MNIST images file (and optional labels) read by the executors."""

    def __init__(
        self, images: Path, labels: Path | None, records_per_split: int, limit: int | None
    ) -> None:
        self.images = str(images)
        self.labels_path = str(labels) if labels else None
        count, self.pixels = read_idx_header(images, IMAGES_MAGIC)
        self.header_size = 4 + 4 * 3
        self.count = min(count, limit) if limit is not None else count
        if labels is not None:
            label_count, _ = read_idx_header(labels, LABELS_MAGIC)
            if label_count < self.count:
                raise InvalidValueError(
                    f"{labels} has {label_count} labels for {self.count} images; use the "
                    "labels file that belongs to the images file."
                )
        self.records_per_split = records_per_split

    def splits(self) -> list[MnistSplit]:
        step = self.records_per_split
        return [MnistSplit(s, min(self.count, s + step)) for s in range(0, self.count, step)]

    def count_hint(self) -> int:
        return self.count

    def split_rows(self, split: MnistSplit) -> int:
        return split.stop - split.start

    def fingerprint(self) -> str:
        """The images (and labels) file's path, size and modification time."""
        from skil_sdk.providers.fingerprint import files_fingerprint

        return files_fingerprint([p for p in (self.images, self.labels_path) if p])

    def read(self, split: MnistSplit, batch_size: int) -> Iterator[tuple[Any, Any]]:
        with _open(Path(self.images)) as handle:
            handle.seek(self.header_size + split.start * self.pixels)
            for start in range(split.start, split.stop, batch_size):
                stop = min(split.stop, start + batch_size)
                raw = handle.read((stop - start) * self.pixels)
                pixels = np.frombuffer(raw, dtype=np.uint8).reshape(stop - start, self.pixels)
                yield np.arange(start, stop, dtype=np.int64), pixels.astype(np.float32) / 255.0

    def has_labels(self, label_column: str) -> bool:
        """Whether a labels file was found or given (``label_column`` does not apply)."""
        return self.labels_path is not None

    def labels(self, split: MnistSplit, batch_size: int) -> Iterator[tuple[Any, np.ndarray]]:
        if self.labels_path is None:
            raise InvalidValueError(
                "No MNIST labels file was found; pass --provider-option labels=PATH."
            )
        with _open(Path(self.labels_path)) as handle:
            handle.seek(8 + split.start)
            for start in range(split.start, split.stop, batch_size):
                stop = min(split.stop, start + batch_size)
                values = np.frombuffer(handle.read(stop - start), dtype=np.uint8)
                yield np.arange(start, stop, dtype=np.int64), values.astype(np.int64)


class MnistProvider(KeyedDataSetProvider):
    """MNIST IDX files (gzipped or not): 784 float32 pixels in [0, 1], record index as id."""

    PLUGIN_NAME = "mnist"
    READS_ON_EXECUTORS = True
    OPTIONS = (
        ProviderOption(
            "path",
            "a directory holding the IDX files, or the images file itself",
            required=True,
            type="path",
        ),
        ProviderOption(
            "split",
            "train or test (when path is a directory)",
            default="test",
            type="choice",
            choices=("train", "test"),
        ),
        ProviderOption(
            "labels", "the labels file (found beside the images by default)", type="path"
        ),
        ProviderOption(
            "records_per_split",
            "records per split (splits are packed into tasks)",
            default="10000",
            type="int",
            minimum=1,
        ),
        ProviderOption("limit", "read only the first N records", type="int", minimum=0),
    )

    def data(self, spark: Any, **options: str) -> MnistSource:
        if not options.get("path"):
            raise InvalidValueError(
                "The mnist provider needs the option 'path'; pass --provider-option path=DIR."
            )
        path = Path(options["path"]).expanduser()
        split = options.get("split", "test")
        if split not in _IMAGE_PREFIXES:
            raise InvalidValueError(f"The mnist split must be train or test, not {split!r}.")
        labels: Path | None
        if path.is_dir():
            images = _find(path, _IMAGE_PREFIXES[split])
            if images is None:
                raise InvalidValueError(
                    f"No {_IMAGE_PREFIXES[split]}[.gz] in {path}; point path at the directory "
                    "holding the MNIST IDX files."
                )
            labels = _find(path, _LABEL_PREFIXES[split])
        elif path.is_file():
            images = path
            labels = None
            for kind, prefix in _IMAGE_PREFIXES.items():
                if path.name.startswith(prefix):
                    labels = _find(path.parent, _LABEL_PREFIXES[kind])
        else:
            raise InvalidValueError(f"No MNIST data at {path}; check the path option.")
        if options.get("labels"):
            labels = Path(options["labels"]).expanduser()
        try:
            per_split = int(options.get("records_per_split", "10000"))
            limit = int(options["limit"]) if options.get("limit") else None
        except ValueError as exc:
            raise InvalidValueError(
                f"records_per_split and limit must be integers, e.g. 10000 ({exc})."
            ) from exc
        if per_split < 1:
            raise InvalidValueError("records_per_split must be at least 1, e.g. 10000.")
        return MnistSource(images, labels, per_split, limit)
