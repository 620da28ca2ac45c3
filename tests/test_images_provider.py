"""The ``images`` provider's tensors equal Pillow + numpy done by hand on the same files:
EXIF orientation, RGB conversion, resize, centre crop, scaling, mean/std, channels,
layout; ids are relative paths; an undecodable file is named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from skil_sdk import BadRows
from skil_sdk.errors import InvalidValueError
from skil_sdk.providers.images import ImagesProvider

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _write_images(root: Path) -> dict[str, Path]:
    """Four images of different modes and sizes, one with an EXIF rotation, in subfolders."""
    rng = np.random.default_rng(0)
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "small").mkdir(parents=True)
    files = {
        "cats/a.png": Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)),
        "cats/b.png": Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8), "L"),
        "dogs/c.png": Image.fromarray(rng.integers(0, 256, (18, 26, 4), dtype=np.uint8), "RGBA"),
    }
    paths = {}
    for name, image in files.items():
        image.save(root / name)
        paths[name] = root / name
    rotated = Image.fromarray(rng.integers(0, 256, (16, 28, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise when shown
    rotated.save(root / "dogs" / "small" / "d.jpg", exif=exif.tobytes(), quality=95)
    paths["dogs/small/d.jpg"] = root / "dogs" / "small" / "d.jpg"
    (root / "notes.txt").write_text("not an image, and skipped")
    (root / ".hidden.png").write_bytes(b"skipped")
    return paths


def _by_hand(path: Path, size: tuple[int, int] | None, crop: tuple[int, int] | None) -> Any:
    """The tensor, computed with Pillow and numpy directly (the reference)."""
    from PIL import ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    if size:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    if crop:
        left, top = (image.width - crop[1]) // 2, (image.height - crop[0]) // 2
        image = image.crop((left, top, left + crop[1], top + crop[0]))
    pixels = np.asarray(image).astype(np.float32) / 255.0
    return ((pixels - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(2, 0, 1)


def _read_all(source: Any, batch_size: int = 3) -> tuple[list[Any], list[np.ndarray]]:
    ids: list[Any] = []
    rows: list[np.ndarray] = []
    for split in source.splits():
        for batch_ids, tensors in source.read(split, batch_size):
            ids += list(batch_ids.to_pylist() if hasattr(batch_ids, "to_pylist") else batch_ids)
            rows += list(tensors)
    return ids, rows


def test_directory_tensors_equal_pillow_and_numpy(tmp_path: Path) -> None:
    paths = _write_images(tmp_path / "imgs")
    source = ImagesProvider().data(
        None, path=str(tmp_path / "imgs"), size="20,22", crop="16,16",
        mean=",".join(map(str, MEAN)), std=",".join(map(str, STD)), files_per_split="2",
    )
    assert source.id_type() == "string" and source.count_hint() == 4
    ids, rows = _read_all(source)
    assert ids == sorted(paths)
    for image_id, row in zip(ids, rows, strict=True):
        assert row.shape == (3, 16, 16) and row.dtype == np.float32
        np.testing.assert_allclose(row, _by_hand(paths[image_id], (20, 22), (16, 16)), atol=1e-6)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    paths = _write_images(tmp_path / "imgs")
    source = ImagesProvider().data(None, path=str(paths["dogs/small/d.jpg"]), dtype="uint8",
                                   layout="nhwc")
    _ids, rows = _read_all(source)
    assert rows[0].shape == (28, 16, 3), "a 16x28 image with orientation 6 is shown 28x16"


def test_without_a_size_images_keep_theirs_in_sub_batches(tmp_path: Path) -> None:
    paths = _write_images(tmp_path / "imgs")
    source = ImagesProvider().data(None, path=str(tmp_path / "imgs" / "**" / "*.png"),
                                   channels="bgr", layout="nhwc")
    batches = [(ids, t.shape) for s in source.splits() for ids, t in source.read(s, 8)]
    assert batches == [
        (["cats/a.png"], (1, 20, 30, 3)),
        (["cats/b.png"], (1, 24, 24, 3)),
        (["dogs/c.png"], (1, 18, 26, 3)),
    ]
    with Image.open(paths["cats/a.png"]) as image:
        expected = (np.asarray(image.convert("RGB")).astype(np.float32) / 255.0)[..., ::-1]
    first = next(iter(source.read(source.splits()[0], 8)))[1][0]
    np.testing.assert_allclose(first, expected, atol=1e-7)


def test_a_parquet_column_of_bytes_or_paths(tmp_path: Path) -> None:
    paths = _write_images(tmp_path / "imgs")
    names = sorted(paths)
    table = pa.table({
        "id": pa.array(range(len(names)), pa.int64()),
        "image": pa.array([paths[n].read_bytes() for n in names], pa.binary()),
        "file": pa.array([f"imgs/{n}" for n in names]),
    })
    pq.write_table(table, tmp_path / "images.parquet", row_group_size=3)
    for column in ("image", "file"):
        source = ImagesProvider().data(
            None, path=str(tmp_path / "images.parquet"), column=column, size="8,8",
            mean=",".join(map(str, MEAN)), std=",".join(map(str, STD)),
        )
        assert source.id_type() == "bigint" and len(source.splits()) == 2
        ids, rows = _read_all(source)
        assert ids == list(range(len(names)))
        for i, row in zip(ids, rows, strict=True):
            np.testing.assert_allclose(row, _by_hand(paths[names[i]], (8, 8), None), atol=1e-6)


def test_an_undecodable_file_is_named(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "cats" / "broken.png").write_bytes(b"\x89PNG not really")
    source = ImagesProvider().data(None, path=str(tmp_path / "imgs"), size="8,8")
    bad = [item for split in source.splits() for item in source.read(split, 3)
           if isinstance(item, BadRows)]
    assert len(bad) == 1, bad
    (bad_id,) = bad[0].ids
    assert str(bad_id).endswith("broken.png")
    assert re.search(r"broken\.png cannot be decoded as an image", str(bad[0].error))
    assert bad[0].stage == "read" and str(bad[0].source).endswith("broken.png")


def test_bad_options_are_refused(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs")
    for options, message in [
        ({"size": "8"}, "'size' is H,W"),
        ({"mean": "0.5,0.5"}, "'mean' is r,g,b"),
        ({"std": "0,1,1"}, "none 0"),
        ({"dtype": "uint8", "mean": "0,0,0"}, "mean and std apply to scaled pixels"),
    ]:
        with pytest.raises(InvalidValueError, match=message):
            ImagesProvider().data(None, path=str(tmp_path / "imgs"), **options)
    with pytest.raises(InvalidValueError, match="No images at"):
        ImagesProvider().data(None, path=str(tmp_path / "imgs" / "*.gif"))
