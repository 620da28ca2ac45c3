"""The ``{{ cookiecutter.name }}`` provider: its splits and batches read back from small
files, and a job on the local engine (no Spark, no JVM)."""

from __future__ import annotations

import gzip
import json
import pickle
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skil_sdk import KeyedDataSetProvider, SkilError
from {{ cookiecutter.module_name }}.provider import MIB, {{ cookiecutter.class_name }}


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def read_all(source: Any, batch_size: int = 100) -> tuple[list[Any], np.ndarray]:
    """Every split's batches, as the executors read them: the ids and the features."""
    ids: list[Any] = []
    features = []
    for split in source.splits():
        for batch_ids, batch in source.read(pickle.loads(pickle.dumps(split)), batch_size):
            assert batch.dtype == np.float32 and batch.ndim == 2
            assert len(batch_ids) == len(batch) <= batch_size
            ids += batch_ids.to_pylist()
            features.append(batch)
    return ids, np.concatenate(features)


def test_csv_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a,b\n1,0.5,1.5\n2,2,-1\n3,0,4.25\n")
    source = {{ cookiecutter.class_name }}().data(None, path=path)
    assert source.id_type() == "bigint"
    ids, features = read_all(source)
    assert ids == [1, 2, 3]
    np.testing.assert_array_equal(features, [[0.5, 1.5], [2, -1], [0, 4.25]])


def test_batches_hold_at_most_batch_size_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,x\n" + "".join(f"{i},{i / 2}\n" for i in range(10)))
    source = {{ cookiecutter.class_name }}().data(None, path=path)
    (split,) = source.splits()
    sizes = [len(ids) for ids, _features in source.read(split, 4)]
    assert sizes == [4, 4, 2]


def test_csv_feature_columns_are_picked_and_ordered(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "key,a,b,c\nx,1,2,3\ny,4,5,6\n")
    source = {{ cookiecutter.class_name }}().data(None, path=path, id="key", features="c,a")
    assert source.id_type() == "string"
    ids, features = read_all(source)
    assert ids == ["x", "y"]
    np.testing.assert_array_equal(features, [[3, 1], [6, 4]])


def test_json_lines_with_an_array_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "rows.jsonl",
        '{"id": 10, "pixels": [0, 0.5, 1]}\n\n{"id": 11, "pixels": [1, 2, 3]}\n',
    )
    ids, features = read_all({{ cookiecutter.class_name }}().data(None, path=path))
    assert ids == [10, 11]
    np.testing.assert_array_equal(features, [[0, 0.5, 1], [1, 2, 3]])


def test_json_lines_scalar_columns_in_the_given_order(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.data", '{"id": "007", "x": 1, "y": 2.5}\n')
    provider = {{ cookiecutter.class_name }}()
    ids, features = read_all(provider.data(None, path=path, format="jsonl", features="y,x"))
    assert ids == ["007"], "a JSON string id stays a string"
    np.testing.assert_array_equal(features, [[2.5, 1]])
    with pytest.raises(SkilError, match="features=x,y"):
        provider.data(None, path=path, format="jsonl")


@pytest.mark.parametrize("split_bytes", [1, 7, 64, 1000])
def test_big_files_are_read_in_byte_ranges(tmp_path: Path, split_bytes: int) -> None:
    rows = [(i, [i * 0.5] * (1 + i % 3)) for i in range(60)]  # lines of different lengths
    path = write(tmp_path / "rows.jsonl", "".join(
        json.dumps({"id": i, "x": values[:1], "pad": "-" * (i % 5)}) + "\n" for i, values in rows
    ))  # fmt: skip
    source = {{ cookiecutter.class_name }}().data(
        None, path=path, features="x", split_mb=str(split_bytes / MIB)
    )
    assert len(source.splits()) > 1
    ids, features = read_all(source, batch_size=16)
    assert ids == list(range(60)), "every line once, in order"
    np.testing.assert_array_equal(features[:, 0], [i * 0.5 for i in range(60)])


def test_csv_in_byte_ranges_has_one_header(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a\n" + "".join(f"{i},{i}\n" for i in range(50)))
    source = {{ cookiecutter.class_name }}().data(None, path=path, split_mb=str(40 / MIB))
    assert len(source.splits()) > 3
    ids, features = read_all(source)
    assert ids == list(range(50))
    np.testing.assert_array_equal(features[:, 0], range(50))


def test_compressed_files_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"id": i, "x": [i, -i]}) + "\n" for i in range(30))
    source = {{ cookiecutter.class_name }}().data(None, path=str(path), split_mb=str(10 / MIB))
    assert len(source.splits()) == 1
    ids, features = read_all(source)
    assert ids == list(range(30))
    np.testing.assert_array_equal(features, [[i, -i] for i in range(30)])


def test_a_directory_and_a_glob(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "id,x\n1,1\n2,2\n")
    write(tmp_path / "b.csv", "x,id\n3,3\n")  # columns are found by name
    write(tmp_path / ".hidden.csv", "id,x\n9,9\n")
    write(tmp_path / "_SUCCESS", "")
    provider = {{ cookiecutter.class_name }}()
    assert read_all(provider.data(None, path=str(tmp_path)))[0] == [1, 2, 3]
    assert read_all(provider.data(None, path=str(tmp_path / "b*.csv")))[0] == [3]


