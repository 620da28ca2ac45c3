"""The metric states against scikit-learn on random data, merged in random splits."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)

from skil_sdk import SkilContext
from skil_sdk.errors import InvalidValueError, ModelError, NotFoundError
from skil_sdk.evaluation.histogram import ScoreHistogram, key_lower_score, score_keys
from skil_sdk.evaluation.metrics import (
    EvaluationSettings,
    MetricState,
    merge_serialized,
    new_state,
    state_from_bytes,
)

TOL = 1e-9


def fold(
    settings: EvaluationSettings,
    scores: np.ndarray,
    labels: np.ndarray,
    parts: int = 5,
    seed: int = 0,
) -> MetricState:
    """Update one state per random partition, serialize each, merge them in a random order."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(scores)), parts - 1, replace=False))
    blobs = []
    for idx in np.split(np.arange(len(scores)), cuts):
        state = new_state(settings)
        for chunk in np.array_split(idx, 3):
            state.update(scores[chunk], labels[chunk])
        blobs.append(state.to_bytes())
    order = rng.permutation(len(blobs))
    merged = functools.reduce(merge_serialized, [blobs[i] for i in order])
    assert merged is not None
    return state_from_bytes(merged)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def test_multiclass_matches_sklearn_with_never_predicted_and_absent_classes() -> None:
    rng = np.random.default_rng(1)
    n, k = 3000, 6
    labels = rng.integers(0, 5, n)  # class 5 never present
    scores = rng.standard_normal((n, k)).astype(np.float32)
    scores[:, 4] -= 100  # class 4 never predicted
    scores[np.arange(n), labels] += rng.random(n) * 2
    got = fold(EvaluationSettings("evaluation"), scores, labels).result()
    predicted = scores.argmax(axis=1)
    classes = list(range(k))
    p, r, f, s = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=TOL)
    np.testing.assert_allclose(got["precision"]["per_class"], p, atol=TOL)
    np.testing.assert_allclose(got["recall"]["per_class"], r, atol=TOL)
    np.testing.assert_allclose(got["f1"]["per_class"], f, atol=TOL)
    assert got["precision"]["per_class"][4] == 0 and got["recall"]["per_class"][5] == 0
    for average in ("macro", "weighted"):
        want = precision_recall_fscore_support(
            labels, predicted, labels=classes, average=average, zero_division=0
        )
        assert got["precision"][average] == pytest.approx(want[0], abs=TOL)
        assert got["recall"][average] == pytest.approx(want[1], abs=TOL)
        assert got["f1"][average] == pytest.approx(want[2], abs=TOL)
    assert got["confusion_matrix"] == confusion_matrix(labels, predicted, labels=classes).tolist()
    assert got["support"] == s.tolist()


def test_multiclass_from_label_output_and_one_hot_labels() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 500)
    predicted = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 3, 500)).astype(np.int64)
    one_hot = np.eye(3, dtype=np.float32)[truth]
    got = fold(EvaluationSettings("evaluation"), predicted, one_hot).result()
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert got["confusion_matrix"] == confusion_matrix(truth, predicted).tolist()


def test_multiclass_single_sigmoid_column_uses_the_threshold() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((400, 1)).astype(np.float32)
    truth = (rng.random(400) < scores[:, 0]).astype(np.int64)
    got = fold(EvaluationSettings("evaluation", threshold=0.3), scores, truth).result()
    predicted = (scores[:, 0] >= 0.3).astype(int)
    assert got["confusion_matrix"] == confusion_matrix(truth, predicted, labels=[0, 1]).tolist()


def test_binary_per_column_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    scores = rng.random((2000, 3)).astype(np.float32)
    labels = (rng.random((2000, 3)) < scores).astype(np.float32)
    labels[:, 2] = 0  # a column without positives: precision and recall 0, not NaN
    threshold = 0.6
    got = fold(EvaluationSettings("evaluationbinary", threshold=threshold), scores, labels).result()
    predicted = scores >= threshold
    for c in range(3):
        p, r, f, _ = precision_recall_fscore_support(
            labels[:, c], predicted[:, c], average="binary", zero_division=0
        )
        assert got["precision"][c] == pytest.approx(p, abs=TOL)
        assert got["recall"][c] == pytest.approx(r, abs=TOL)
        assert got["f1"][c] == pytest.approx(f, abs=TOL)
        assert got["accuracy"][c] == pytest.approx(accuracy_score(labels[:, c], predicted[:, c]))
    assert got["threshold"] == threshold


