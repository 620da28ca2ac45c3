{% if cookiecutter.provider_kind == "executor-read" -%}
{% include "executor-read/test_provider.py" %}
{%- else -%}
"""The ``{{ cookiecutter.name }}`` provider, run on a local SparkSession."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from skil_sdk import KeyedDataSetProvider, SkilError
from {{ cookiecutter.module_name }}.provider import {{ cookiecutter.class_name }}


def rows(frame: Any) -> list[tuple[Any, list[float]]]:
    """The DataFrame's ``(id, features)`` rows, sorted by id."""
    return sorted((row["id"], list(row["features"])) for row in frame.collect())


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_rows(spark: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a,b\n1,0.5,1.5\n2,2,-1\n3,0,4.25\n")
    frame = {{ cookiecutter.class_name }}().data(spark, path=path)
    assert frame.columns == ["id", "features"]
    assert dict(frame.dtypes)["features"] == "array<float>"
    assert rows(frame) == [(1, [0.5, 1.5]), (2, [2.0, -1.0]), (3, [0.0, 4.25])]


def test_csv_feature_columns_are_picked_and_ordered(spark: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "key,a,b,c\nx,1,2,3\ny,4,5,6\n")
    frame = {{ cookiecutter.class_name }}().data(spark, path=path, id="key", features="c,a")
    assert rows(frame) == [("x", [3.0, 1.0]), ("y", [6.0, 4.0])]


def test_json_lines_with_an_array_column(spark: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "rows.jsonl",
        '{"id": 10, "pixels": [0, 0.5, 1]}\n{"id": 11, "pixels": [1, 2, 3]}\n',
    )
    frame = {{ cookiecutter.class_name }}().data(spark, path=path)
    assert rows(frame) == [(10, [0.0, 0.5, 1.0]), (11, [1.0, 2.0, 3.0])]


def test_json_lines_scalar_columns_in_the_given_order(spark: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "rows.data", '{"id": "a", "x": 1, "y": 2.5}\n')
    frame = {{ cookiecutter.class_name }}().data(spark, path=path, format="jsonl", features="y,x")
    assert rows(frame) == [("a", [2.5, 1.0])]


def test_missing_column_is_an_error(spark: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a\n1,2\n")
    with pytest.raises(SkilError, match="no column 'b'"):
        {{ cookiecutter.class_name }}().data(spark, path=path, features="a,b")


def test_text_column_is_an_error(spark: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "id,a,name\n1,2,cat\n")
    with pytest.raises(SkilError, match="'name' holds string"):
        {{ cookiecutter.class_name }}().data(spark, path=path)


def test_options_are_checked() -> None:
    provider = {{ cookiecutter.class_name }}()
    with pytest.raises(SkilError, match="path=FILE"):
        provider.data(None)
    with pytest.raises(SkilError, match="format=csv"):
        provider.data(None, path="rows.parquet")
    with pytest.raises(SkilError, match="no option 'colour'"):
        provider.data(None, path="rows.csv", colour="red")


def test_registered_as_a_skil_sdk_plugin() -> None:
    found = metadata.entry_points(group="skil_sdk", name="{{ cookiecutter.name }}")
    assert len(found) == 1, "the project is not installed: run pip install -e '.[test]'"
    (entry_point,) = found
    assert entry_point.value == "{{ cookiecutter.module_name }}.provider"
    registered: list[type[KeyedDataSetProvider]] = []
    entry_point.load().register_providers(register=registered.append)
    assert registered == [{{ cookiecutter.class_name }}]
    assert registered[0].PLUGIN_NAME == "{{ cookiecutter.name }}"
{% endif %}