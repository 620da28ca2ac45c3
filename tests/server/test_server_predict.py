"""Predict and classify over HTTP equal onnxruntime run directly (JSON and Arrow)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest
from _model_fixtures import (
    fixed_batch_nchw_model,
    iris_data,
    mlp_model,
    multi_io_model,
    sklearn_classifier_model,
    small_mlp_model,
)
from _server_helpers import BACKSTOP_S, assert_error

from skil_sdk.server.codec import ARROW_STREAM
from skil_sdk.store.models import add_model


def direct(path: Path, feeds: dict[str, np.ndarray]) -> list[Any]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def arrow_body(columns: dict[str, np.ndarray]) -> bytes:
    arrays = []
    for values in columns.values():
        flat = pa.array(values.reshape(-1))
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, values.shape[1]))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_arrow(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.BufferReader(body)).read_all()


def test_mlp_json_and_arrow_equal_onnxruntime(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(mlp_model(tmp_path), "exp")
    rows = np.random.default_rng(0).random((32, 784), dtype=np.float32)
    (expected,) = direct(record.path, {"input": rows})

    as_json = client.post(f"/models/{record.id}/predict", json={"instances": rows.tolist()})
    assert as_json.status_code == 200, as_json.text
    np.testing.assert_allclose(np.array(as_json.json()["outputs"]["output"]), expected, rtol=1e-5)

    as_arrow = client.post(
        f"/models/{record.id}/predict",
        content=arrow_body({"input": rows}),
        headers={"Content-Type": ARROW_STREAM},
    )
    assert as_arrow.headers["content-type"] == ARROW_STREAM
    table = read_arrow(as_arrow.content)
    got = np.array(table.column("output").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_multi_input_json_and_arrow(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(multi_io_model(tmp_path), "exp")
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = np.arange(8, dtype=np.int64).reshape(4, 2)
    scaled, total = direct(record.path, {"a": a, "b": b})
    response = client.post(
        f"/models/{record.id}/predict", json={"inputs": {"a": a.tolist(), "b": b.tolist()}}
    )
    outputs = response.json()["outputs"]
    np.testing.assert_allclose(outputs["scaled"], scaled)
    np.testing.assert_allclose(outputs["total"], total)
    per_row = client.post(
        f"/models/{record.id}/predict",
        json={"instances": [{"a": x.tolist(), "b": y.tolist()} for x, y in zip(a, b, strict=True)]},
    )
    assert per_row.json()["outputs"] == outputs

    as_arrow = client.post(
        f"/models/{record.id}/predict",
        content=arrow_body({"a": a, "b": b}),
        headers={"Content-Type": ARROW_STREAM, "Accept": ARROW_STREAM},
    )
    table = read_arrow(as_arrow.content)
    np.testing.assert_allclose(np.array(table.column("scaled").to_pylist()), scaled)
    np.testing.assert_allclose(np.array(table.column("total").to_pylist()), total)


def test_sklearn_classifier_predict_and_classify(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(sklearn_classifier_model(tmp_path), "iris")
    features, _ = iris_data()
    rows = features[::15]
    labels, probabilities = direct(record.path, {"X": rows})
    outputs = client.post(f"/models/{record.id}/predict", json={"instances": rows.tolist()})
    body = outputs.json()["outputs"]
    assert body["output_label"] == labels.tolist()
    for got, want in zip(body["output_probability"], probabilities, strict=True):
        assert {int(k): v for k, v in got.items()} == pytest.approx(want)

    as_arrow = client.post(
        f"/models/{record.id}/predict",
        content=arrow_body({"X": rows}),
        headers={"Content-Type": ARROW_STREAM},
    )
    table = read_arrow(as_arrow.content)
    assert table.column("output_label").to_pylist() == labels.tolist()
    assert dict(table.column("output_probability").to_pylist()[0]) == pytest.approx(
        probabilities[0]
    )

    predictions = client.post(
        f"/models/{record.id}/classify", json={"instances": rows.tolist()}
    ).json()["predictions"]
    assert [p["label"] for p in predictions] == labels.tolist()
    for p, want in zip(predictions, probabilities, strict=True):
        assert p["probability"] == pytest.approx(want[p["label"]])


def test_classify_scores_model_gives_argmax_and_softmax(
    client: httpx.Client, tmp_path: Path
) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    rows = np.random.default_rng(1).random((5, 4), dtype=np.float32)
    (scores,) = direct(record.path, {"input": rows})
    predictions = client.post(
        f"/models/{record.id}/classify", json={"instances": rows.tolist()}
    ).json()["predictions"]
    soft = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert [p["label"] for p in predictions] == scores.argmax(axis=1).tolist()
    assert [p["probability"] for p in predictions] == pytest.approx(soft.max(axis=1).tolist())


def test_fixed_batch_nchw_model_takes_flat_rows(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(fixed_batch_nchw_model(tmp_path), "exp")
    rows = np.random.default_rng(2).random((3, 784), dtype=np.float32)
    expected = np.concatenate(
        [direct(record.path, {"image": r.reshape(1, 1, 28, 28)})[0] for r in rows]
    )
    with pytest.warns(RuntimeWarning):
        response = client.post(f"/models/{record.id}/predict", json={"instances": rows.tolist()})
    np.testing.assert_allclose(np.array(response.json()["outputs"]["scores"]), expected, rtol=1e-5)


def test_wrong_shape_is_a_400_naming_the_expected_shape(
    client: httpx.Client, tmp_path: Path
) -> None:
    record = add_model(mlp_model(tmp_path), "exp")
    response = client.post(f"/models/{record.id}/predict", json={"instances": [[1.0, 2.0]]})
    message = assert_error(response, 400)
    assert "784" in message and "[N, 784]" in message and "2 values" in message
    ragged = client.post(f"/models/{record.id}/predict", json={"instances": [[1.0], [1.0, 2.0]]})
    assert "[N, 784]" in assert_error(ragged, 400)
    arrow = client.post(
        f"/models/{record.id}/predict",
        content=arrow_body({"input": np.zeros((2, 3), dtype=np.float32)}),
        headers={"Content-Type": ARROW_STREAM},
    )
    assert "[N, 784]" in assert_error(arrow, 400)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"instances": []}', "application/json"),
        (b'{"instances": [[1]], "inputs": {}}', "application/json"),
        (b'{"inputs": {"input": [[1, 2, 3, 4]], "extra": [[1]]}}', "application/json"),
        (b"\x00\x01", ARROW_STREAM),
        (b"a,b", "text/csv"),
    ],
)
def test_bad_predict_bodies_are_4xx_in_the_error_shape(
    client: httpx.Client, tmp_path: Path, body: bytes, content_type: str
) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    response = client.post(
        f"/models/{record.id}/predict", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in (400, 415)
    assert_error(response, response.status_code)


def test_too_many_rows_is_a_413(client: httpx.Client, tmp_path: Path) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp")
    response = client.post(
        f"/models/{record.id}/predict", json={"instances": [[0, 0, 0, 0]] * 2049}
    )
    assert "2048" in assert_error(response, 413, "too_large")


def test_predict_past_the_timeout_is_a_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model run is held until the answer has come, so it is past any timeout."""
    from skil_sdk.inference import runner as runner_module
    from skil_sdk.server.config import ServerConfig
    from skil_sdk.server.embedded import EmbeddedServer

    answered = threading.Event()
    real_get_runner = runner_module.get_runner

    class HeldRunner:
        def __init__(self, runner: Any) -> None:
            self._runner = runner
            self.input_names = runner.input_names
            self.signature = runner.signature

        def run(self, features: Any) -> Any:
            answered.wait(BACKSTOP_S)
            return self._runner.run(features)

    def held_get_runner(*args: Any, **kwargs: Any) -> HeldRunner:
        return HeldRunner(real_get_runner(*args, **kwargs))

    monkeypatch.setattr(runner_module, "get_runner", held_get_runner)
    record = add_model(small_mlp_model(tmp_path), "exp")
    with EmbeddedServer(config=ServerConfig(auth=False, request_timeout=0.5)) as server:
        try:
            response = httpx.post(
                f"{server.url}/models/{record.id}/predict",
                json={"instances": [[0.0, 1.0, 2.0, 3.0]]},
                timeout=BACKSTOP_S,
            )
        finally:
            answered.set()
    assert "--request-timeout" in assert_error(response, 503, "timeout")
    assert "0.5 s" in response.json()["error"]["message"]