def test_roc_two_column_softmax_and_one_hot_labels() -> None:
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((5000, 2))
    truth = (rng.random(5000) < 1 / (1 + np.exp(-(logits[:, 1] - logits[:, 0])))).astype(int)
    probabilities = softmax(logits)
    got = fold(EvaluationSettings("roc"), probabilities, np.eye(2)[truth]).result()
    assert got["auc"] == pytest.approx(roc_auc_score(truth, probabilities[:, 1]), abs=1e-12)
    assert got["auc_error_bound"] == 0.0
    curve = got["curve"]
    assert curve["fpr"][0] == 0 and curve["tpr"][-1] == 1 and curve["fpr"][-1] == 1
    assert curve["thresholds"][0] is None


def test_roc_on_logits_with_ties_and_negative_scores() -> None:
    rng = np.random.default_rng(6)
    scores = np.round(rng.standard_normal(4000) * 3, 1).astype(np.float32)  # many ties
    truth = (rng.random(4000) < 1 / (1 + np.exp(-scores))).astype(int)
    got = fold(EvaluationSettings("roc"), scores, truth).result()
    assert got["auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)


def test_rocbinary_per_column() -> None:
    rng = np.random.default_rng(7)
    scores = rng.random((3000, 4)).astype(np.float32)
    labels = (rng.random((3000, 4)) < scores**2).astype(int)
    got = fold(EvaluationSettings("rocbinary"), scores, labels).result()
    for c in range(4):
        assert got["auc"][c] == pytest.approx(roc_auc_score(labels[:, c], scores[:, c]), abs=1e-12)


def test_rocmulticlass_one_vs_all_and_macro() -> None:
    rng = np.random.default_rng(8)
    n, k = 6000, 5
    truth = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k)) * 2
    logits[np.arange(n), truth] += 1.5
    probabilities = softmax(logits)
    got = fold(EvaluationSettings("rocmulticlass"), probabilities, truth).result()
    want = [roc_auc_score(truth == c, probabilities[:, c]) for c in range(k)]
    np.testing.assert_allclose(got["auc"], want, atol=1e-12)
    macro = roc_auc_score(truth, probabilities, multi_class="ovr", average="macro")
    assert got["macro_auc"] == pytest.approx(macro, abs=1e-12)


def test_rocmulticlass_class_never_present_has_no_auc() -> None:
    probabilities = softmax(np.random.default_rng(9).standard_normal((100, 3)))
    truth = np.arange(100) % 2
    got = fold(EvaluationSettings("rocmulticlass"), probabilities, truth).result()
    assert got["auc"][2] is None
    assert got["macro_auc"] == pytest.approx(np.mean(got["auc"][:2]))


def test_regression_per_column() -> None:
    rng = np.random.default_rng(10)
    truth = rng.standard_normal((2500, 3)) * [1, 100, 1e-3] + [0, 1e6, 5]
    predicted = truth + rng.standard_normal((2500, 3)) * [0.5, 10, 1e-3]
    got = fold(EvaluationSettings("regression"), predicted, truth).result()
    np.testing.assert_allclose(
        got["mse"], mean_squared_error(truth, predicted, multioutput="raw_values"), rtol=1e-9
    )
    np.testing.assert_allclose(
        got["mae"], mean_absolute_error(truth, predicted, multioutput="raw_values"), rtol=1e-9
    )
    np.testing.assert_allclose(
        got["rmse"], np.sqrt(mean_squared_error(truth, predicted, multioutput="raw_values"))
    )
    np.testing.assert_allclose(
        got["r2"], r2_score(truth, predicted, multioutput="raw_values"), rtol=1e-7
    )


def test_regression_constant_labels_follow_sklearn() -> None:
    truth = np.ones((10, 2))
    predicted = np.stack([np.ones(10), np.arange(10.0)], axis=1)
    got = fold(EvaluationSettings("regression"), predicted, truth, parts=3).result()
    assert got["r2"] == r2_score(truth, predicted, multioutput="raw_values").tolist()


@pytest.mark.parametrize(
    "kind", ["evaluation", "evaluationbinary", "roc", "rocbinary", "rocmulticlass", "regression"]
)
def test_merge_is_associative_and_commutative(kind: str) -> None:
    rng = np.random.default_rng(11)
    scores = softmax(rng.standard_normal((900, 3)))
    if kind in ("evaluation", "rocmulticlass"):
        labels: Any = rng.integers(0, 3, 900)
    elif kind == "roc":
        scores, labels = scores[:, :2], rng.integers(0, 2, 900)
    elif kind == "regression":
        labels = rng.standard_normal((900, 3))
    else:
        labels = rng.integers(0, 2, (900, 3))
    settings = EvaluationSettings(kind)
    parts = []
    for idx in np.array_split(np.arange(900), 3):
        state = new_state(settings)
        state.update(scores[idx], labels[idx])
        parts.append(state.to_bytes())
    a, b, c = parts
    left = merge_serialized(merge_serialized(a, b), c)
    right = merge_serialized(a, merge_serialized(c, b))
    assert left is not None and right is not None
    one = new_state(settings)
    one.update(scores, labels)
    for merged in (left, right):
        got, want = state_from_bytes(merged).result(), one.result()
        assert _close(got, want), (got, want)


