"""Evaluation jobs on the session SparkSession (local[2], several partitions) against sklearn.

Every job's metrics are compared with scikit-learn on the same labels and on the
predictions of onnxruntime run directly on the same rows.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import _model_fixtures as models
import numpy as np
import pytest
from _eval_providers import LabelledPairsProvider, LabelledRowsProvider
from onnx import TensorProto, helper, numpy_helper
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)

from skil_sdk import SkilContext, SparkArgs
from skil_sdk.errors import InvalidValueError
from skil_sdk.spark.submit import InferenceRequest, submit

pytestmark = pytest.mark.slow
ROWS = 600


def run_onnxruntime(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The model run directly by onnxruntime (the reference)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def sigmoid_model(directory: Path, outputs: int, seed: int = 3) -> Path:
    """``input [N, 4] -> prob [N, outputs]`` = sigmoid(x W + b)."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((4, outputs)).astype(np.float32)
    bias = (rng.standard_normal(outputs) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["prob"]),
        ],
        "sigmoid",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", outputs])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return models._save(models._model(graph), directory / f"sigmoid{outputs}.onnx")


def features(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((ROWS, 4)).astype(np.float32)


def register_rows(key: str, x: np.ndarray, labels: np.ndarray, label_type: str) -> None:
    rows = [(i, x[i].tolist(), labels[i].tolist()) for i in range(len(x))]
    LabelledRowsProvider.builders[key] = lambda s: s.createDataFrame(
        rows, f"id bigint, features array<float>, label {label_type}"
    ).repartition(4)


def evaluate(spark: Any, model: Path, provider: str, eval_type: str, **kw: Any) -> Any:
    model_id = SkilContext().add_model_to_experiment(model, "eval")
    settings = {"eval_type": eval_type, **kw.pop("settings", {})}
    request = InferenceRequest(
        model_id=model_id,
        provider=provider,
        output=str(kw.pop("output", "")),
        spark_args=SparkArgs(master="local[2]"),
        provider_options=kw.pop("options", {}),
        batch_size=kw.pop("batch_size", 64),
        kind="evaluate",
        evaluation=settings,
    )
    result = submit(request, spark=spark)
    assert result.state == "SUCCEEDED"
    return result


def test_evaluation_multiclass_from_dataframe_and_output_file(
    spark: Any, tmp_path: Path, built_bundle: Any
) -> None:
    model = models.small_mlp_model(tmp_path)
    x = features(1)
    predicted = run_onnxruntime(model, {"input": x})["output"].argmax(axis=1)
    rng = np.random.default_rng(1)
    truth = np.where(
        rng.random(ROWS) < 0.6, predicted, rng.integers(0, 4, ROWS)
    )  # 3: never predicted
    register_rows("multi", x, truth, "bigint")
    out = tmp_path / "metrics" / "eval.json"

    result = evaluate(
        spark,
        model,
        "_eval_providers:LabelledRowsProvider",
        "evaluation",
        options={"key": "multi"},
        output=out,
    )

    got = result.metrics
    classes = list(range(4))
    assert result.rows == ROWS and got["rows"] == ROWS
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    p, r, f, _ = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0)
    np.testing.assert_allclose(got["precision"]["per_class"], p, atol=1e-12)
    np.testing.assert_allclose(got["recall"]["per_class"], r, atol=1e-12)
    np.testing.assert_allclose(got["f1"]["per_class"], f, atol=1e-12)
    for average in ("macro", "weighted"):
        want = precision_recall_fscore_support(
            truth, predicted, labels=classes, average=average, zero_division=0
        )
        assert [got[k][average] for k in ("precision", "recall", "f1")] == pytest.approx(
            want[:3], abs=1e-12
        )
    assert got["confusion_matrix"] == confusion_matrix(truth, predicted, labels=classes).tolist()
    written = json.loads(out.read_text())
    assert written["accuracy"] == got["accuracy"] and written["job"]["job_id"] == result.job_id
    job = SkilContext().job(result.job_id)
    assert job["state"] == "SUCCEEDED" and job["details"]["metrics"]["accuracy"] == got["accuracy"]
    assert {e["bundle_hash"] for e in result_executors(job)} == {built_bundle.hash[:12]}


def result_executors(job: dict[str, Any]) -> list[dict[str, Any]]:
    assert job["executors"], "each executor process reports a record"
    return list(job["executors"])


