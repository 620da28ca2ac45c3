"""``ModelRunner``: one onnxruntime session and the reshaping, casting and batching around it."""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skil_sdk.errors import ModelError
from skil_sdk.inference.batching import fixed_batch_size, run_in_chunks
from skil_sdk.inference.shaping import shape_input
from skil_sdk.inference.signature import signature_from_session

Outputs = dict[str, Any]


class ModelRunner:
    """Runs an ONNX model on rows of features.

    >>> runner = ModelRunner(Path("model.onnx"))
    >>> outputs = runner.run(np.zeros((32, 784), dtype="float32"))
    >>> outputs["output"].shape
    (32, 10)

    ``features`` is a 2-D array (N rows of flat features) for a single-input model, or a
    dict ``input_name -> N rows``. Rows are reshaped to each input's shape and cast to its
    element type. A model whose batch dim is fixed runs in chunks of that size (the last
    one padded) and still returns exactly N rows. Tensor outputs are numpy arrays;
    non-tensor outputs (scikit-learn's ZipMap ``seq(map)``) are lists of dicts.
    """

    def __init__(
        self,
        model_path: Path,
        intra_op_threads: int = 1,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if _CUDA in providers:
            _preload_cuda(ort)
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=list(providers)
            )
        except Exception as exc:
            raise ModelError(
                f"onnxruntime {ort.__version__} cannot load {self.model_path.name} "
                f"({_first_line(exc)}); export the model with operators and an opset this "
                "onnxruntime supports."
            ) from exc
        _check_cuda(ort, self._session, providers)
        self.signature: dict[str, list[dict[str, Any]]] = signature_from_session(self._session)
        self.input_names: list[str] = [i["name"] for i in self.signature["inputs"]]
        self.output_names: list[str] = [o["name"] for o in self.signature["outputs"]]
        self._specs = {i["name"]: i for i in self.signature["inputs"]}
        self.batch_size: int | None = fixed_batch_size(self.signature["inputs"])
        self._warned = False

    def run(
        self,
        features: np.ndarray | Mapping[str, Any],
        input_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> Outputs:
        """Run the model on N rows; every output has N rows (see the class docstring).

        ``input_shapes`` gives the per-row shape of inputs whose dims the model leaves
        dynamic (``--input-shape``): flat rows are reshaped to it.
        """
        feeds = self._feeds(features, input_shapes or {})
        rows = _row_count(feeds)
        if rows == 0:
            return {
                spec["name"]: np.empty((0,)) if spec["kind"] == "tensor" else []
                for spec in self.signature["outputs"]
            }
        if self.batch_size is None or self.batch_size == rows:
            return self._run_once(feeds)
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"Model {self.model_path.name} has a fixed batch size of {self.batch_size}; "
                f"running rows in chunks of {self.batch_size} (the last one padded).",
                RuntimeWarning,
                stacklevel=2,
            )
        return run_in_chunks(self._run_once, feeds, rows, self.batch_size, self.output_names)

    def _feeds(
        self, features: np.ndarray | Mapping[str, Any], shapes: Mapping[str, Sequence[int]]
    ) -> dict[str, np.ndarray]:
        if isinstance(features, Mapping):
            missing = [n for n in self.input_names if n not in features]
            unknown = [n for n in features if n not in self._specs]
            if missing or unknown:
                raise ModelError(
                    f"Model {self.model_path.name} takes inputs {self.input_names}, got "
                    f"{sorted(features)}; name every input exactly once."
                )
            feeds = {
                n: shape_input(self._specs[n], features[n], shapes.get(n)) for n in self.input_names
            }
        else:
            if len(self.input_names) != 1:
                raise ModelError(
                    f"Model {self.model_path.name} has {len(self.input_names)} inputs "
                    f"({', '.join(self.input_names)}); pass a dict of input name to rows."
                )
            name = self.input_names[0]
            feeds = {name: shape_input(self._specs[name], features, shapes.get(name))}
        counts = {n: (a.shape[0] if a.ndim else 1) for n, a in feeds.items()}
        if len(set(counts.values())) > 1:
            raise ModelError(
                f"Inputs have different row counts ({counts}); send the same rows for every input."
            )
        return feeds

    def _run_once(self, feeds: dict[str, np.ndarray]) -> Outputs:
        try:
            values = self._session.run(self.output_names, feeds)
        except Exception as exc:
            raise ModelError(
                f"onnxruntime could not run {self.model_path.name} ({_first_line(exc)}); check "
                "the inputs against the model's signature (`skil-sdk models show ID`).",
                stage="model",
            ) from exc
        return dict(zip(self.output_names, values, strict=True))


_CUDA = "CUDAExecutionProvider"


def _preload_cuda(ort: Any) -> None:
    """Load the CUDA and cuDNN libraries of the ``nvidia-*`` wheels beside onnxruntime.

    ``onnxruntime-gpu[cuda,cudnn]`` installs them as Python packages, which the dynamic
    linker does not search; ``onnxruntime.preload_dlls()`` (onnxruntime 1.21+) loads them
    from there, else from the system's library path. What it prints is dropped: a
    provider that still cannot start is reported by :func:`_check_cuda`.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        preload()


def _check_cuda(ort: Any, session: Any, providers: Sequence[str]) -> None:
    """Raise when CUDA was asked for but the session fell back to the CPU.

    onnxruntime only warns when the CUDA provider is missing (the CPU build of
    onnxruntime) or cannot start (no GPU, or no CUDA/cuDNN libraries), and then runs
    on the CPU; a job that asked for CUDA fails instead.
    """
    if _CUDA not in providers or _CUDA in session.get_providers():
        return
    available = ", ".join(ort.get_available_providers())
    if _CUDA not in ort.get_available_providers():
        raise ModelError(
            f"onnxruntime {ort.__version__} on this machine has no CUDAExecutionProvider "
            f"(available: {available}); run the job with `skil-sdk infer --execution-provider "
            "cuda`, whose bundle carries onnxruntime-gpu, or install onnxruntime-gpu in the "
            "executors' Python, or use --execution-provider cpu."
        )
    cuda = getattr(ort, "cuda_version", "") or ""
    raise ModelError(
        f"onnxruntime {ort.__version__}'s CUDAExecutionProvider could not start on this "
        f"machine (available: {available}); run on nodes with an NVIDIA GPU, its driver and "
        f"the CUDA{' ' + cuda if cuda else ''} and cuDNN libraries onnxruntime-gpu was built "
        "for, or use --execution-provider cpu."
    )


def _row_count(feeds: dict[str, np.ndarray]) -> int:
    first = next(iter(feeds.values()))
    return int(first.shape[0]) if first.ndim else 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


_CACHE: dict[tuple[str, int, tuple[str, ...]], ModelRunner] = {}
_CACHE_LOCK = threading.Lock()


def get_runner(
    model_path: Path,
    intra_op_threads: int = 1,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> ModelRunner:
    """The process-wide :class:`ModelRunner` of a model file, created on first use and kept."""
    key = (str(Path(model_path).resolve()), intra_op_threads, tuple(providers))
    with _CACHE_LOCK:
        runner = _CACHE.get(key)
        if runner is None:
            runner = ModelRunner(Path(model_path), intra_op_threads, providers)
            _CACHE[key] = runner
        return runner

