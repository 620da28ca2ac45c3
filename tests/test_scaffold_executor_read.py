"""``skil-sdk new provider --reads-on-executors``: the executor-read variant of the template.

Its provider returns an ExecutorSource and imports no pyspark; the default stays the
DataFrame provider. The variant's own tests and a local-engine job with it installed run
in tests/test_scaffold_install.py.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from test_scaffold import EXPECTED_FILES

from skil_sdk import scaffold
from skil_sdk.cli import main


def _imports(source: str) -> set[str]:
    """The top-level names of every module a Python source imports (anywhere in it)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_flag_renders_the_variant(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["new", "provider", "acme-rows", "-o", str(tmp_path), "--reads-on-executors", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reads_on_executors"] is True
    assert report["files"] == EXPECTED_FILES
    project = tmp_path / "acme-rows"
    for name in EXPECTED_FILES:
        text = (project / name).read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text and "cookiecutter" not in text, name
        assert text.endswith("\n") and not text.endswith("\n\n"), name
    human = CliRunner().invoke(
        main, ["new", "provider", "acme-lines", "-o", str(tmp_path), "--reads-on-executors"]
    )
    assert "--engine local" in human.stdout


def test_the_variant_reads_on_the_executors_without_pyspark(tmp_path: Path) -> None:
    project = scaffold.new_provider("acme-rows", tmp_path, reads_on_executors=True)
    source = (project / "src/acme_rows/provider.py").read_text(encoding="utf-8")
    assert "pyspark" not in _imports(source)
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    assert {"AcmeRowsProvider", "RowFilesSource", "FileSplit"} <= set(classes)
    assert "READS_ON_EXECUTORS = True" in ast.unparse(classes["AcmeRowsProvider"])
    assert [b.id for b in classes["RowFilesSource"].bases if isinstance(b, ast.Name)] == [
        "ExecutorSource"
    ]
    tests = (project / "tests/test_provider.py").read_text(encoding="utf-8")
    conftest = (project / "tests/conftest.py").read_text(encoding="utf-8")
    assert "pyspark" not in _imports(tests) | _imports(conftest)
    assert 'engine="local"' in tests
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["optional-dependencies"] == {"test": ["pytest>=8"]}
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "--engine local" in readme and "Java 17" not in readme


def test_the_default_stays_the_dataframe_provider(tmp_path: Path) -> None:
    default = scaffold.new_provider("acme-rows", tmp_path / "default")
    variant = scaffold.new_provider("acme-rows", tmp_path / "variant", reads_on_executors=True)
    source = (default / "src/acme_rows/provider.py").read_text(encoding="utf-8")
    assert "from pyspark.sql import functions as F" in source
    assert "READS_ON_EXECUTORS" not in source and "ExecutorSource" not in source
    assert "SparkSession" in (default / "tests/conftest.py").read_text(encoding="utf-8")
    meta = tomllib.loads((default / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["optional-dependencies"] == {"test": ["pytest>=8", "pyspark>=3.5"]}
    readme = (default / "README.md").read_text(encoding="utf-8")
    assert "Java 17" in readme and "--engine local" not in readme
    for name in (".gitignore", "src/acme_rows/__init__.py"):
        assert (default / name).read_bytes() == (variant / name).read_bytes(), name
    for name in EXPECTED_FILES:
        assert not (default / name).read_bytes().endswith(b"\n\n"), name


def test_the_variant_reads_a_file_in_a_process_without_pyspark(tmp_path: Path) -> None:
    """The rendered provider, imported where pyspark cannot be: splits, then batches as
    the executors read them (the source and the splits pickled)."""
    project = scaffold.new_provider("acme-rows", tmp_path, reads_on_executors=True)
    data = tmp_path / "rows.csv"
    features = np.random.default_rng(1).standard_normal((25, 3)).astype(np.float32)
    data.write_text(
        "key,a,b,c\n" + "".join(
            f"k{i:03d},{','.join(repr(float(v)) for v in row)}\n" for i, row in enumerate(features)
        ),
        encoding="utf-8",
    )  # fmt: skip
    code = "\n".join([
        "import json, pickle, sys",
        "sys.modules['pyspark'] = None",
        "from acme_rows.provider import MIB, AcmeRowsProvider",
        f"source = AcmeRowsProvider().data(None, path={str(data)!r}, id='key',",
        "                                  split_mb=str(96 / MIB))",
        "remote = pickle.loads(pickle.dumps(source))",
        "ids, rows = [], []",
        "for split in source.splits():",
        "    for batch_ids, batch in remote.read(pickle.loads(pickle.dumps(split)), 4):",
        "        assert batch.dtype.name == 'float32' and len(batch) <= 4",
        "        ids += batch_ids.to_pylist(); rows += batch.tolist()",
        "print(json.dumps({'splits': len(source.splits()), 'id_type': source.id_type(),",
        "                  'ids': ids, 'rows': rows, 'pyspark': 'pyspark.sql' in sys.modules}))",
    ])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read["splits"] > 3 and read["id_type"] == "string" and not read["pyspark"]
    assert read["ids"] == [f"k{i:03d}" for i in range(25)]
    np.testing.assert_array_equal(np.array(read["rows"], dtype=np.float32), features)
