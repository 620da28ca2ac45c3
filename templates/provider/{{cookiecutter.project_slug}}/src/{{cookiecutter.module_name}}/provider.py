{% if cookiecutter.provider_kind == "executor-read" -%}
{% include "executor-read/provider.py" %}
{%- else -%}
"""The ``{{ cookiecutter.name }}`` keyed data-set provider and its plugin hook.

skil-sdk finds this module through the entry point in ``pyproject.toml`` and calls
:func:`register_providers`; jobs then pick the provider with ``--provider {{ cookiecutter.name }}``.
"""

from __future__ import annotations

from typing import Any

import skil_sdk
from skil_sdk import KeyedDataSetProvider, ProviderOption, SkilError

#: File extensions (after an optional compression suffix) and the format they mean.
EXTENSIONS = {".csv": "csv", ".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl"}
COMPRESSION = (".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zst")
#: Spark SQL types that can be cast to a float feature.
NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


class {{ cookiecutter.class_name }}(KeyedDataSetProvider):
    """{{ cookiecutter.description|replace('\\', '\\\\')|replace('"', '\\"') }}

    Reads a JSON-lines or CSV file (or a directory or glob of them) and returns a
    DataFrame with two columns: ``id`` (the id column, its type kept) and ``features``
    (``array<float>``, the feature columns in the order given). In JSON lines a feature
    column may hold an array of numbers; its elements are appended in order.
    """

    PLUGIN_NAME = "{{ cookiecutter.name }}"
    OPTIONS = (
        ProviderOption("path", "a .jsonl/.json/.csv file, a directory or a glob", required=True),
        ProviderOption("format", "jsonl or csv (default: from the path's extension)"),
        ProviderOption("id", "the id column", default="id"),
        ProviderOption(
            "features",
            "the feature columns, comma-separated (default: every other column)",
        ),
    )

    def data(self, spark: Any, **options: str) -> Any:
        """Return the rows of ``path`` as a DataFrame of ``id`` and ``features``."""
        from pyspark.sql import functions as F

        known = {option.name for option in self.OPTIONS}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SkilError(
                f"The {self.PLUGIN_NAME} provider has no option {unknown[0]!r}; "
                f"use one of: {', '.join(sorted(known))}."
            )
        path = options.get("path")
        if not path:
            raise SkilError(
                f"The {self.PLUGIN_NAME} provider needs a file to read; pass "
                "--provider-option path=FILE."
            )
        file_format = options.get("format") or format_of(path)
        frame = read(spark, path, file_format)
        id_column = options.get("id") or "id"
        features = feature_columns(frame.columns, id_column, options.get("features"), file_format)
        missing = [c for c in [id_column, *features] if c not in frame.columns]
        if missing:
            raise SkilError(
                f"{path!r} has no column {missing[0]!r} (it has: {', '.join(frame.columns)}); "
                "set the id and features options to existing columns."
            )
        types = dict(frame.dtypes)
        arrays = [as_float_array(F, name, types[name]) for name in features]
        combined = arrays[0] if len(arrays) == 1 else F.concat(*arrays)
        return frame.select(F.col(id_column).alias("id"), combined.alias("features"))


def format_of(path: str) -> str:
    """The file format a path's extension names (``csv`` or ``jsonl``)."""
    name = path.rstrip("/").lower()
    for suffix in COMPRESSION:
        name = name.removesuffix(suffix)
    for extension, file_format in EXTENSIONS.items():
        if name.endswith(extension):
            return file_format
    raise SkilError(
        f"Cannot tell the format of {path!r} from its name; pass "
        "--provider-option format=csv or format=jsonl."
    )


def read(spark: Any, path: str, file_format: str) -> Any:
    """Read ``path`` with Spark: CSV with a header row, or JSON lines."""
    from pyspark.errors import AnalysisException

    try:
        if file_format == "csv":
            return spark.read.option("header", "true").option("inferSchema", "true").csv(path)
        if file_format == "jsonl":
            return spark.read.json(path)
    except AnalysisException as exc:
        reason = str(exc).strip().splitlines()[0]
        raise SkilError(f"Spark cannot read {path!r} ({reason}); check the path option.") from exc
    raise SkilError(f"Unknown format {file_format!r}; use format=csv or format=jsonl.")


def feature_columns(
    columns: list[str], id_column: str, requested: str | None, file_format: str
) -> list[str]:
    """The feature columns: the ``features`` option, or every column but the id."""
    if requested:
        chosen = [name.strip() for name in requested.split(",") if name.strip()]
        if chosen:
            return chosen
    others = [name for name in columns if name != id_column]
    if file_format == "jsonl" and len(others) > 1:
        # Spark sorts JSON fields by name, so the file's order is lost: ask for it.
        raise SkilError(
            f"JSON lines have no column order and there are {len(others)} candidate "
            f"feature columns; pass --provider-option features={','.join(others)} "
            "in the order the model expects."
        )
    if not others:
        raise SkilError(f"There is no feature column besides {id_column!r}; check the file.")
    return others


def as_float_array(F: Any, name: str, spark_type: str) -> Any:
    """Column ``name`` as ``array<float>`` (a number becomes a one-element array)."""
    if spark_type.startswith("array<") and is_numeric(spark_type[6:-1]):
        return F.col(name).cast("array<float>")
    if is_numeric(spark_type):
        return F.array(F.col(name).cast("float"))
    raise SkilError(
        f"Column {name!r} holds {spark_type}, not numbers; leave it out of the "
        "features option or fix the file."
    )


def is_numeric(spark_type: str) -> bool:
    """Whether a Spark SQL type name (``int``, ``decimal(10,2)``...) is a number."""
    return spark_type.split("(")[0] in NUMERIC_TYPES


@skil_sdk.hookimpl
def register_providers(register: Any) -> None:
    """Register this plugin's provider with skil-sdk."""
    register({{ cookiecutter.class_name }})
{% endif %}