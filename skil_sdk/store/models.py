"""The model store: ONNX models under ``SKIL_HOME/models``, content-addressed by sha256.

Each model is a directory ``SKIL_HOME/models/<id>/`` holding ``model.onnx``, any
external-data files it references (under their own relative names) and ``model.json``
(its :class:`ModelRecord`). Ids are ``<slug(name)>-<digest[:12]>``, where the digest is
the sha256 of the model file (or, for a model with external data, of the sorted list of
every file's name and sha256). The same bytes added twice give the same model.
Models from MLflow go through :mod:`skil_sdk.store.mlflow_models`, which records their
source URI and the per-row input shapes of their MLflow signature.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from skil_sdk.errors import IntegrityError, InvalidValueError, ModelError, NotFoundError
from skil_sdk.home import file_lock, skil_home
from skil_sdk.storage import (
    atomic_directory,
    atomic_write_text,
    remove_dir,
    sha256_bytes,
    sha256_file,
    sweep_stale,
)

MAIN_FILE = "model.onnx"
RECORD_FILE = "model.json"
ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$")


@dataclass
class ModelRecord:
    """A stored model: its id, name, experiment, files with sha256, and signature.

    ``source`` says where it came from (an MLflow URI or model directory; empty for a
    file added by path) and ``input_shapes`` holds default per-row shapes of its inputs
    (``{name: [dims]}``, every dim a positive int), taken from an MLflow signature.
    """

    id: str
    name: str
    experiment: str
    sha256: str
    files: list[dict[str, Any]]
    signature: dict[str, list[dict[str, Any]]]
    path: Path
    content_sha256: str = ""
    created_at: float = 0.0
    onnx_opsets: dict[str, int] = field(default_factory=dict)
    source: str = ""
    input_shapes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Total bytes of every file of the model."""
        return sum(int(f["size"]) for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data (``path`` as a string)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["main_file"] = MAIN_FILE
        data["size"] = self.size
        return data


def models_root() -> Path:
    """``SKIL_HOME/models`` (created)."""
    root = skil_home() / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def validate_model_id(model_id: str) -> str:
    """``model_id`` if it is a well-formed id (so it cannot name a path outside the store)."""
    if not isinstance(model_id, str) or not ID_PATTERN.match(model_id):
        raise InvalidValueError(
            f"{model_id!r:.80} is not a model id (lowercase letters, digits and '-'); "
            "run `skil-sdk models list` to see the ids."
        )
    return model_id


def slugify(name: str) -> str:
    """A URL-safe slug of ``name``: lowercase letters, digits and '-', at most 40 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "model"


def _check_label(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value or ""):
        raise InvalidValueError(
            f"{what} {value!r:.80} is not valid; use up to 128 letters, digits, spaces, '.', "
            "'_' or '-', starting with a letter or digit."
        )
    return value


def add_model(
    path: Path,
    experiment: str,
    name: str | None = None,
    *,
    source: str = "",
    input_shapes: dict[str, list[int]] | None = None,
) -> ModelRecord:
    """Check an ONNX model, record its signature and store it with all its files.

    Raises :class:`ModelError` (nothing stored) when the file is not ONNX, is truncated
    or invalid, or the installed onnxruntime cannot load it. Adding the same bytes again
    returns the stored model (with its first name, experiment and source).

    ``source`` is recorded as where the model came from. ``input_shapes`` gives default
    per-row shapes of inputs (``{name: [dims]}``, positive ints); those that do not fit the
    model (an unknown input, another rank, a fixed dim changed) are left out.
    """
    from skil_sdk.inference.checking import check_model

    onnx_path = Path(path)
    if not onnx_path.is_file():
        raise NotFoundError(f"No model file at {onnx_path}; pass the path of a .onnx file.")
    _check_label(experiment, "Experiment name")
    display = _check_label(name, "Model name") if name else onnx_path.stem
    shapes = _check_shapes(input_shapes or {})
    checked = check_model(onnx_path)
    entries: list[dict[str, Any]] = [
        {"name": MAIN_FILE, "sha256": sha256_file(onnx_path), "size": onnx_path.stat().st_size}
    ]
    for location in checked.external_files:
        file_path = onnx_path.parent / location
        entries.append(
            {"name": location, "sha256": sha256_file(file_path), "size": file_path.stat().st_size}
        )
    main_sha = str(entries[0]["sha256"])
    content = main_sha if len(entries) == 1 else _content_digest(entries)
    model_id = f"{slugify(display)}-{content[:12]}"
    root = models_root()
    with file_lock("models"):
        # under the lock nobody else writes here: a work dir left now is a killed writer's
        sweep_stale(root, locked=True)
        existing = _find_by_content(root, content)
        if existing is not None:
            return existing
        target = root / model_id
        with atomic_directory(target) as ad:
            if not ad.is_finalized():
                record = ModelRecord(
                    id=model_id,
                    name=display,
                    experiment=experiment,
                    sha256=main_sha,
                    files=entries,
                    signature=checked.signature,
                    path=target / MAIN_FILE,
                    content_sha256=content,
                    created_at=time.time(),
                    onnx_opsets=checked.opsets,
                    source=source,
                    input_shapes=_fitting_shapes(shapes, checked.signature),
                )
                _copy_files(onnx_path, entries, ad.work_dir)
                _write_record(ad.work_dir / RECORD_FILE, record)
        return get_model(model_id)


def _check_shapes(shapes: dict[str, list[int]]) -> dict[str, list[int]]:
    checked: dict[str, list[int]] = {}
    for input_name, dims in shapes.items():
        if not (
            isinstance(input_name, str)
            and isinstance(dims, list | tuple)
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims)
        ):
            raise InvalidValueError(
                f"Input shape {input_name!r:.80}: {dims!r:.80} is not a list of positive dims; "
                "give each input's per-row dims, e.g. {'image': [3, 224, 224]}."
            )
        checked[input_name] = [int(d) for d in dims]
    return checked


def _fitting_shapes(
    shapes: dict[str, list[int]], signature: dict[str, list[dict[str, Any]]]
) -> dict[str, list[int]]:
    """The shapes that name an input and keep its per-row rank and fixed dims."""
    inputs = {spec["name"]: spec for spec in signature["inputs"]}
    fitting: dict[str, list[int]] = {}
    for input_name, dims in shapes.items():
        spec = inputs.get(input_name)
        if spec is None or spec["kind"] != "tensor" or not dims:
            continue
        shape = spec["shape"]
        if shape is not None:
            row = list(shape[1:])
            if len(row) != len(dims) or any(
                isinstance(fixed, int) and fixed != wanted
                for fixed, wanted in zip(row, dims, strict=True)
            ):
                continue
        fitting[input_name] = dims
    return fitting


def _content_digest(entries: list[dict[str, Any]]) -> str:
    lines = sorted(f"{e['name']}\0{e['sha256']}" for e in entries)
    return sha256_bytes("\n".join(lines).encode())


def _copy_files(source: Path, entries: list[dict[str, Any]], work_dir: Path) -> None:
    for entry in entries:
        origin = source if entry["name"] == MAIN_FILE else source.parent / entry["name"]
        destination = work_dir / entry["name"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, destination)
        if sha256_file(destination) != entry["sha256"]:
            raise IntegrityError(f"{origin} changed while it was being added; add the model again.")


def _write_record(path: Path, record: ModelRecord) -> None:
    data = record.to_dict()
    for key in ("path", "main_file", "size"):
        data.pop(key)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _read_record(directory: Path) -> ModelRecord:
    data = json.loads((directory / RECORD_FILE).read_text())
    data["path"] = directory / MAIN_FILE
    known = ModelRecord.__dataclass_fields__
    return ModelRecord(**{k: v for k, v in data.items() if k in known})


def _find_by_content(root: Path, content: str) -> ModelRecord | None:
    for record in _iter_records(root):
        if record.content_sha256 == content:
            return record
    return None


def _iter_records(root: Path) -> list[ModelRecord]:
    records = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not (entry / RECORD_FILE).is_file():
            continue
        try:
            records.append(_read_record(entry))
        except (OSError, ValueError, TypeError):
            continue
    return records


def get_model(model_id: str) -> ModelRecord:
    """The stored model ``model_id``; NotFoundError when there is none."""
    validate_model_id(model_id)
    directory = models_root() / model_id
    if not (directory / RECORD_FILE).is_file():
        raise NotFoundError(
            f"No model {model_id!r}; run `skil-sdk models list` to see the stored models."
        )
    return _read_record(directory)


def list_models(experiment: str | None = None) -> list[ModelRecord]:
    """Every stored model (optionally of one experiment), oldest first."""
    records = _iter_records(models_root())
    if experiment is not None:
        records = [r for r in records if r.experiment == experiment]
    return sorted(records, key=lambda r: (r.created_at, r.id))


def list_experiments() -> list[dict[str, Any]]:
    """The experiments: ``{"name", "models", "model_ids"}`` sorted by name."""
    grouped: dict[str, list[str]] = {}
    for record in list_models():
        grouped.setdefault(record.experiment, []).append(record.id)
    return [
        {"name": name, "models": len(ids), "model_ids": ids}
        for name, ids in sorted(grouped.items())
    ]


def remove_model(model_id: str) -> ModelRecord:
    """Remove a stored model and return what it was."""
    record = get_model(model_id)
    root = models_root()
    with file_lock("models"):
        if remove_dir(root / model_id):
            sweep_stale(root, locked=True)
    return record


def model_file(record: ModelRecord, name: str) -> Path:
    """The stored path of one of the model's files, by its recorded name only."""
    for entry in record.files:
        if entry["name"] == name:
            return record.path.parent / entry["name"]
    raise NotFoundError(
        f"Model {record.id!r} has no file {name!r:.80}; its files are listed by "
        f"`skil-sdk models show {record.id}`."
    )


def verify_model(model_id: str) -> ModelRecord:
    """Recompute the sha256 of every file of the model; IntegrityError on a mismatch."""
    record = get_model(model_id)
    for entry in record.files:
        path = record.path.parent / entry["name"]
        if not path.is_file():
            raise IntegrityError(
                f"Model {model_id!r} is missing its file {entry['name']}; remove it and add "
                "it again."
            )
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise IntegrityError(
                f"Model {model_id!r} file {entry['name']} has sha256 {actual}, expected "
                f"{entry['sha256']}; remove the model and add it again."
            )
    return record


__all__ = [
    "ModelError",
    "ModelRecord",
    "add_model",
    "get_model",
    "list_experiments",
    "list_models",
    "model_file",
    "remove_model",
    "validate_model_id",
    "verify_model",
]