def test_evaluationbinary_and_rocbinary_per_column(spark: Any, tmp_path: Path) -> None:
    model = sigmoid_model(tmp_path, 3)
    x = features(2)
    scores = run_onnxruntime(model, {"input": x})["prob"]
    truth = (np.random.default_rng(2).random((ROWS, 3)) < scores).astype(np.int64)
    register_rows("binary", x, truth, "array<bigint>")
    provider = "_eval_providers:LabelledRowsProvider"

    binary = evaluate(
        spark,
        model,
        provider,
        "evaluationbinary",
        options={"key": "binary"},
        settings={"threshold": 0.4},
    ).metrics
    roc = evaluate(spark, model, provider, "rocbinary", options={"key": "binary"}).metrics

    for c in range(3):
        p, r, f, _ = precision_recall_fscore_support(
            truth[:, c], scores[:, c] >= 0.4, average="binary", zero_division=0
        )
        assert [binary["precision"][c], binary["recall"][c], binary["f1"][c]] == pytest.approx(
            [p, r, f], abs=1e-12
        )
        assert binary["accuracy"][c] == pytest.approx(
            accuracy_score(truth[:, c], scores[:, c] >= 0.4)
        )
        assert roc["auc"][c] == pytest.approx(roc_auc_score(truth[:, c], scores[:, c]), abs=1e-4)
        assert roc["auc_error_bound"][c] == 0.0


