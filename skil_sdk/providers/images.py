"""The built-in ``images`` provider: image files, or a Parquet column of image bytes or
paths, decoded on the executors with Pillow.

Every image is converted to RGB with its EXIF orientation applied, optionally resized
(``size=H,W``, with ``filter``, bilinear by default) and centre-cropped (``crop=H,W``),
scaled to [0, 1] (unless ``dtype=uint8``), normalised with ``mean`` and ``std`` (given
in RGB order), reordered to ``channels`` and laid out as ``layout`` (``nchw`` or
``nhwc``). Images of different sizes (no ``size``) run as sub-batches of equal shape.
"""

from __future__ import annotations

import fnmatch
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skil_sdk.errors import InvalidValueError, ProviderError
from skil_sdk.providers.interface import ExecutorSource, KeyedDataSetProvider, ProviderOption

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FILTERS = ("bilinear", "bicubic", "nearest", "lanczos")
_WILDCARDS = ("*", "?", "[")
_FS_OPTIONS = ("s3_endpoint", "anonymous")


@dataclass(frozen=True)
class ImageTransform:
    """How a decoded image becomes a tensor (see the module docstring)."""

    size: tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    filter: str = "bilinear"
    layout: str = "nchw"
    channels: str = "rgb"
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    dtype: str = "float32"

    def apply(self, data: bytes, name: str) -> np.ndarray:
        """The tensor of one encoded image (``name`` is named when it cannot be decoded)."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as opened:
                image = _to_rgb(ImageOps.exif_transpose(opened))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ProviderError(
                f"{name} cannot be decoded as an image ({exc}); fix or remove the file."
            ) from exc
        if self.size is not None:
            height, width = self.size
            image = image.resize((width, height), _resample(self.filter))
        if self.crop is not None:
            image = _centre_crop(image, self.crop, name)
        pixels = np.asarray(image)
        if self.dtype == "uint8":
            array: np.ndarray = pixels
        else:
            array = pixels.astype(np.float32) / 255.0
            if self.mean is not None:
                array = array - np.asarray(self.mean, dtype=np.float32)
            if self.std is not None:
                array = array / np.asarray(self.std, dtype=np.float32)
        if self.channels == "bgr":
            array = array[..., ::-1]
        if self.layout == "nchw":
            array = array.transpose(2, 0, 1)
        return np.ascontiguousarray(array, dtype=np.dtype(self.dtype))


def _to_rgb(image: Any) -> Any:
    """An image as 8-bit RGB; 16-bit and 32-bit integer images are scaled from their full
    range (65535), float images from [0, 1] (or [0, 255] when their values exceed 1)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            top = 1.0 if values.size == 0 or float(values.max()) <= 1.0 else 255.0
        else:
            top = 65535.0
        scaled = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(scaled, "L")
    return image.convert("RGB")


def _resample(name: str) -> Any:
    from PIL import Image

    return {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
        "lanczos": Image.Resampling.LANCZOS,
    }[name]


def _centre_crop(image: Any, crop: tuple[int, int], name: str) -> Any:
    height, width = crop
    if height > image.height or width > image.width:
        raise ProviderError(
            f"{name} is {image.height}x{image.width}, smaller than crop={height},{width}; "
            "resize first (size=H,W) or crop less."
        )
    top = (image.height - height) // 2
    left = (image.width - width) // 2
    return image.crop((left, top, left + width, top + height))


def _pair(raw: str | None, option: str) -> tuple[int, int] | None:
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",")]
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise InvalidValueError(
            f"The images provider's option {option!r} is H,W (two whole numbers), not {raw!r}; "
            f"e.g. {option}=224,224."
        ) from None
    if height < 1 or width < 1:
        raise InvalidValueError(f"The images provider's option {option!r} needs positive sizes.")
    return height, width


