"""Reading a job's results: a Parquet directory with ``_SUCCESS`` and ``_skil_job.json``.

Paths are local, ``file://``, or any URI pyarrow's file systems read (``s3://``,
``hdfs://``, ``gs://``); Spark's ``s3a://`` is read as ``s3://``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skil_sdk.errors import InvalidValueError, NotFoundError


def _filesystem(path: str | Path) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    text = str(path)
    if "://" not in text:
        return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())
    if text.startswith("s3a://"):
        text = "s3://" + text[len("s3a://") :]
    try:
        filesystem, inner = pafs.FileSystem.from_uri(text)
    except (ValueError, OSError) as exc:
        raise InvalidValueError(f"Cannot open {path} ({exc}); check the output path.") from exc
    return filesystem, inner


def results_dataset(path: str | Path) -> Any:
    """The finished output at ``path`` as a ``pyarrow.dataset.Dataset`` (nothing read yet).

    The directory must hold ``_SUCCESS``: outputs of failed or running jobs are refused.
    Entries named ``_*`` or ``.*`` (``_errors/``, the quarantined rows) are not read.
    """
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    filesystem, root = _filesystem(path)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise NotFoundError(f"No results at {path}; check the output path of the job.")
    if filesystem.get_file_info(f"{root}/_SUCCESS").type == pafs.FileType.NotFound:
        raise InvalidValueError(
            f"{path} has no _SUCCESS marker, so its job did not finish; resume it "
            "(`skil-sdk jobs resume JOB`) or rerun it with --overwrite."
        )
    return ds.dataset(
        root,
        filesystem=filesystem,
        format="parquet",
        exclude_invalid_files=True,
        ignore_prefixes=[".", "_"],
    )


def load_errors(path: str | Path) -> Any:
    """The rows a job quarantined (``id``, ``stage``, ``error``, ``source``, ``row_offset``)
    as a ``pyarrow.Table``: ``OUTPUT/_errors/`` of a finished output, or the committed
    tasks' of a job that stopped (``OUTPUT/_temporary/committed``). Empty when none."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    from skil_sdk.commit import COMMITTED, ERRORS, TEMPORARY
    from skil_sdk.inference.quarantine import ERRORS_DIR

    filesystem, root = _filesystem(path)
    if filesystem.get_file_info(root).type == pafs.FileType.NotFound:
        raise NotFoundError(f"No results at {path}; check the output path of the job.")
    files = [
        info.path
        for where in (f"{root}/{ERRORS_DIR}", f"{root}/{TEMPORARY}/{COMMITTED}")
        for info in _listing(filesystem, where)
        if info.type == pafs.FileType.File
        and (info.base_name == ERRORS or info.path.startswith(f"{root}/{ERRORS_DIR}/"))
        and info.base_name.endswith(".parquet")
    ]
    if not files:
        return pa.table({"id": pa.array([], pa.null()), "stage": pa.array([], pa.string()),
                         "error": pa.array([], pa.string())})
    return ds.dataset(sorted(files), filesystem=filesystem, format="parquet").to_table()


def _listing(filesystem: Any, where: str) -> list[Any]:
    import pyarrow.fs as pafs

    if filesystem.get_file_info(where).type != pafs.FileType.Directory:
        return []
    return list(filesystem.get_file_info(pafs.FileSelector(where, recursive=True)))


def load_results(path: str | Path) -> Any:
    """The results of a finished job as a ``pyarrow.Table`` (``.to_pandas()`` for pandas).

    Only complete outputs are read: the directory must hold ``_SUCCESS``. For outputs too
    big for memory, use :func:`results_dataset` and read it in batches, or
    ``spark.read.parquet(path)`` from Spark.
    """
    return results_dataset(path).to_table()


def output_array(results: Any, column: str) -> Any:
    """One output column of :func:`load_results`'s table as a numpy array ``[rows, ...]``.

    A column of an output ``[N, T, C]`` comes back as ``[rows, T, C]`` (every row must
    have the same shape; read rows of different shapes with ``table[column][i]``).
    """
    import pyarrow as pa

    from skil_sdk.providers.arrays import column_to_matrix

    if column not in results.column_names:
        raise InvalidValueError(
            f"The results have no column {column!r} (columns: {', '.join(results.column_names)})."
        )
    from skil_sdk.errors import ModelError

    values = results.column(column)
    if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
        return values.to_numpy()
    try:
        return column_to_matrix(values, column)
    except ModelError:
        raise InvalidValueError(
            f"The rows of column {column!r} have different shapes, so they are not one "
            f"array; read them one by one (table[{column!r}][i])."
        ) from None


def job_metadata(path: str | Path) -> dict[str, Any]:
    """The ``_skil_job.json`` record of an output directory."""
    import pyarrow.fs as pafs

    filesystem, root = _filesystem(path)
    meta = f"{root}/_skil_job.json"
    if filesystem.get_file_info(meta).type == pafs.FileType.NotFound:
        raise NotFoundError(f"No _skil_job.json in {path}; it is not a skil-sdk output.")
    with filesystem.open_input_stream(meta) as handle:
        data: dict[str, Any] = json.loads(handle.read().decode("utf-8"))
    return data


def kept_tasks(output: str | None, job_id: str) -> tuple[int, int] | None:
    """``(committed, total)`` tasks of job ``job_id`` kept at a local ``output`` for
    ``skil-sdk jobs resume`` (None: the output holds no plan of that job)."""
    from skil_sdk.commit import LocalCommitter
    from skil_sdk.uris import is_local, local_path

    if not output or not is_local(output):
        return None
    committer = LocalCommitter(local_path(output))
    plan = committer.read_plan()
    if plan is None or plan.get("job_id") != job_id:
        return None
    return len(committer.committed()), len(plan["tasks"])


def quarantined_head(output: str | None, limit: int = 5) -> list[dict[str, Any]]:
    """The first rows a job quarantined at a local ``output`` (none when it holds none)."""
    from skil_sdk.errors import SkilError
    from skil_sdk.uris import is_local

    if not output or not is_local(output):
        return []
    try:
        rows: list[dict[str, Any]] = load_errors(output).slice(0, limit).to_pylist()
    except (SkilError, OSError):
        return []
    return rows
