"""Mergeable metric states, one kind per evaluation type (numpy only).

An executor feeds each batch's model output and labels to a state's ``update``; the
driver merges the states of every partition with ``merge`` (associative and
commutative: counts, sums and histograms) and reads the metrics with ``result``.
Predictions are never collected.

========================  =============================================================
``evaluation``            multi-class: confusion matrix → accuracy, per-class
                          precision/recall/F1 (0 where undefined, as scikit-learn's
                          ``zero_division=0``), macro and support-weighted averages
``evaluationbinary``      per output column at a threshold: TP/FP/TN/FN → accuracy,
                          precision, recall, F1
``roc``                   one binary output: ROC curve and AUC
``rocbinary``             ROC curve and AUC per output column
``rocmulticlass``         one-vs-all ROC curve and AUC per class, and their macro mean
``regression``            per output column: MSE, MAE, RMSE, R²
========================  =============================================================

See :mod:`skil_sdk.evaluation.histogram` for how AUC is computed and bounded.
"""

from __future__ import annotations

import abc
import pickle
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from skil_sdk.errors import InvalidValueError, ModelError
from skil_sdk.evaluation.histogram import DEFAULT_MAX_BINS, ScoreHistogram

EVAL_TYPES = ("evaluation", "evaluationbinary", "roc", "rocbinary", "rocmulticlass", "regression")