def _triple(raw: str | None, option: str) -> tuple[float, float, float] | None:
    if not raw:
        return None
    try:
        values = tuple(float(p) for p in raw.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or (option == "std" and any(v == 0 for v in values)):
        raise InvalidValueError(
            f"The images provider's option {option!r} is r,g,b (three numbers"
            f"{', none 0' if option == 'std' else ''}), not {raw!r}; e.g. "
            f"{option}={'0.229,0.224,0.225' if option == 'std' else '0.485,0.456,0.406'}."
        )
    return values[0], values[1], values[2]


def transform_from_options(options: dict[str, str]) -> ImageTransform:
    """The :class:`ImageTransform` the provider's options describe (checked)."""
    dtype = options.get("dtype", "float32")
    if dtype == "uint8" and (options.get("mean") or options.get("std")):
        raise InvalidValueError(
            "mean and std apply to scaled pixels; drop them or use dtype=float32."
        )
    return ImageTransform(
        size=_pair(options.get("size"), "size"),
        crop=_pair(options.get("crop"), "crop"),
        filter=options.get("filter", "bilinear"),
        layout=options.get("layout", "nchw"),
        channels=options.get("channels", "rgb"),
        mean=_triple(options.get("mean"), "mean"),
        std=_triple(options.get("std"), "std"),
        dtype=dtype,
    )


def _filesystem(path: str, options: dict[str, str]) -> tuple[Any, str]:
    """The pyarrow file system of ``path`` and the path inside it."""
    import pyarrow.fs as pafs

    from skil_sdk.providers.files import _s3_filesystem

    anonymous = options.get("anonymous", "false") == "true"
    if path.startswith(("s3://", "s3a://")) and (options.get("s3_endpoint") or anonymous):
        return _s3_filesystem(path, options.get("s3_endpoint") or "", anonymous)
    if "://" in path and not path.startswith("file://"):
        uri = "s3://" + path[len("s3a://") :] if path.startswith("s3a://") else path
        filesystem, inner = pafs.FileSystem.from_uri(uri)
        return filesystem, inner
    local = path[len("file://") :] if path.startswith("file://") else path
    return pafs.LocalFileSystem(), str(Path(local).expanduser().resolve())


def list_images(path: str, options: dict[str, str]) -> tuple[Any, list[tuple[str, str]]]:
    """The file system and ``(id, file)`` pairs of the images ``path`` names.

    A directory is read recursively (image suffixes only, hidden entries skipped); ids are
    the paths relative to it. For a glob, ids are relative to the part before its first
    wildcard. A single file's id is its name.
    """
    import pyarrow.fs as pafs

    wildcard = next((i for i, c in enumerate(path) if c in _WILDCARDS), None)
    if wildcard is None:
        base = path
    elif "/" in path[:wildcard]:
        base = path[:wildcard].rsplit("/", 1)[0] or "/"
    else:
        base = "."
    filesystem, root = _filesystem(base, options)
    try:
        info = filesystem.get_file_info(root)
    except OSError as exc:
        raise InvalidValueError(f"Cannot open {path!r} ({exc}); check the path option.") from exc
    if wildcard is None and info.type == pafs.FileType.File:
        return filesystem, [(Path(root).name, root)]
    if info.type != pafs.FileType.Directory:
        raise InvalidValueError(f"No images at {path!r}; check the provider's path option.")
    pattern = None
    if wildcard is not None:
        pattern = glob_pattern(path if base == "." else path[len(base) :].lstrip("/"))
    recursive = wildcard is None or "/" in path[wildcard:]
    found = []
    selector = pafs.FileSelector(root, recursive=recursive)
    for entry in filesystem.get_file_info(selector):
        if entry.type != pafs.FileType.File:
            continue
        relative = entry.path[len(root) :].lstrip("/")
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        if pattern is not None:
            if not pattern.fullmatch(relative):
                continue
        elif not relative.lower().endswith(IMAGE_SUFFIXES):
            continue
        found.append((relative, entry.path))
    if not found:
        raise InvalidValueError(f"No images at {path!r}; check the provider's path option.")
    return filesystem, sorted(found)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A glob as a regular expression over ``/``-separated relative paths: ``*`` and ``?``
    stay within one path segment, ``**/`` matches any number of directories (none too)."""
    parts: list[str] = []
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            parts.append("(?:[^/]+/)*")
            index += 3
        elif glob.startswith("**", index):
            parts.append(".*")
            index += 2
        elif glob[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            parts.append("[^/]")
            index += 1
        elif glob[index] == "[":
            end = glob.find("]", index + 1)
            if end == -1:
                parts.append(re.escape("["))
                index += 1
            else:
                parts.append(fnmatch.translate(glob[index : end + 1])[4:-3])
                index = end + 1
        else:
            parts.append(re.escape(glob[index]))
            index += 1
    return re.compile("".join(parts))


class ImageFilesSource(ExecutorSource):
    """Image files read and decoded by the executors, ``files_per_split`` per split."""

    def __init__(
        self, filesystem: Any, files: list[tuple[str, str]], transform: ImageTransform, per: int
    ) -> None:
        self._filesystem = filesystem
        self._transform = transform
        self._splits = [files[i : i + per] for i in range(0, len(files), per)]

    def splits(self) -> list[list[tuple[str, str]]]:
        return list(self._splits)

    def id_type(self) -> str:
        return "string"

    def count_hint(self) -> int:
        return sum(len(s) for s in self._splits)

    def split_rows(self, split: list[tuple[str, str]]) -> int:
        return len(split)

    def read(self, split: list[tuple[str, str]], batch_size: int) -> Iterator[Any]:
        """``(ids, tensors)`` batches; an image that does not decode comes as
        :class:`~skil_sdk.BadRows` (stage ``read``)."""
        from skil_sdk.inference.quarantine import BadRows

        def decoded() -> Iterator[Any]:
            for image_id, file in split:
                with self._filesystem.open_input_stream(file) as handle:
                    data = handle.read()
                try:
                    yield image_id, self._transform.apply(data, file)
                except ProviderError as exc:
                    yield BadRows([image_id], exc.message, source=file, offsets=[0])

        yield from shaped_batches(decoded(), batch_size)

    def fingerprint(self) -> str:
        """Each image file's path, size and modification time."""
        from skil_sdk.providers.fingerprint import files_fingerprint

        return files_fingerprint(
            [file for split in self._splits for _id, file in split], self._filesystem
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_splits": []}


class ImageColumnSource(ExecutorSource):
    """A Parquet column of encoded images (binary) or of their paths (string), one row
    group per split; relative paths are relative to the Parquet file's directory."""

    def __init__(
        self,
        parquet: Any,
        column: str,
        transform: ImageTransform,
        filesystem: Any,
        options: dict[str, str] | None = None,
    ) -> None:
        self._parquet = parquet
        self._column = column
        self._transform = transform
        self._filesystem = filesystem
        self._options = {k: v for k, v in (options or {}).items() if k in _FS_OPTIONS}
        self._remote: dict[str, Any] = {}

    def splits(self) -> list[Any]:
        return list(self._parquet.splits())

    def id_type(self) -> str:
        return str(self._parquet.id_type())

    def count_hint(self) -> int:
        return int(self._parquet.count_hint())

    def split_rows(self, split: Any) -> int | None:
        return self._parquet.split_rows(split)

    def fingerprint(self) -> str:
        """The Parquet files' fingerprint (images named by path are not included)."""
        return str(self._parquet.fingerprint())

    def read(self, split: Any, batch_size: int) -> Iterator[Any]:
        """``(ids, tensors)`` batches; a null or undecodable image comes as
        :class:`~skil_sdk.BadRows` (stage ``read``)."""
        import pyarrow as pa

        from skil_sdk.inference.quarantine import BadRows

        def decoded() -> Iterator[Any]:
            for batch in self._parquet.record_batches(split, batch_size, []):
                ids = batch.column(self._parquet.id_column).to_pylist()
                values = batch.column(self._column)
                by_path = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
                for image_id, value in zip(ids, values.to_pylist(), strict=True):
                    try:
                        if value is None:
                            raise ProviderError(
                                f"The image of id {image_id!r} in column {self._column!r} is "
                                "null; drop the row or fill it."
                            )
                        if by_path:
                            yield image_id, self._from_path(str(value), split.path)
                        else:
                            yield (
                                image_id,
                                self._transform.apply(
                                    value, f"The image of id {image_id!r} in {split.path}"
                                ),
                            )
                    except ProviderError as exc:
                        yield BadRows([image_id], exc.message, source=split.path)

        for item in shaped_batches(decoded(), batch_size):
            yield item if isinstance(item, BadRows) else (pa.array(item[0]), item[1])

    def _from_path(self, value: str, parquet_file: str) -> np.ndarray:
        relative = "://" not in value and not value.startswith("/")
        file = f"{parquet_file.rsplit('/', 1)[0]}/{value}" if relative else value
        if "://" in file:
            scheme, rest = file.split("://", 1)
            key = f"{scheme}://{rest.split('/', 1)[0]}"
            if key not in self._remote:  # one file system per bucket, not one per image
                self._remote[key] = _filesystem(file, self._options)[0]
            filesystem = self._remote[key]
            inner = _filesystem_path(file) if scheme in ("s3", "s3a") else _filesystem(file, {})[1]
        else:
            filesystem, inner = self._filesystem, file
        try:
            with filesystem.open_input_stream(inner) as handle:
                data = handle.read()
        except OSError as exc:
            raise ProviderError(f"The image {file} cannot be read ({exc}).") from exc
        return self._transform.apply(data, file)


def _filesystem_path(uri: str) -> str:
    """The path inside an S3 file system of an ``s3://bucket/key`` URI: ``bucket/key``."""
    return uri.split("://", 1)[1].split("?", 1)[0]


def shaped_batches(images: Iterator[Any], batch_size: int) -> Iterator[Any]:
    """``(ids, tensors)`` batches of at most ``batch_size`` consecutive images of one shape
    (:class:`~skil_sdk.BadRows` among the images passed on as they come)."""
    from skil_sdk.inference.quarantine import BadRows

    ids: list[Any] = []
    tensors: list[np.ndarray] = []
    for item in images:
        if isinstance(item, BadRows):
            yield item
            continue
        image_id, tensor = item
        if tensors and (tensor.shape != tensors[0].shape or len(tensors) == batch_size):
            yield ids, np.stack(tensors)
            ids, tensors = [], []
        ids.append(image_id)
        tensors.append(tensor)
    if tensors:
        yield ids, np.stack(tensors)


class ImagesProvider(KeyedDataSetProvider):
    """Image files (a directory or glob, local or s3://) or a Parquet column of images."""

    PLUGIN_NAME = "images"
    READS_ON_EXECUTORS = True
    OPTIONS = (
        ProviderOption(
            "path",
            "a directory of images, a glob, an image file, or Parquet data (with column)",
            required=True,
            type="path",
        ),
        ProviderOption("column", "a Parquet column of image bytes or image paths"),
        ProviderOption("id", "the id column of the Parquet data (with column)", default="id"),
        ProviderOption("size", "H,W: resize every image to it"),
        ProviderOption(
            "filter", "the resize filter", default="bilinear", type="choice", choices=FILTERS
        ),
        ProviderOption("crop", "H,W: centre crop, after resizing"),
        ProviderOption(
            "layout", "tensor layout", default="nchw", type="choice", choices=("nchw", "nhwc")
        ),
        ProviderOption(
            "channels", "channel order", default="rgb", type="choice", choices=("rgb", "bgr")
        ),
        ProviderOption("mean", "r,g,b subtracted after scaling pixels to [0, 1]"),
        ProviderOption("std", "r,g,b the pixels are divided by, after mean"),
        ProviderOption(
            "dtype",
            "element type (uint8: raw pixels, no scaling)",
            default="float32",
            type="choice",
            choices=("float32", "float16", "uint8"),
        ),
        ProviderOption(
            "files_per_split",
            "images per split (splits are packed into tasks)",
            default="256",
            type="int",
            minimum=1,
        ),
        ProviderOption("s3_endpoint", "an S3-compatible endpoint for s3:// paths"),
        ProviderOption(
            "anonymous", "true: read s3:// without credentials", default="false", type="bool"
        ),
    )

    def data(self, spark: Any, **options: str) -> ExecutorSource:
        path = options.get("path")
        if not path:
            raise InvalidValueError(
                "The images provider needs the option 'path'; pass --provider-option path=DIR."
            )
        transform = transform_from_options(options)
        if options.get("column"):
            from skil_sdk.providers.files import ParquetSource

            parquet = ParquetSource(
                path,
                options.get("id", "id"),
                [options["column"]],
                s3_endpoint=options.get("s3_endpoint"),
                anonymous=options.get("anonymous", "false") == "true",
            )
            return ImageColumnSource(
                parquet, options["column"], transform, parquet.filesystem, options
            )
        filesystem, files = list_images(path, options)
        per = int(options.get("files_per_split", "256"))
        return ImageFilesSource(filesystem, files, transform, per)