def test_roc_from_labelled_pairs(spark: Any, tmp_path: Path) -> None:
    model = sigmoid_model(tmp_path, 1, seed=5)
    x = features(3)
    scores = run_onnxruntime(model, {"input": x})["prob"][:, 0]
    truth = (np.random.default_rng(3).random(ROWS) < scores).astype(np.int64)
    LabelledPairsProvider.pairs["roc"] = [(i, (x[i], int(truth[i]))) for i in range(ROWS)]

    got = evaluate(
        spark, model, "_eval_providers:LabelledPairsProvider", "roc", options={"key": "roc"}
    ).metrics

    assert got["auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-4)
    assert got["positives"] == int(truth.sum()) and got["negatives"] == ROWS - int(truth.sum())
    assert got["curve"]["tpr"][-1] == 1.0


def test_rocmulticlass_per_class_and_macro(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path, seed=4)
    x = features(4)
    scores = run_onnxruntime(model, {"input": x})["output"]
    rng = np.random.default_rng(4)
    truth = np.where(rng.random(ROWS) < 0.5, scores.argmax(axis=1), rng.integers(0, 3, ROWS))
    register_rows("ovr", x, truth, "int")

    got = evaluate(
        spark,
        model,
        "_eval_providers:LabelledRowsProvider",
        "rocmulticlass",
        options={"key": "ovr"},
    ).metrics

    want = [roc_auc_score(truth == c, scores[:, c]) for c in range(3)]
    np.testing.assert_allclose(got["auc"], want, atol=1e-4)
    assert got["macro_auc"] == pytest.approx(float(np.mean(want)), abs=1e-4)


def test_regression_from_labelled_pairs(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path, seed=6)
    x = features(5)
    predicted = run_onnxruntime(model, {"input": x})["output"].astype(np.float64)
    truth = predicted + np.random.default_rng(5).standard_normal((ROWS, 3))
    LabelledPairsProvider.pairs["reg"] = [(i, (x[i], truth[i])) for i in range(ROWS)]

    got = evaluate(
        spark,
        model,
        "_eval_providers:LabelledPairsProvider",
        "regression",
        options={"key": "reg"},
    ).metrics

    mse = mean_squared_error(truth, predicted, multioutput="raw_values")
    np.testing.assert_allclose(got["mse"], mse, rtol=1e-6)
    np.testing.assert_allclose(got["rmse"], np.sqrt(mse), rtol=1e-6)
    np.testing.assert_allclose(
        got["mae"], mean_absolute_error(truth, predicted, multioutput="raw_values"), rtol=1e-6
    )
    np.testing.assert_allclose(
        got["r2"], r2_score(truth, predicted, multioutput="raw_values"), rtol=1e-6
    )


def write_idx(directory: Path, images: np.ndarray, labels: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    n = len(images)
    (directory / "t10k-images-idx3-ubyte").write_bytes(
        struct.pack(">iiii", 2051, n, 28, 28) + images.astype(np.uint8).tobytes()
    )
    (directory / "t10k-labels-idx1-ubyte").write_bytes(
        struct.pack(">ii", 2049, n) + labels.astype(np.uint8).tobytes()
    )


def test_mnist_labels_from_the_idx_file(spark: Any, tmp_path: Path) -> None:
    model = models.mlp_model(tmp_path, (784, 16, 10), seed=7, name="digits.onnx")
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (45, 784))
    labels = rng.integers(0, 10, 45)
    write_idx(tmp_path / "mnist", images, labels)

    got = evaluate(
        spark,
        model,
        "mnist",
        "evaluation",
        options={"path": str(tmp_path / "mnist"), "records_per_split": "8"},
        batch_size=5,
    ).metrics

    pixels = (images.astype(np.float32) / 255.0).astype(np.float32)
    predicted = run_onnxruntime(model, {"input": pixels})["output"].argmax(axis=1)
    assert got["rows"] == 45
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert (
        got["confusion_matrix"]
        == confusion_matrix(labels, predicted, labels=list(range(10))).tolist()
    )


def test_missing_label_column_is_refused(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    x = features(8)
    LabelledRowsProvider.builders["nolabel"] = lambda s: s.createDataFrame(
        [(i, x[i].tolist()) for i in range(10)], "id bigint, features array<float>"
    )
    with pytest.raises(InvalidValueError, match=r"no label column 'label'.*--label-column"):
        evaluate(
            spark,
            model,
            "_eval_providers:LabelledRowsProvider",
            "evaluation",
            options={"key": "nolabel"},
        )


def test_evaluate_cli_through_spark_submit(
    built_bundle: Any, node_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`skil-sdk evaluate` end to end: spark-submit, the bundle's driver, --output and --json."""
    monkeypatch.setenv("SKIL_HOME", str(Path(built_bundle.bundle).parents[3]))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    model = models.mlp_model(tmp_path, (784, 16, 10), seed=9, name="digits.onnx")
    model_id = SkilContext().add_model_to_experiment(model, "eval-cli")
    rng = np.random.default_rng(9)
    images, labels = rng.integers(0, 256, (30, 784)), rng.integers(0, 10, 30)
    write_idx(tmp_path / "mnist", images, labels)
    out = tmp_path / "metrics.json"
    skil = str(Path(sys.executable).with_name("skil-sdk"))

    completed = subprocess.run(
        [
            skil,
            "evaluate",
            "--model",
            model_id,
            "--provider",
            "mnist",
            "--provider-option",
            f"path={tmp_path / 'mnist'}",
            "--provider-option",
            "records_per_split=10",
            "--eval-type",
            "rocmulticlass",
            "--output",
            str(out),
            "--master",
            "local[2]",
            "--engine",
            "spark",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert result["state"] == "SUCCEEDED" and result["rows"] == 30
    scores = run_onnxruntime(model, {"input": (images / 255.0).astype(np.float32)})["output"]
    want = [
        roc_auc_score(labels == c, scores[:, c]) if 0 < (labels == c).sum() < 30 else None
        for c in range(10)
    ]
    for got, expected in zip(result["metrics"]["auc"], want, strict=True):
        assert (got is None and expected is None) or got == pytest.approx(expected, abs=1e-4)
    written = json.loads(out.read_text())
    assert written["macro_auc"] == result["metrics"]["macro_auc"]
    assert written["job"]["job_id"] == result["job_id"]
    assert written["job"]["bundle_hash"] == built_bundle.hash
    listed = subprocess.run(
        [skil, "jobs", "list", "--json"], capture_output=True, text=True, timeout=120
    )
    kinds = {j["job_id"]: j["kind"] for j in json.loads(listed.stdout)}
    assert kinds[result["job_id"]] == "evaluate", "the jobs table records the job's kind"
    assert written["job"]["kind"] == "evaluate"


def test_parquet_labels_equal_scikit_learn(spark: Any, tmp_path: Path) -> None:
    """`evaluate --provider parquet --label-column label`: the label column is read on the
    executors beside the features; the metrics equal scikit-learn's on the same predictions."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from _spark_helpers import write_features_parquet
    from sklearn.metrics import f1_score, precision_score, recall_score

    model = models.small_mlp_model(tmp_path)
    x = features(21)
    labels = np.random.default_rng(21).integers(0, 3, ROWS)
    path = write_features_parquet(tmp_path / "l.parquet", np.arange(ROWS), x, 64)
    table = pq.read_table(path).append_column("label", pa.array(labels, pa.int64()))
    pq.write_table(table, path, row_group_size=64)

    result = evaluate(
        spark, model, "parquet", "evaluation", options={"path": str(path)}, batch_size=50
    )
    got = result.metrics
    predicted = run_onnxruntime(model, {"input": x})["output"].argmax(axis=1)
    assert got["rows"] == ROWS
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert got["confusion_matrix"] == confusion_matrix(labels, predicted, labels=[0, 1, 2]).tolist()
    for key, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        assert got[key]["macro"] == pytest.approx(
            fn(labels, predicted, average="macro", zero_division=0), abs=1e-9
        )
    from skil_sdk.store.jobs import JobStore

    assert JobStore().get(result.job_id).kind == "evaluate"
    with pytest.raises(InvalidValueError, match="no label column 'y'"):
        evaluate(
            spark, model, "parquet", "evaluation", options={"path": str(path)},
            settings={"label_column": "y"},
        )


def test_numpy_labels_file(spark: Any, tmp_path: Path) -> None:
    model = models.small_mlp_model(tmp_path)
    x = features(5)[:90]
    labels = np.random.default_rng(5).integers(0, 3, 90)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    got = evaluate(
        spark, model, "numpy", "evaluation",
        options={"path": str(tmp_path / "x.npy"), "labels": str(tmp_path / "y.npy"),
                 "rows_per_split": "40"},
    ).metrics
    predicted = run_onnxruntime(model, {"input": x})["output"].argmax(axis=1)
    assert got["rows"] == 90
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