@dataclass(frozen=True)
class EvaluationSettings:
    """What an evaluation job computes (``InferenceRequest.evaluation`` holds its dict form).

    ``output`` names the model output to evaluate (default: the first probability or
    float output); ``threshold`` is the decision threshold of ``evaluationbinary`` (a
    score at or above it is positive) and of single-column ``evaluation`` outputs.
    """

    eval_type: str
    label_column: str = "label"
    threshold: float = 0.5
    output: str | None = None
    max_bins: int = DEFAULT_MAX_BINS

    def __post_init__(self) -> None:
        if self.eval_type not in EVAL_TYPES:
            raise InvalidValueError(
                f"Unknown eval type {self.eval_type!r}; use one of {', '.join(EVAL_TYPES)}."
            )
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise InvalidValueError(
                f"threshold must be between 0 and 1, not {self.threshold}; e.g. 0.5."
            )
        if not self.label_column:
            raise InvalidValueError("label_column is empty; name the label column, e.g. label.")
        if self.max_bins < 16:
            raise InvalidValueError(f"max_bins must be at least 16, not {self.max_bins}.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationSettings:
        """Settings from a dict; unknown keys are an error naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidValueError(
                f"Unknown evaluation setting {unknown[0]!r}; the settings are "
                f"{', '.join(sorted(known))}."
            )
        if "eval_type" not in data:
            raise InvalidValueError("The evaluation needs an eval_type, e.g. evaluation.")
        values = dict(data)
        if "threshold" in values:
            values["threshold"] = float(values["threshold"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def as_matrix(values: Any) -> np.ndarray:
    """``values`` as a 2-D array of one row per example (1-D becomes one column)."""
    array = np.asarray(values)
    if array.ndim == 0:
        return array.reshape(1, 1)
    if array.ndim == 1:
        return array.reshape(-1, 1)
    return array.reshape(array.shape[0], int(np.prod(array.shape[1:])))


def class_indices(labels: Any) -> np.ndarray:
    """Class indices of labels: integers as they are, one-hot rows by their argmax."""
    matrix = as_matrix(labels)
    if matrix.shape[1] == 1:
        values = matrix[:, 0]
        indices = values.astype(np.int64)
        if not np.array_equal(indices, values) or (indices < 0).any():
            raise ModelError(
                "Class labels must be whole numbers from 0 (or one-hot rows); found "
                f"{values[(indices != values) | (indices < 0)][:1].tolist()}."
            )
        return indices
    return np.argmax(matrix, axis=1).astype(np.int64)


def _check_rows(scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.shape[0] != labels.shape[0]:
        raise ModelError(
            f"The batch has {scores.shape[0]} predictions but {labels.shape[0]} labels; "
            "give one label per row."
        )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (``zero_division=0``)."""
    num = numerator.astype(np.float64)
    den = denominator.astype(np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


class MetricState(abc.ABC):
    """Base class of the mergeable states."""

    @abc.abstractmethod
    def update(self, scores: Any, labels: Any) -> None:
        """Add one batch: the model output's rows and their labels."""

    @abc.abstractmethod
    def merge(self, other: Any) -> Any:
        """Add ``other``'s counts to this state; return self."""

    @abc.abstractmethod
    def result(self) -> dict[str, Any]:
        """The metrics, JSON-ready."""

    def to_bytes(self) -> bytes:
        """The serialized state (what a partition sends to the driver)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)


def state_from_bytes(data: bytes) -> MetricState:
    """A state :meth:`MetricState.to_bytes` wrote."""
    state = pickle.loads(data)
    if not isinstance(state, MetricState):
        raise TypeError(f"not a metric state: {type(state).__name__}")
    return state


class MulticlassState(MetricState):
    """``evaluation``: a confusion matrix (rows: true class, columns: predicted class)."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.matrix = np.zeros((0, 0), dtype=np.int64)

    def _predicted(self, scores: Any) -> tuple[np.ndarray, int]:
        raw = np.asarray(scores)
        matrix = as_matrix(raw)
        if matrix.shape[1] == 1 and np.issubdtype(matrix.dtype, np.integer):
            return class_indices(matrix), 0
        if matrix.shape[1] == 1:
            return (matrix[:, 0] >= self.threshold).astype(np.int64), 2
        return np.argmax(matrix, axis=1).astype(np.int64), matrix.shape[1]

    def _grow(self, size: int) -> None:
        if size > self.matrix.shape[0]:
            grown = np.zeros((size, size), dtype=np.int64)
            k = self.matrix.shape[0]
            grown[:k, :k] = self.matrix
            self.matrix = grown

    def update(self, scores: Any, labels: Any) -> None:
        predicted, width = self._predicted(scores)
        truth = class_indices(labels)
        _check_rows(predicted, truth)
        if len(truth) == 0:
            return
        size = max(width, int(truth.max()) + 1, int(predicted.max()) + 1)
        counts = np.bincount(truth * size + predicted, minlength=size * size)
        self._grow(size)
        self.matrix[:size, :size] += counts.reshape(size, size)

    def merge(self, other: MulticlassState) -> MulticlassState:
        self._grow(other.matrix.shape[0])
        k = other.matrix.shape[0]
        self.matrix[:k, :k] += other.matrix
        return self

    def result(self) -> dict[str, Any]:
        cm = self.matrix
        tp = np.diag(cm)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        total = int(cm.sum())
        precision = _ratio(tp, predicted)
        recall = _ratio(tp, support)
        f1 = _ratio(2 * tp, 2 * tp + (predicted - tp) + (support - tp))

        def averaged(values: np.ndarray) -> dict[str, Any]:
            return {
                "per_class": values.tolist(),
                "macro": float(values.mean()) if len(values) else 0.0,
                "weighted": float((values * support).sum() / total) if total else 0.0,
            }

        return {
            "classes": int(cm.shape[0]),
            "accuracy": float(tp.sum() / total) if total else 0.0,
            "precision": averaged(precision),
            "recall": averaged(recall),
            "f1": averaged(f1),
            "support": support.tolist(),
            "confusion_matrix": cm.tolist(),
        }


class BinaryState(MetricState):
    """``evaluationbinary``: TP, FP, TN, FN per output column at ``threshold``."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.counts: np.ndarray | None = None  # [4, columns]: tp, fp, tn, fn

    def update(self, scores: Any, labels: Any) -> None:
        predicted = as_matrix(scores).astype(np.float64) >= self.threshold
        truth = as_matrix(labels).astype(np.float64) > 0.5
        _check_rows(predicted, truth)
        if predicted.shape != truth.shape:
            raise ModelError(
                f"The model gives {predicted.shape[1]} output columns but the label has "
                f"{truth.shape[1]}; evaluationbinary needs one 0/1 label per output column."
            )
        batch = np.stack(
            [
                (predicted & truth).sum(axis=0),
                (predicted & ~truth).sum(axis=0),
                (~predicted & ~truth).sum(axis=0),
                (~predicted & truth).sum(axis=0),
            ]
        ).astype(np.int64)
        self._add(batch)

    def _add(self, batch: np.ndarray) -> None:
        if self.counts is None:
            self.counts = batch.copy()
        elif self.counts.shape != batch.shape:
            raise ModelError(
                f"Batches with {self.counts.shape[1]} and {batch.shape[1]} output columns; "
                "every row must have the same number of columns."
            )
        else:
            self.counts += batch

    def merge(self, other: BinaryState) -> BinaryState:
        if other.counts is not None:
            self._add(other.counts)
        return self

    def result(self) -> dict[str, Any]:
        counts = self.counts if self.counts is not None else np.zeros((4, 0), dtype=np.int64)
        tp, fp, tn, fn = counts
        total = tp + fp + tn + fn
        return {
            "threshold": self.threshold,
            "accuracy": _ratio(tp + tn, total).tolist(),
            "precision": _ratio(tp, tp + fp).tolist(),
            "recall": _ratio(tp, tp + fn).tolist(),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn).tolist(),
            "tp": tp.tolist(),
            "fp": fp.tolist(),
            "tn": tn.tolist(),
            "fn": fn.tolist(),
        }


class RocState(MetricState):
    """``roc``, ``rocbinary`` and ``rocmulticlass``: one score histogram per column or class."""

    def __init__(self, mode: str, max_bins: int = DEFAULT_MAX_BINS) -> None:
        self.mode = mode
        self.max_bins = max_bins
        self.histograms: list[ScoreHistogram] = []

    def _columns(self, scores: Any, labels: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        matrix = as_matrix(scores).astype(np.float64)
        if self.mode == "roc":
            if matrix.shape[1] > 2:
                raise ModelError(
                    f"eval type roc needs a binary output (1 or 2 columns), not "
                    f"{matrix.shape[1]} columns; use rocmulticlass or rocbinary."
                )
            truth = as_matrix(labels)
            positive = truth[:, 0] > 0.5 if truth.shape[1] == 1 else np.argmax(truth, 1) == 1
            return [(matrix[:, -1], positive)]
        if self.mode == "rocbinary":
            truth = as_matrix(labels).astype(np.float64)
            if truth.shape != matrix.shape:
                raise ModelError(
                    f"The model gives {matrix.shape[1]} output columns but the label has "
                    f"{truth.shape[1]}; rocbinary needs one 0/1 label per output column."
                )
            return [(matrix[:, c], truth[:, c] > 0.5) for c in range(matrix.shape[1])]
        classes = class_indices(labels)
        if matrix.shape[1] < 2:
            raise ModelError(
                "eval type rocmulticlass needs one score column per class; use roc for a "
                "single binary score."
            )
        if len(classes) and int(classes.max()) >= matrix.shape[1]:
            raise ModelError(
                f"Label {int(classes.max())} is not a class of a model with "
                f"{matrix.shape[1]} score columns; labels must be 0..{matrix.shape[1] - 1}."
            )
        return [(matrix[:, k], classes == k) for k in range(matrix.shape[1])]

    def update(self, scores: Any, labels: Any) -> None:
        columns = self._columns(scores, labels)
        _check_rows(columns[0][0], columns[0][1])
        if not self.histograms:
            self.histograms = [ScoreHistogram(self.max_bins) for _ in columns]
        if len(columns) != len(self.histograms):
            raise ModelError(
                f"Batches with {len(self.histograms)} and {len(columns)} score columns; every "
                "row must have the same number of columns."
            )
        for histogram, (score, positive) in zip(self.histograms, columns, strict=True):
            histogram.update(score, positive)

    def merge(self, other: RocState) -> RocState:
        if not self.histograms:
            self.histograms = other.histograms
        elif other.histograms:
            if len(other.histograms) != len(self.histograms):
                raise ModelError(
                    f"Partitions with {len(self.histograms)} and {len(other.histograms)} score "
                    "columns; every row must have the same number of columns."
                )
            for mine, theirs in zip(self.histograms, other.histograms, strict=True):
                mine.merge(theirs)
        return self

    def result(self) -> dict[str, Any]:
        summaries = [h.summary() for h in self.histograms]
        if self.mode == "roc":
            return summaries[0] if summaries else {"auc": None, "auc_error_bound": 0.0}
        aucs = [s["auc"] for s in summaries]
        bounds = [s["auc_error_bound"] for s in summaries]
        if self.mode == "rocbinary":
            return {"auc": aucs, "auc_error_bound": bounds, "columns": summaries}
        defined = [a for a in aucs if a is not None]
        return {
            "auc": aucs,
            "macro_auc": float(np.mean(defined)) if defined else None,
            "auc_error_bound": bounds,
            "per_class": summaries,
        }


class RegressionState(MetricState):
    """``regression``: per column count, label mean and M2 (Chan et al.), squared/absolute sums."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.sse: np.ndarray | None = None
        self.sae: np.ndarray | None = None

    def update(self, scores: Any, labels: Any) -> None:
        predicted = as_matrix(scores).astype(np.float64)
        truth = as_matrix(labels).astype(np.float64)
        _check_rows(predicted, truth)
        if predicted.shape != truth.shape:
            raise ModelError(
                f"The model gives {predicted.shape[1]} output columns but the label has "
                f"{truth.shape[1]}; regression needs one label value per output column."
            )
        if len(truth) == 0:
            return
        other = RegressionState()
        other.n = len(truth)
        other.mean = truth.mean(axis=0)
        other.m2 = ((truth - other.mean) ** 2).sum(axis=0)
        error = predicted - truth
        other.sse = (error**2).sum(axis=0)
        other.sae = np.abs(error).sum(axis=0)
        self.merge(other)

    def merge(self, other: RegressionState) -> RegressionState:
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            self.sse, self.sae = other.sse, other.sae
            return self
        assert self.mean is not None and other.mean is not None
        assert self.m2 is not None and other.m2 is not None
        assert self.sse is not None and other.sse is not None
        assert self.sae is not None and other.sae is not None
        if self.mean.shape != other.mean.shape:
            raise ModelError(
                f"Partitions with {self.mean.shape[0]} and {other.mean.shape[0]} output "
                "columns; every row must have the same number of columns."
            )
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.n / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        self.sse = self.sse + other.sse
        self.sae = self.sae + other.sae
        self.n = n
        return self

    def result(self) -> dict[str, Any]:
        if self.n == 0 or self.sse is None or self.sae is None or self.m2 is None:
            return {"mse": [], "mae": [], "rmse": [], "r2": []}
        mse = self.sse / self.n
        r2 = np.where(
            self.m2 > 0,
            1.0 - self.sse / np.where(self.m2 > 0, self.m2, 1.0),
            np.where(self.sse == 0, 1.0, 0.0),
        )
        return {
            "mse": mse.tolist(),
            "mae": (self.sae / self.n).tolist(),
            "rmse": np.sqrt(mse).tolist(),
            "r2": r2.tolist(),
        }


def new_state(settings: EvaluationSettings) -> MetricState:
    """An empty state for ``settings.eval_type``."""
    kind = settings.eval_type
    if kind == "evaluation":
        return MulticlassState(settings.threshold)
    if kind == "evaluationbinary":
        return BinaryState(settings.threshold)
    if kind in ("roc", "rocbinary", "rocmulticlass"):
        return RocState(kind, settings.max_bins)
    return RegressionState()


def merge_serialized(left: bytes | None, right: bytes | None) -> bytes | None:
    """Merge two serialized states (None is the empty state)."""
    if left is None:
        return right
    if right is None:
        return left
    return state_from_bytes(left).merge(state_from_bytes(right)).to_bytes()
