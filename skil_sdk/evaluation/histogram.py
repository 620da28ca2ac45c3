"""Mergeable score histograms for ROC curves and AUC, exact until they grow too large.

Each score (compared as float32, the type ONNX models output) maps to an
order-preserving 64-bit key: a region (below 0, [0, 0.5), [0.5, 1], above 1) in the
high bits and, in the low 32 bits, the float's bit pattern; in [0.5, 1] the pattern of
``1 - score`` mirrored, so scores near 1 are resolved as finely as scores near 0. Equal
scores share a key and different scores never do, so a histogram of keys is exact.

A histogram holds positive and negative counts per key. When it holds more than
``max_bins`` keys, the low bits of every key are dropped (``shift`` grows) until it
fits; bins then merge neighbouring scores, always keeping their order.

The AUC is the Mann-Whitney statistic over the bins: every (positive, negative) pair
in different bins is ordered exactly, and a pair in one bin counts 1/2. A pair in one
bin is off by at most 1/2, so::

    |AUC - exact AUC| <= 1/2 * sum_k P_k * N_k / (P * N)

over the bins ``k`` (``P_k``, ``N_k`` their positives and negatives). That bound is
:meth:`ScoreHistogram.auc_error_bound`: 0 while no key was dropped (``shift == 0``),
and about ``1 / (2 * occupied bins)`` for scores spread over many bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skil_sdk.errors import ModelError

#: Keys a histogram keeps before it coarsens (2**18: 6 MiB per histogram at most).
DEFAULT_MAX_BINS = 1 << 18
_HALF_BITS = int(np.array(0.5, dtype=np.float32).view(np.uint32))
_INF_BITS = int(np.array(np.inf, dtype=np.float32).view(np.uint32))
_LOW = np.uint64(0xFFFFFFFF)


def score_keys(scores: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of scores (as float32); NaN is an error."""
    values = np.asarray(scores, dtype=np.float32).reshape(-1) + np.float32(0.0)
    if np.isnan(values).any():
        raise ModelError("The model produced NaN scores; ROC and AUC need finite scores.")
    bits = values.view(np.uint32).astype(np.uint64)
    keys = np.empty(values.shape, dtype=np.uint64)
    negative = values < 0
    low = (values >= 0) & (values < 0.5)
    mid = (values >= 0.5) & (values <= 1)
    high = values > 1
    negative_bits = (-values[negative]).view(np.uint32).astype(np.uint64)
    keys[negative] = np.uint64(_INF_BITS) - negative_bits
    keys[low] = (np.uint64(1) << np.uint64(32)) | bits[low]
    mirrored = (np.float32(1.0) - values[mid]).view(np.uint32).astype(np.uint64)
    keys[mid] = (np.uint64(2) << np.uint64(32)) | (np.uint64(_HALF_BITS) - mirrored)
    keys[high] = (np.uint64(3) << np.uint64(32)) | bits[high]
    return keys


def key_lower_score(keys: np.ndarray, shift: int) -> np.ndarray:
    """The lowest score each key (at ``shift``) stands for, as float64."""
    keys = np.asarray(keys, dtype=np.uint64)
    region = keys >> np.uint64(32)
    payload = (keys & _LOW) << np.uint64(shift)
    out = np.empty(keys.shape, dtype=np.float64)
    for index in range(4):
        mask = region == np.uint64(index)
        p = payload[mask]
        if index == 0:
            bits = (np.uint64(_INF_BITS) - p).astype(np.uint32)
            out[mask] = -bits.view(np.float32).astype(np.float64)
        elif index == 2:
            bits = (np.uint64(_HALF_BITS) - p).astype(np.uint32)
            out[mask] = 1.0 - bits.view(np.float32).astype(np.float64)
        else:
            out[mask] = p.astype(np.uint32).view(np.float32).astype(np.float64)
    return out