def test_labels_for_evaluation_jobs(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a,label,b\n1,0.5,1,2\n2,3,0,4\n")
    source = {{ cookiecutter.class_name }}().data(None, path=path)
    assert source.features == ["a", "b"], "the label is not a feature"
    assert source.has_labels("label") and not source.has_labels("nope")
    ((ids, features, labels),) = source.read_labelled(source.splits()[0], 10, "label")
    assert ids.to_pylist() == [1, 2]
    np.testing.assert_array_equal(features, [[0.5, 2], [3, 4]])
    np.testing.assert_array_equal(labels[:, 0], [1, 0])


def test_the_source_travels_without_its_split_list(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a\n" + "".join(f"{i},{i}\n" for i in range(20)))
    source = {{ cookiecutter.class_name }}().data(None, path=path, split_mb=str(20 / MIB))
    clone = pickle.loads(pickle.dumps(source))  # what an executor gets
    assert clone.splits() == []
    batches = [clone.read(split, 100) for split in source.splits()]
    assert [i for batch in batches for ids, _ in batch for i in ids.to_pylist()] == list(range(20))


BAD_ROWS = [
    ("id,a\n1,2\n", {"features": "a,b"}, "no column 'b'"),
    ("id,a,name\n1,2,cat\n", {}, "'cat' in the column 'name'"),
    ("id,a\n1,2\nx7,3\n", {}, "id_type=string"),
    ("id,a\n1,2\n2,\n", {}, r"id 2 has a missing value"),
    ("id,a\n1,2\n2,3,4\n", {}, "has 3 fields and the header 2"),
    ('{"id": 1, "x": [1, 2]}\n{"id": 2, "x": [3]}\n', {"format": "jsonl"}, "the width"),
    ('{"id": 1, "x": 1}\n{"id": 2, x}\n', {"format": "jsonl"}, "is not JSON"),
    ('{"x": 1}\n', {"format": "jsonl", "features": "x"}, "no column 'id'"),
]


@pytest.mark.parametrize(("text", "options", "message"), BAD_ROWS)
def test_bad_rows_are_errors_naming_them(
    tmp_path: Path, text: str, options: dict[str, str], message: str
) -> None:
    path = write(tmp_path / "rows.data", text)
    with pytest.raises(SkilError, match=message):
        read_all({{ cookiecutter.class_name }}().data(None, path=path, **{"format": "csv", **options}))


def test_options_are_checked(tmp_path: Path) -> None:
    provider = {{ cookiecutter.class_name }}()
    path = write(tmp_path / "rows.csv", "id,a\n1,2\n")
    with pytest.raises(SkilError, match="path=FILE"):
        provider.data(None)
    with pytest.raises(SkilError, match="format=csv"):
        provider.data(None, path=write(tmp_path / "rows.parquet", ""))
    with pytest.raises(SkilError, match="no option 'colour'"):
        provider.data(None, path=path, colour="red")
    with pytest.raises(SkilError, match="must be one of jsonl, csv"):
        provider.data(None, path=path, format="xml")
    with pytest.raises(SkilError, match="split_mb=64"):
        provider.data(None, path=path, split_mb="-1")
    with pytest.raises(SkilError, match="no file or directory"):
        provider.data(None, path=str(tmp_path / "missing.csv"))
    with pytest.raises(SkilError, match="not a local path"):
        provider.data(None, path="s3://bucket/rows.csv")


def test_reads_without_pyspark(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a\n1,2\n")
    code = "\n".join([
        "import sys",
        "sys.modules['pyspark'] = None  # importing pyspark now fails",
        "from {{ cookiecutter.module_name }}.provider import {{ cookiecutter.class_name }}",
        f"source = {{ cookiecutter.class_name }}().data(None, path={path!r})",
        "print([ids.to_pylist() for s in source.splits() for ids, _ in source.read(s, 10)])",
    ])  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[[1]]"


def affine_model(path: Path, weight: np.ndarray, bias: np.ndarray) -> Path:
    """An ONNX model ``output = input @ weight + bias``, built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "weight"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["output"]),
        ],
        "affine",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", weight.shape[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", weight.shape[1]])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_job_on_the_local_engine(tmp_path: Path, skil_home: Path) -> None:
    from skil_sdk import SkilContext, SparkArgs, load_results

    rng = np.random.default_rng(0)
    features = rng.standard_normal((120, 3)).astype(np.float32)
    data = write(tmp_path / "rows.jsonl", "".join(
        json.dumps({"id": 1000 + i, "x": row.tolist()}) + "\n" for i, row in enumerate(features)
    ))  # fmt: skip
    weight = rng.standard_normal((3, 2)).astype(np.float32)
    bias = np.array([0.5, -1], dtype=np.float32)
    context = SkilContext()
    model_id = context.add_model_to_experiment(
        affine_model(tmp_path / "affine.onnx", weight, bias), "tests"
    )
    context.batch_inference(
        SparkArgs(master="local[2]"),
        model_id,
        "{{ cookiecutter.name }}",
        str(tmp_path / "out"),
        batch_size=16,
        engine="local",
        path=data,
        split_mb=str(2000 / MIB),
    )
    table = load_results(tmp_path / "out").sort_by("id")
    assert table.column("id").to_pylist() == [1000 + i for i in range(120)]
    outputs = np.array(table.column("output").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(outputs, features @ weight + bias, rtol=1e-5, atol=1e-6)


def test_registered_as_a_skil_sdk_plugin() -> None:
    found = metadata.entry_points(group="skil_sdk", name="{{ cookiecutter.name }}")
    assert len(found) == 1, "the project is not installed: run pip install -e '.[test]'"
    (entry_point,) = found
    assert entry_point.value == "{{ cookiecutter.module_name }}.provider"
    registered: list[type[KeyedDataSetProvider]] = []
    entry_point.load().register_providers(register=registered.append)
    assert registered == [{{ cookiecutter.class_name }}]
    assert registered[0].PLUGIN_NAME == "{{ cookiecutter.name }}"
    assert registered[0].READS_ON_EXECUTORS, "jobs can run on the local engine"