def _close(got: Any, want: Any) -> bool:
    if isinstance(got, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in got)
    if isinstance(got, list):
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(got, float) and isinstance(want, float):
        return bool(abs(got - want) <= 1e-9 * max(1.0, abs(want)))
    return bool(got == want)


def test_score_keys_keep_order_and_distinctness() -> None:
    rng = np.random.default_rng(12)
    special = np.float32([0.0, -0.0, 0.5, 1.0, -1.0, 2.0, 1e-30, 1 - 2**-24, np.inf, -np.inf])
    scores = np.concatenate(
        [rng.standard_normal(5000).astype(np.float32), rng.random(5000).astype(np.float32), special]
    )
    keys = score_keys(scores)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(keys[order].astype(np.float64)) >= 0)
    assert np.all((np.diff(keys[order]) == 0) == (np.diff(scores[order]) == 0))
    np.testing.assert_array_equal(key_lower_score(keys, 0), scores.astype(np.float64) + 0.0)
    with pytest.raises(ModelError, match="NaN"):
        score_keys(np.float32([0.1, np.nan]))


def test_auc_error_bound_holds_when_bins_merge() -> None:
    """With few bins (forced), |AUC - sklearn| stays within the reported bound."""
    rng = np.random.default_rng(13)
    for max_bins, n in ((64, 20000), (1024, 50000), (4096, 200000)):
        scores = rng.beta(0.3, 0.3, n).astype(np.float32)  # clustered at both ends
        truth = rng.random(n) < scores
        histogram = ScoreHistogram(max_bins)
        for chunk in np.array_split(np.arange(n), 7):
            histogram.update(scores[chunk], truth[chunk])
        assert histogram.shift > 0 and len(histogram.keys) <= max_bins
        exact = roc_auc_score(truth, scores)
        auc = histogram.auc()
        assert auc is not None
        assert abs(auc - exact) <= histogram.auc_error_bound() + 1e-12


def test_default_bins_are_within_1e4_on_two_million_distinct_scores() -> None:
    """More distinct scores than the default bins: the bound, and the error, stay below 1e-4."""
    rng = np.random.default_rng(14)
    n = 2_000_000
    scores = np.concatenate([rng.random(n // 2), rng.beta(0.05, 0.05, n // 2)]).astype(np.float32)
    truth = rng.random(n) < scores
    states = []
    for chunk in np.array_split(np.arange(n), 4):
        histogram = ScoreHistogram()
        histogram.update(scores[chunk], truth[chunk])
        states.append(histogram)
    merged = functools.reduce(lambda a, b: a.merge(b), states)
    assert merged.shift > 0, "the test must exercise merged bins"
    auc = merged.auc()
    assert auc is not None
    bound = merged.auc_error_bound()
    assert bound < 1e-4
    assert abs(auc - roc_auc_score(truth, scores)) <= bound


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidValueError, match="Unknown eval type 'auc'"):
        EvaluationSettings("auc")
    with pytest.raises(InvalidValueError, match="threshold"):
        EvaluationSettings("evaluationbinary", threshold=2)
    with pytest.raises(InvalidValueError, match="Unknown evaluation setting 'colour'"):
        EvaluationSettings.from_dict({"eval_type": "roc", "colour": "red"})
    settings = EvaluationSettings.from_dict({"eval_type": "roc", "threshold": "0.25"})
    assert settings.threshold == 0.25 and settings.to_dict()["label_column"] == "label"


def test_shape_errors_name_the_fix() -> None:
    with pytest.raises(ModelError, match="rocmulticlass"):
        new_state(EvaluationSettings("roc")).update(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ModelError, match="one label per row"):
        new_state(EvaluationSettings("evaluation")).update(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ModelError, match="whole numbers"):
        new_state(EvaluationSettings("evaluation")).update(np.zeros((2, 4)), np.array([0.5, 1]))
    with pytest.raises(ModelError, match=r"labels must be 0\.\.2"):
        new_state(EvaluationSettings("rocmulticlass")).update(np.zeros((2, 3)), np.array([0, 3]))


def test_skil_context_evaluate_checks_before_submitting(skil_home: Any) -> None:
    with pytest.raises(InvalidValueError, match="Unknown eval type 'auc'"):
        SkilContext().evaluate(None, "m-1", "mnist", "auc")
    with pytest.raises(NotFoundError, match="No model 'm-1'"):
        SkilContext().evaluate(None, "m-1", "mnist", "roc", threshold=0.3, path="x")