class ScoreHistogram:
    """Positive and negative counts per score key (see the module docstring)."""

    def __init__(self, max_bins: int = DEFAULT_MAX_BINS) -> None:
        self.max_bins = max_bins
        self.shift = 0
        self.keys = np.empty(0, dtype=np.uint64)
        self.positives = np.empty(0, dtype=np.int64)
        self.negatives = np.empty(0, dtype=np.int64)

    def update(self, scores: np.ndarray, positive: np.ndarray) -> None:
        """Add scores with their truth (``positive``: booleans of the same length)."""
        keys = self._coarse_from(score_keys(scores), 0, self.shift)
        truth = np.asarray(positive, dtype=bool).reshape(-1)
        if keys.shape != truth.shape:
            raise ModelError(
                f"{keys.shape[0]} scores but {truth.shape[0]} labels in one batch; the label "
                "must have one value per score column."
            )
        self._add(keys, truth.astype(np.int64), (~truth).astype(np.int64), self.shift)

    def _add(self, keys: np.ndarray, pos: np.ndarray, neg: np.ndarray, shift: int) -> None:
        if shift < self.shift:
            keys = self._coarse_from(keys, shift, self.shift)
        elif shift > self.shift:
            self.keys = self._coarse_from(self.keys, self.shift, shift)
            self.shift = shift
        all_keys = np.concatenate([self.keys, keys])
        unique, inverse = np.unique(all_keys, return_inverse=True)
        self.positives = np.bincount(
            inverse, weights=np.concatenate([self.positives, pos]), minlength=len(unique)
        ).astype(np.int64)
        self.negatives = np.bincount(
            inverse, weights=np.concatenate([self.negatives, neg]), minlength=len(unique)
        ).astype(np.int64)
        self.keys = unique
        while len(self.keys) > self.max_bins:
            self.keys, inverse = np.unique(
                self._coarse_from(self.keys, self.shift, self.shift + 1), return_inverse=True
            )
            self.positives = np.bincount(inverse, weights=self.positives).astype(np.int64)
            self.negatives = np.bincount(inverse, weights=self.negatives).astype(np.int64)
            self.shift += 1

    @staticmethod
    def _coarse_from(keys: np.ndarray, shift: int, target: int) -> np.ndarray:
        if target == shift:
            return keys
        step = np.uint64(target - shift)
        return ((keys >> np.uint64(32)) << np.uint64(32)) | ((keys & _LOW) >> step)

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        """Add ``other``'s counts to this histogram; return self."""
        self.max_bins = min(self.max_bins, other.max_bins)
        self._add(other.keys, other.positives, other.negatives, other.shift)
        return self

    @property
    def total_positives(self) -> int:
        """How many positive scores were added."""
        return int(self.positives.sum())

    @property
    def total_negatives(self) -> int:
        """How many negative scores were added."""
        return int(self.negatives.sum())

    def auc(self) -> float | None:
        """The area under the ROC curve, or None without both positives and negatives."""
        p, n = self.total_positives, self.total_negatives
        if p == 0 or n == 0:
            return None
        below = np.cumsum(self.negatives) - self.negatives
        pairs = np.sum(self.positives * (below + 0.5 * self.negatives), dtype=np.float64)
        return float(pairs / (float(p) * float(n)))

    def auc_error_bound(self) -> float:
        """An upper bound of ``|auc() - exact AUC|``: 0 while every key is an exact score."""
        p, n = self.total_positives, self.total_negatives
        if self.shift == 0 or p == 0 or n == 0:
            return 0.0
        shared = np.sum(self.positives.astype(np.float64) * self.negatives)
        return float(0.5 * shared / (float(p) * float(n)))

    def curve(self, max_points: int = 201) -> dict[str, list[Any]]:
        """The ROC curve (``fpr``, ``tpr``, ``thresholds``), thinned to ``max_points``.

        Point ``i`` counts as positive every score at or above ``thresholds[i]`` (the
        lowest score of a bin), from the highest threshold down, after a first point at
        (0, 0) with an infinite threshold as scikit-learn's ``roc_curve`` gives.
        """
        p, n = self.total_positives, self.total_negatives
        order = slice(None, None, -1)
        tps = np.cumsum(self.positives[order])
        fps = np.cumsum(self.negatives[order])
        thresholds = key_lower_score(self.keys[order], self.shift)
        if len(tps) > max_points - 1:
            picks = np.unique(np.linspace(0, len(tps) - 1, max_points - 1).round().astype(int))
            tps, fps, thresholds = tps[picks], fps[picks], thresholds[picks]
        return {
            "fpr": [0.0, *(fps / n if n else np.zeros(len(fps))).tolist()],
            "tpr": [0.0, *(tps / p if p else np.zeros(len(tps))).tolist()],
            "thresholds": [None, *thresholds.tolist()],
        }

    def summary(self, curve_points: int = 201) -> dict[str, Any]:
        """``auc``, ``auc_error_bound``, counts and the thinned curve, JSON-ready."""
        return {
            "auc": self.auc(),
            "auc_error_bound": self.auc_error_bound(),
            "positives": self.total_positives,
            "negatives": self.total_negatives,
            "bins": len(self.keys),
            "curve": self.curve(curve_points),
        }
