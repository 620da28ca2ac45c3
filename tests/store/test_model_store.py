"""The model store: add, content addressing, external data, verify, remove; the CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from _model_fixtures import (
    external_data_model,
    not_onnx_file,
    sklearn_classifier_model,
    small_mlp_model,
    truncated_model,
    unsupported_op_model,
)
from click.testing import CliRunner

from skil_sdk.cli.main import main
from skil_sdk.errors import IntegrityError, InvalidValueError, ModelError, NotFoundError
from skil_sdk.store.models import (
    add_model,
    get_model,
    list_experiments,
    list_models,
    remove_model,
    verify_model,
)


def test_add_records_signature_and_sha256(tmp_path: Path, skil_home: Path) -> None:
    record = add_model(small_mlp_model(tmp_path), "exp", name="My Model")
    assert re.fullmatch(r"my-model-[0-9a-f]{12}", record.id)
    assert record.path == skil_home / "models" / record.id / "model.onnx"
    assert record.sha256.startswith(record.id[-12:])
    assert record.files == [
        {"name": "model.onnx", "sha256": record.sha256, "size": record.path.stat().st_size}
    ]
    assert record.signature["inputs"] == [
        {"name": "input", "type": "float32", "shape": ["N", 4], "kind": "tensor"}
    ]
    assert get_model(record.id).to_dict() == record.to_dict()
    assert verify_model(record.id).id == record.id


def test_same_bytes_give_the_same_model(tmp_path: Path) -> None:
    first = add_model(small_mlp_model(tmp_path / "a"), "exp")
    again = add_model(small_mlp_model(tmp_path / "b", name="renamed.onnx"), "other", name="x")
    assert again.id == first.id
    assert [m.id for m in list_models()] == [first.id]


def test_zipmap_signature(tmp_path: Path) -> None:
    record = add_model(sklearn_classifier_model(tmp_path), "iris")
    kinds = {o["name"]: o["kind"] for o in record.signature["outputs"]}
    assert kinds == {"output_label": "tensor", "output_probability": "seq(map(int64,float))"}
    assert record.signature["inputs"][0]["shape"] == [None, 4]


def test_external_data_is_stored_and_verified(tmp_path: Path) -> None:
    record = add_model(external_data_model(tmp_path), "exp")
    assert [f["name"] for f in record.files] == ["model.onnx", "ext.weights"]
    assert (record.path.parent / "ext.weights").is_file()
    (record.path.parent / "ext.weights").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"ext\.weights"):
        verify_model(record.id)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (not_onnx_file, "not an ONNX model"),
        (truncated_model, "ONNX model"),
        (unsupported_op_model, "onnxruntime"),
    ],
)
def test_bad_models_are_refused_and_nothing_is_stored(
    tmp_path: Path, skil_home: Path, make: object, expected: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ModelError, match=expected):
        add_model(path, "exp")
    assert list_models() == []
    assert not [p for p in (skil_home / "models").iterdir() if not p.name.endswith(".lock")]


def test_ids_cannot_leave_the_store() -> None:
    for bad in ("../x", "a/b", "..", "A-Upper", "", "-x", "x" * 200):
        with pytest.raises(InvalidValueError):
            get_model(bad)
    with pytest.raises(NotFoundError, match="skil-sdk models list"):
        get_model("nope-000000000000")


def test_remove_and_experiments(tmp_path: Path) -> None:
    a = add_model(small_mlp_model(tmp_path / "a", seed=1), "exp-a")
    b = add_model(small_mlp_model(tmp_path / "b", seed=2), "exp-b")
    assert [e["name"] for e in list_experiments()] == ["exp-a", "exp-b"]
    assert remove_model(a.id).id == a.id
    assert [m.id for m in list_models()] == [b.id]
    with pytest.raises(NotFoundError):
        remove_model(a.id)


def test_cli_add_list_show_remove_experiments(tmp_path: Path) -> None:
    runner = CliRunner()
    model = small_mlp_model(tmp_path)
    added = runner.invoke(main, ["models", "add", str(model), "--experiment", "e1", "--json"])
    assert added.exit_code == 0, added.output
    model_id = json.loads(added.stdout)["id"]
    plain = runner.invoke(main, ["models", "add", str(model), "--experiment", "e1"])
    assert plain.stdout.strip() == model_id
    listed = json.loads(runner.invoke(main, ["models", "list", "--json"]).stdout)
    assert [m["id"] for m in listed] == [model_id]
    assert model_id in runner.invoke(main, ["models", "list"]).stdout
    shown = json.loads(runner.invoke(main, ["models", "show", model_id, "--json"]).stdout)
    assert shown["signature"]["outputs"][0]["name"] == "output"
    assert "sha256" in runner.invoke(main, ["models", "show", model_id]).stdout
    experiments = json.loads(runner.invoke(main, ["experiments", "list", "--json"]).stdout)
    assert experiments == [{"name": "e1", "models": 1, "model_ids": [model_id]}]
    removed = runner.invoke(main, ["models", "remove", model_id, "--json"])
    assert json.loads(removed.stdout) == {"removed": model_id}


def test_cli_errors_exit_1_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    args = ["models", "add", str(not_onnx_file(tmp_path)), "--experiment", "e", "--json"]
    monkeypatch.setattr(sys, "argv", ["skil-sdk", *args])
    bad = runner.invoke(main, args)
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["error"]["code"] == "invalid_model"
    missing = runner.invoke(main, ["models", "show", "nope-000000000000"])
    assert missing.exit_code == 1 and "skil-sdk models list" in missing.output
    assert runner.invoke(main, ["models", "add", str(tmp_path / "x.onnx")]).exit_code == 2


def test_input_shapes_that_fit_the_model_are_recorded(tmp_path: Path) -> None:
    model = small_mlp_model(tmp_path)  # input [N, 4]
    shapes = {"input": [4], "absent": [3]}
    record = add_model(model, "exp", input_shapes=shapes, source="models:/small/1")
    assert (record.input_shapes, record.source) == ({"input": [4]}, "models:/small/1")
    assert get_model(record.id).to_dict()["input_shapes"] == {"input": [4]}
    for seed, wrong in ((3, [5]), (4, [2, 2])):  # a fixed dim changed, another rank
        other = small_mlp_model(tmp_path / str(seed), seed=seed)
        assert add_model(other, "exp", input_shapes={"input": wrong}).input_shapes == {}
    with pytest.raises(InvalidValueError, match="positive dims"):
        add_model(model, "exp", input_shapes={"input": [0]})
    assert add_model(model, "exp").source == "models:/small/1"  # the first add's record