def test_nested_arrow_rows_keep_their_shape(client: httpx.Client, tmp_path: Path) -> None:
    """An Arrow column of nested lists (rows already shaped) feeds a rank-3 input."""
    from _model_fixtures import two_rank_model

    record = add_model(two_rank_model(tmp_path), "exp")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((5, 2, 3)).astype(np.float32)
    (expected,) = direct(record.path, {"a": a, "b": b})
    table = pa.table({
        "a": pa.array(a.tolist(), pa.list_(pa.float32())),
        "b": pa.array(b.tolist(), pa.list_(pa.list_(pa.float32()))),
    })
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    response = client.post(
        f"/models/{record.id}/predict",
        content=sink.getvalue().to_pybytes(),
        headers={"Content-Type": ARROW_STREAM},
    )
    assert response.status_code == 200, response.text
    got = np.array(read_arrow(response.content).column("out").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    ragged = pa.table({
        "a": pa.array([[1.0] * 4, [1.0] * 3], pa.list_(pa.float32())),
        "b": pa.array([[[1.0] * 3] * 2] * 2, pa.list_(pa.list_(pa.float32()))),
    })
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ragged.schema) as writer:
        writer.write_table(ragged)
    message = assert_error(
        client.post(
            f"/models/{record.id}/predict",
            content=sink.getvalue().to_pybytes(),
            headers={"Content-Type": ARROW_STREAM},
        ),
        400,
        "invalid_model",
    )
    assert "expects 4 values per row" in message and "got rows of 3 values" in message


def test_rows_of_different_shapes_run_in_order(client: httpx.Client, tmp_path: Path) -> None:
    """Images of two widths in one request: runs of one shape, outputs back in row order
    (the [N, W, 5] output row by row, since W differs)."""
    from _model_fixtures import recognizer_model

    record = add_model(recognizer_model(tmp_path), "exp")
    rng = np.random.default_rng(5)
    rows = [rng.standard_normal((3, 8, w)).astype(np.float32) for w in (7, 7, 4, 7)]
    expected = [direct(record.path, {"x": r[None]})[0][0] for r in rows]

    as_json = client.post(
        f"/models/{record.id}/predict", json={"instances": [r.tolist() for r in rows]}
    )
    assert as_json.status_code == 200, as_json.text
    got = as_json.json()["outputs"]["logits"]
    assert [np.asarray(g).shape for g in got] == [(7, 5), (7, 5), (4, 5), (7, 5)]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-5, atol=1e-6)

    table = pa.table({"x": pa.array([r.tolist() for r in rows],
                                    pa.list_(pa.list_(pa.list_(pa.float32()))))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    as_arrow = client.post(f"/models/{record.id}/predict", content=sink.getvalue().to_pybytes(),
                           headers={"Content-Type": ARROW_STREAM})
    assert as_arrow.status_code == 200, as_arrow.text
    logits = read_arrow(as_arrow.content).column("logits").to_pylist()
    for g, e in zip(logits, expected, strict=True):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-5, atol=1e-6)
